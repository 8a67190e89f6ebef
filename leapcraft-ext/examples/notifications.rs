//! Notifications: the most recent ones, every one of a device, then following new ones as
//! they appear (for up to 20 seconds).
//!
//! ```text
//! cargo run --example notifications
//! ```
//!
//! Without a key, the fake raises a new notification every second, so that there is
//! something to follow.

mod common;

use std::time::Duration;

use common::show;
use futures::StreamExt;
use leapcraft_ext::Notification;

fn line(n: &Notification) -> String {
    format!(
        "#{:<6} {:<20} {:<15} {:<26} {}",
        n.id,
        show(n.physical_id.as_ref()),
        show(n.category.as_ref()),
        show(n.created_at),
        show(n.message.as_deref())
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (client, _fake) = common::connect_with(|fake| fake.live(Duration::from_secs(1))).await?;

    // Offset paging, at most 50 per request: larger page sizes are clamped.
    let recent = client
        .notifications()
        .page_size(50)
        .max_items(10)
        .collect()
        .await?;
    println!("The {} most recent notifications:", recent.len());
    for n in &recent {
        println!("  {}", line(n));
    }

    if let Some(device) = recent.iter().find_map(|n| n.physical_id.clone()) {
        let all = client.device_notifications(&device).collect().await?;
        println!("\nAll {} notifications of {device}:", all.len());
        for n in &all {
            println!("  {}", line(n));
        }
    }

    // Follow: polls, and yields each notification that appears once; stops when dropped.
    println!("\nFollowing new notifications (3 at most, 20 s at most):");
    let mut new = client
        .follow_notifications(None, Duration::from_millis(500))
        .take(3);
    let followed = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(n) = new.next().await {
            match n {
                Ok(n) => println!("  new: {}", line(&n)),
                Err(e) => println!("  a poll failed (polling goes on): {e}"),
            }
        }
    })
    .await;
    if followed.is_err() {
        println!("  (nothing more within 20 s)");
    }
    Ok(())
}
