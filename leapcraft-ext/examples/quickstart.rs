//! The quickstart: the main flow of the SDK in one program.
//!
//! ```text
//! cargo run --example quickstart
//! ```
//!
//! Without `LEAPCRAFT_API_KEY` it starts a fake server in-process and runs against its demo
//! data: nothing to set up. With `LEAPCRAFT_API_KEY` set, it runs against the real API (or
//! `LEAPCRAFT_BASE_URL`, if set).

mod common;

use chrono::Duration;
use common::{measure, show};
use leapcraft_ext::{Client, Error, Resolution, TelemetryQuery, Timestamp};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (client, _fake) = common::connect().await?;
    walkthrough(&client).await
}

/// Devices, a latest reading, a week of daily averages, topologies, notifications, things.
pub async fn walkthrough(client: &Client) -> anyhow::Result<()> {
    // 1. Devices: a `Pager` reads them page by page; here, just the first five.
    let devices = client.devices().max_items(5).collect().await?;
    println!("== Devices (first {}) ==", devices.len());
    for device in &devices {
        println!(
            "  {:<20} {:<18} {:<26} serial {}",
            device.physical_id.as_str(),
            show(device.kind.as_ref()),
            show(device.name.as_deref()),
            show(device.serial.as_deref()),
        );
    }
    let Some(device) = devices.first() else {
        println!("This account has no device yet.");
        return Ok(());
    };
    let id = device.physical_id.clone();

    // 2. The latest reading of one device.
    let latest = client.latest(&id).await?;
    println!("\n== Latest reading of {id} ==");
    println!("  at          {}", show(latest.timestamp));
    println!("  temperature {}", measure(latest.temperature, "°C"));
    println!("  humidity    {}", measure(latest.humidity, "%"));
    println!("  CO2         {}", measure(latest.co2, "ppm"));
    println!("  PM2.5       {}", measure(latest.pm2_5, "µg/m³"));
    for (key, value) in &latest.other {
        println!("  {key:<11} {value}");
    }

    // 3. A week of daily averages, up to the latest reading.
    let to = latest.timestamp.unwrap_or_else(Timestamp::now);
    let from: Timestamp = (to.as_datetime() - Duration::days(7)).into();
    let query = TelemetryQuery::averages(Resolution::Daily, from, to)?;
    let days = client.telemetry(&id, &query).await?;
    println!("\n== Daily averages of {id}, {} days ==", days.len());
    println!(
        "  {:<12} {:>9} {:>9} {:>10} {:>12}",
        "day", "temp", "humidity", "CO2", "PM2.5"
    );
    for day in &days {
        let date = day
            .timestamp
            .map(|t| t.as_datetime().format("%Y-%m-%d").to_string());
        println!(
            "  {:<12} {:>9} {:>9} {:>10} {:>12}",
            show(date),
            measure(day.temperature, "°C"),
            measure(day.humidity, "%"),
            measure(day.co2, "ppm"),
            measure(day.pm2_5, "µg/m³"),
        );
    }

    // 4. Topologies: each gateway and the devices that report through it.
    let topologies = client.topologies().await?;
    println!("\n== Topologies ({}) ==", topologies.len());
    for topology in &topologies {
        println!(
            "  gateway {:<20} {:<28} {} devices",
            topology.gateway_id,
            show(topology.name.as_deref()),
            topology.devices.len()
        );
    }

    // 5. The five most recent notifications.
    let notifications = client.notifications().max_items(5).collect().await?;
    println!("\n== Notifications (first {}) ==", notifications.len());
    for n in &notifications {
        println!(
            "  #{:<5} {:<20} {:<15} {}",
            n.id,
            show(n.physical_id.as_ref()),
            show(n.category.as_ref()),
            show(n.message.as_deref())
        );
    }

    // 6. Things and their parameters (the API's first 10).
    let things = client.things().collect().await?;
    println!("\n== Things ({}) ==", things.len());
    for thing in &things {
        let parameters: Vec<String> = thing
            .parameters
            .iter()
            .map(|p| format!("{}={}", show(p.name.as_deref()), show(p.payload.as_deref())))
            .collect();
        println!(
            "  {:<28} {}",
            show(thing.name.as_deref()),
            parameters.join(", ")
        );
    }

    // 7. Errors are typed: a device that does not exist is a 404.
    match client.device("00:00:00:00:00:00").await {
        Err(Error::Api(e)) if e.status.as_u16() == 404 => {
            println!("\nAn unknown device is a 404, as expected: {e}");
        }
        Err(e) => return Err(e.into()),
        Ok(d) => println!("\nDevice 00:00:00:00:00:00 exists: {:?}", d.name),
    }
    Ok(())
}
