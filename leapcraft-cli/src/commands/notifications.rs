//! `notifications`: a page of notifications, all of them, or new ones as they appear.

use std::io;
use std::time::Duration;

use clap::Args;
use futures::StreamExt;
use leapcraft_ext::{Client, Notification, NotificationCursor};

use crate::commands::listing;
use crate::error::{Failure, is_fatal};
use crate::output::{Format, Output, Records, opt};
use crate::{progress, values};

/// `notifications`.
#[derive(Debug, Args)]
pub struct NotificationsArgs {
    /// Only the notifications of this device.
    #[arg(long, value_name = "PHYSICAL_ID")]
    pub device: Option<String>,
    /// Every notification.
    #[arg(long, conflicts_with_all = ["limit", "offset"])]
    pub all: bool,
    /// How many notifications (default 20); with `--follow`, the newest N are printed
    /// first (default none).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub limit: Option<u32>,
    /// How many to skip first.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub offset: u32,
    /// Print new notifications as they appear, until Ctrl-C (JSON: one object per line).
    /// A failing poll is reported once until polling recovers, and retried later and
    /// later; an authentication failure ends the command.
    #[arg(long, conflicts_with_all = ["all", "offset"])]
    pub follow: bool,
    /// Time between two polls with `--follow` (a number of seconds, or such as 30s, 5m; at
    /// least 1s).
    #[arg(long, default_value = "10s", value_name = "DURATION", requires = "follow",
          value_parser = values::interval)]
    pub interval: Duration,
}

/// How many notifications are listed without `--limit`.
const DEFAULT_LIMIT: u32 = 20;

const COLUMNS: &[&str] = &["id", "physical_id", "category", "created_at", "message"];

fn cells(n: &Notification) -> Vec<String> {
    vec![
        n.id.to_string(),
        opt(n.physical_id.as_ref()),
        opt(n.category.as_ref()),
        opt(n.created_at),
        opt(n.message.as_ref()),
    ]
}

/// `notifications`.
pub async fn run(client: &Client, args: NotificationsArgs, out: &Output) -> Result<(), Failure> {
    if args.follow {
        return follow(client, args, out).await;
    }
    let pager = match args.device.as_deref() {
        Some(id) => client.device_notifications(id),
        None => client.notifications(),
    }
    .page_size(leapcraft_ext::MAX_NOTIFICATION_PAGE_SIZE);
    let found: Vec<Notification> = if args.all {
        let bar = progress::counter("notifications");
        let (found, stopped) = listing(pager.items(), "notification", &bar).await;
        bar.finish_and_clear();
        if let Some(stopped) = stopped {
            if !found.is_empty() {
                out.print(&Records::list(&found, COLUMNS, cells))?;
            }
            return Err(stopped);
        }
        found
    } else {
        let limit = args.limit.unwrap_or(DEFAULT_LIMIT);
        pager
            .page_size(i64::from(limit))
            .skip(u64::from(args.offset))
            .max_items(limit as usize)
            .collect()
            .await?
    };
    out.print(&Records::list(&found, COLUMNS, cells))?;
    Ok(())
}

/// `notifications --follow`: the newest `--limit` first, then new ones as they appear, until
/// Ctrl-C, which ends the command with what was printed flushed, and exit code 130.
async fn follow(client: &Client, args: NotificationsArgs, out: &Output) -> Result<(), Failure> {
    let cursor = match args.device {
        Some(device) => NotificationCursor::for_device(device),
        None => NotificationCursor::new(),
    }
    .with_backlog(args.limit.map_or(0, |n| n as usize));
    let mut stream = client.follow_notifications_from(cursor, args.interval);
    let mut streamer = out.streamer(io::stdout());
    if out.format == Format::Csv {
        streamer.push(&Records::list::<Notification>(&[], COLUMNS, cells))?;
    }
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            _ = &mut ctrl_c => {
                streamer.flush()?;
                return Err(Failure::Interrupted);
            }
            next = stream.next() => match next {
                None => break,
                Some(Ok(n)) => {
                    streamer.push(&Records::list(std::slice::from_ref(&n), COLUMNS, cells))?;
                }
                Some(Err(e)) if is_fatal(&e) => return Err(e.into()),
                // The first failure of a streak (the stream reports no more until a poll
                // succeeds): say so, keep following.
                Some(Err(e)) => tracing::warn!("{e} (polling goes on)"),
            }
        }
    }
    streamer.flush()?;
    Ok(())
}
