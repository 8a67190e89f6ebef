//! `topologies` (gateways and their devices) and `topology` (one).

use clap::Args;
use leapcraft_ext::{Client, Topology, TopologyDetails};

use crate::error::Failure;
use crate::output::{Output, Records, opt};

/// `topology`.
#[derive(Debug, Args)]
pub struct TopologyArgs {
    /// The topology's gateway id, such as `0123245cf74c60d7ee`.
    pub gateway_id: String,
}

const COLUMNS: &[&str] = &["gateway_id", "name", "network_id", "created_at", "devices"];

fn cells(t: &Topology) -> Vec<String> {
    vec![
        t.gateway_id.to_string(),
        opt(t.name.as_ref()),
        opt(t.network_id),
        opt(t.created_at),
        t.devices.len().to_string(),
    ]
}

const DETAILS_COLUMNS: &[&str] = &["gateway_id", "name", "created_at", "devices"];

fn details_cells(t: &TopologyDetails) -> Vec<String> {
    vec![
        t.gateway_id.to_string(),
        opt(t.name.as_ref()),
        opt(t.created_at),
        t.devices
            .iter()
            .map(|d| d.physical_id.as_str())
            .collect::<Vec<_>>()
            .join(" "),
    ]
}

/// `topologies`.
pub async fn list(client: &Client, out: &Output) -> Result<(), Failure> {
    let topologies = client.topologies().await?;
    out.print(&Records::list(&topologies, COLUMNS, cells))?;
    Ok(())
}

/// `topology`.
pub async fn show(client: &Client, args: TopologyArgs, out: &Output) -> Result<(), Failure> {
    let topology = client.topology(args.gateway_id).await?;
    out.print(&Records::one(&topology, DETAILS_COLUMNS, details_cells))?;
    Ok(())
}
