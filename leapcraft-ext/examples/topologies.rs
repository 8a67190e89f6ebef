//! Topologies: every gateway with its devices, then the details of one topology.
//!
//! ```text
//! cargo run --example topologies [GATEWAY_ID]
//! ```

mod common;

use common::show;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (client, _fake) = common::connect().await?;

    let topologies = client.topologies().await?;
    println!("{} topologies:", topologies.len());
    for t in &topologies {
        println!(
            "  {} {} (network {}, created {}): {} devices",
            t.gateway_id,
            show(t.name.as_deref()),
            show(t.network_id),
            show(t.created_at),
            t.devices.len()
        );
    }

    let gateway: leapcraft_ext::GatewayId = match std::env::args().nth(1) {
        Some(id) => id.into(),
        None => match topologies.first() {
            Some(t) => t.gateway_id.clone(),
            None => return Ok(()),
        },
    };
    let details = client.topology(&gateway).await?;
    println!("\nTopology {}:", details.gateway_id);
    for d in &details.devices {
        println!("  {:<20} {}", d.physical_id, show(d.name.as_deref()));
    }
    Ok(())
}
