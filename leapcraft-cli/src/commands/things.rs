//! `things`: things and their parameters.

use clap::Args;
use leapcraft_ext::{Client, types};

use crate::error::Failure;
use crate::output::{Output, Records, opt};

/// `things`.
#[derive(Debug, Args)]
pub struct ThingsArgs {
    /// Every thing.
    #[arg(long, conflicts_with = "limit")]
    pub all: bool,
    /// How many things.
    #[arg(long, default_value_t = 10, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub limit: u32,
}

const COLUMNS: &[&str] = &["name", "description", "parameters"];

fn cells(t: &types::Thing) -> Vec<String> {
    vec![
        opt(t.name.as_ref()),
        opt(t.description.as_ref()),
        t.parameters
            .iter()
            .map(|p| {
                format!(
                    "{}={}",
                    p.name.as_deref().unwrap_or(""),
                    p.payload.as_deref().unwrap_or("")
                )
            })
            .collect::<Vec<_>>()
            .join("; "),
    ]
}

/// `things`.
pub async fn list(client: &Client, args: ThingsArgs, out: &Output) -> Result<(), Failure> {
    let size = if args.all { -1 } else { i64::from(args.limit) };
    let things = client.things().page_size(size).collect().await?;
    out.print(&Records::list(&things, COLUMNS, cells))?;
    Ok(())
}
