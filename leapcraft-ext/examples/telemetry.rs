//! Telemetry of one device: the latest reading, then daily, weekly and monthly averages.
//!
//! ```text
//! cargo run --example telemetry [PHYSICAL_ID]
//! ```
//!
//! Without an id, the first device of the account.

mod common;

use chrono::Duration;
use common::{measure, show};
use leapcraft_ext::{PhysicalId, Resolution, TelemetryQuery, Timestamp};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (client, _fake) = common::connect().await?;
    let id: PhysicalId = match std::env::args().nth(1) {
        Some(id) => id.into(),
        None => match client.devices().max_items(1).collect().await?.pop() {
            Some(device) => device.physical_id,
            None => anyhow::bail!("no device: pass a physical id"),
        },
    };

    let latest = client.latest(&id).await?;
    println!("Latest reading of {id} at {}:", show(latest.timestamp));
    println!(
        "  {} / {} / {} / {}",
        measure(latest.temperature, "°C"),
        measure(latest.humidity, "%"),
        measure(latest.co2, "ppm"),
        measure(latest.pm2_5, "µg/m³")
    );
    // Keys beyond the four documented metrics are kept, as sent.
    for (key, value) in &latest.other {
        println!("  {key}: {value}");
    }

    // Averages over a range ending at the latest reading.
    let to = latest.timestamp.unwrap_or_else(Timestamp::now);
    for (resolution, span) in [
        (Resolution::Daily, Duration::days(7)),
        (Resolution::Weekly, Duration::weeks(6)),
        (Resolution::Monthly, Duration::days(180)),
    ] {
        let from: Timestamp = (to.as_datetime() - span).into();
        let query = TelemetryQuery::averages(resolution, from, to)?;
        let readings = client.telemetry(&id, &query).await?;
        println!("\n{resolution} averages from {from} to {to}:");
        for r in &readings {
            println!(
                "  {}  {:>9} {:>8} {:>10} {:>12}",
                show(r.timestamp),
                measure(r.temperature, "°C"),
                measure(r.humidity, "%"),
                measure(r.co2, "ppm"),
                measure(r.pm2_5, "µg/m³")
            );
        }
    }

    // Invalid queries cannot be built: the range must start before it ends.
    let backwards = TelemetryQuery::averages(Resolution::Daily, to, to);
    println!("\nAn empty range is refused: {}", backwards.unwrap_err());
    Ok(())
}
