//! The latest reading of many devices at once, with bounded concurrency: every device of
//! the account, then a chosen few (one of them unknown: it fails alone), then watching for
//! new readings.
//!
//! ```text
//! cargo run --example bulk_latest
//! ```

mod common;

use std::time::{Duration, Instant};

use common::measure;
use futures::{StreamExt, TryStreamExt};
use leapcraft_ext::PhysicalId;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (client, _fake) = common::connect_with(|fake| {
        fake.devices(200)
            .latency(Duration::from_millis(20))
            .live(Duration::from_secs(1))
    })
    .await?;

    // Every device, 16 requests in flight at most. Results come as they complete.
    let started = Instant::now();
    let mut readings = client.latest_for_all_devices(16);
    let (mut ok, mut failed, mut co2_sum, mut co2_count) = (0, 0, 0.0, 0);
    let mut first_ids: Vec<PhysicalId> = Vec::new();
    while let Some((id, result)) = readings.try_next().await? {
        match result {
            Ok(reading) => {
                ok += 1;
                if let Some(co2) = reading.co2 {
                    co2_sum += co2;
                    co2_count += 1;
                }
                if first_ids.len() < 3 {
                    first_ids.push(id);
                }
            }
            Err(e) => {
                failed += 1;
                eprintln!("  {id}: {e}");
            }
        }
    }
    println!(
        "Latest readings of every device: {ok} ok, {failed} failed, in {:.1?}",
        started.elapsed()
    );
    if co2_count > 0 {
        println!(
            "Mean CO2 across the account: {:.0} ppm",
            co2_sum / f64::from(co2_count)
        );
    }

    // A chosen few: one unknown device fails on its own, the others still arrive.
    let mut chosen: Vec<PhysicalId> = first_ids.clone();
    chosen.push("00:00:00:00:00:00".into());
    println!("\nA few devices:");
    let mut few = client.latest_many(chosen, 4);
    while let Some((id, result)) = few.next().await {
        match result {
            Ok(r) => println!("  {:<20} {}", id.as_str(), measure(r.co2, "ppm")),
            Err(e) => println!("  {:<20} failed: {e}", id.as_str()),
        }
    }

    // Watch: poll every second, yield only readings newer than the last one seen.
    println!(
        "\nWatching {} devices (5 updates, 15 s at most):",
        first_ids.len()
    );
    let mut updates = client
        .watch_latest(first_ids, Duration::from_secs(1))
        .take(5);
    let watched = tokio::time::timeout(Duration::from_secs(15), async {
        while let Some((id, result)) = updates.next().await {
            match result {
                Ok(r) => println!(
                    "  {:<20} {} {}",
                    id.as_str(),
                    r.timestamp.map(|t| t.to_string()).unwrap_or_default(),
                    measure(r.temperature, "°C")
                ),
                Err(e) => println!("  {:<20} failed: {e}", id.as_str()),
            }
        }
    })
    .await;
    if watched.is_err() {
        println!("  (no more updates within 15 s)");
    }
    Ok(())
}
