//! What the examples share: a client for the real API when `LEAPCRAFT_API_KEY` is set, or
//! for a fake server started in-process when it is not, so that every example runs offline.

// Each example uses what it needs of this module.
#![allow(dead_code)]

use leapcraft_ext::{API_KEY_ENV, Client, ClientBuilder};
use leapcraft_fake::{FakeServer, FakeServerBuilder};

/// A client, and the fake server it talks to when there is one: keep both alive (bind the
/// server to a named variable such as `_fake`, not to `_`).
pub async fn connect() -> anyhow::Result<(Client, Option<FakeServer>)> {
    connect_with(|fake| fake).await
}

/// As [`connect`], with the fake configured by `configure` (used only without a key).
pub async fn connect_with(
    configure: impl FnOnce(FakeServerBuilder) -> FakeServerBuilder,
) -> anyhow::Result<(Client, Option<FakeServer>)> {
    let has_key = std::env::var(API_KEY_ENV).is_ok_and(|k| !k.trim().is_empty());
    if has_key {
        // LEAPCRAFT_API_KEY, and LEAPCRAFT_BASE_URL if set (the real API otherwise).
        let client = ClientBuilder::from_env()
            .app_name("leapcraft-examples")
            .build()?;
        println!("Using the API at {}\n", client.base_url());
        return Ok((client, None));
    }
    let fake = configure(FakeServer::builder()).start().await?;
    println!(
        "{API_KEY_ENV} is not set: using a fake server with demo data at {}\n",
        fake.base_url()
    );
    let client = Client::builder()
        .api_key(fake.api_key())
        .base_url(fake.base_url())
        .app_name("leapcraft-examples")
        .build()?;
    Ok((client, Some(fake)))
}

/// An optional value for display: the value, or `-`.
pub fn show<T: std::fmt::Display>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// A measurement for display, with one decimal and its unit, or `-`.
pub fn measure(value: Option<f64>, unit: &str) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.1} {unit}"))
}
