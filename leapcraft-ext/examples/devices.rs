//! Devices: every device as a stream (pages fetched ahead while the current one is read),
//! a count per kind, one page on its own, and the details of one device.
//!
//! ```text
//! cargo run --example devices
//! ```

mod common;

use std::collections::BTreeMap;

use common::show;
use futures::TryStreamExt;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (client, _fake) = common::connect().await?;

    // Every device, item by item: 10 per request here, two requests ahead.
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    let mut first = None;
    let mut stream = client.devices().page_size(10).prefetch(2).items();
    while let Some(device) = stream.try_next().await? {
        *kinds.entry(show(device.kind.as_ref())).or_default() += 1;
        first.get_or_insert(device);
    }
    println!("Devices by kind:");
    for (kind, count) in &kinds {
        println!("  {kind:<20} {count}");
    }

    // The same list as pages.
    let pages: Vec<usize> = client
        .devices()
        .page_size(10)
        .pages()
        .map_ok(|page| page.len())
        .try_collect()
        .await?;
    println!("\nPages of 10: {pages:?}");

    // The details of one device.
    let Some(first) = first else {
        println!("No device.");
        return Ok(());
    };
    let device = client.device(&first.physical_id).await?;
    println!("\nDevice {}:", device.physical_id);
    println!("  name        {}", show(device.name.as_deref()));
    println!("  kind        {}", show(device.kind.as_ref()));
    println!("  serial      {}", show(device.serial.as_deref()));
    println!("  topology    {}", show(device.topology_id));
    println!(
        "  meta        {}",
        serde_json::Value::Object(device.meta.clone())
    );
    Ok(())
}
