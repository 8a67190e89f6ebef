//! `devices` (a page of devices, or all of them) and `device` (one).

use clap::Args;
use leapcraft_ext::{Client, Device};
use serde_json::Value;

use crate::commands::listing;
use crate::error::Failure;
use crate::output::{Output, Records, opt};
use crate::progress;

/// `devices`.
#[derive(Debug, Args)]
pub struct DevicesArgs {
    /// Every device of the account, page after page (the next page is requested while one
    /// is read).
    #[arg(long, conflicts_with_all = ["limit", "page"])]
    pub all: bool,
    /// Devices per page.
    #[arg(long, default_value_t = 100, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub limit: u32,
    /// Which page, from 1.
    #[arg(long, default_value_t = 1, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub page: u32,
    /// Devices per request with `--all`.
    #[arg(long, default_value_t = 1000, value_name = "N", requires = "all",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub page_size: u32,
}

/// `device`.
#[derive(Debug, Args)]
pub struct DeviceArgs {
    /// The device's physical id, such as `D2:C1:AA:FF:3E:09`.
    pub physical_id: String,
}

const COLUMNS: &[&str] = &[
    "physical_id",
    "name",
    "serial",
    "type",
    "topology_id",
    "meta",
];

fn cells(d: &Device) -> Vec<String> {
    vec![
        d.physical_id.to_string(),
        opt(d.name.as_ref()),
        opt(d.serial.as_ref()),
        opt(d.kind.as_ref()),
        opt(d.topology_id),
        if d.meta.is_empty() {
            String::new()
        } else {
            Value::Object(d.meta.clone()).to_string()
        },
    ]
}

/// `devices`: one page, or every device.
pub async fn list(client: &Client, args: DevicesArgs, out: &Output) -> Result<(), Failure> {
    let devices: Vec<Device> = if args.all {
        let bar = progress::counter("devices");
        let pages = client
            .devices()
            .page_size(args.page_size.into())
            .prefetch(1)
            .items();
        let (devices, stopped) = listing(pages, "device", &bar).await;
        bar.finish_and_clear();
        if let Some(stopped) = stopped {
            if !devices.is_empty() {
                out.print(&Records::list(&devices, COLUMNS, cells))?;
            }
            return Err(stopped);
        }
        devices
    } else {
        let (limit, page) = (u64::from(args.limit), u64::from(args.page));
        client
            .devices()
            .page_size(i64::from(args.limit))
            .skip((page - 1) * limit)
            .max_items(args.limit as usize)
            .collect()
            .await?
    };
    out.print(&Records::list(&devices, COLUMNS, cells))?;
    Ok(())
}

/// `device`: one device.
pub async fn show(client: &Client, args: DeviceArgs, out: &Output) -> Result<(), Failure> {
    let device = client.device(args.physical_id).await?;
    out.print(&Records::one(&device, COLUMNS, cells))?;
    Ok(())
}
