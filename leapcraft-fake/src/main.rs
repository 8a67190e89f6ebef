//! `leapcraft-fake`: runs the fake Leapcraft API standalone until Ctrl-C.

use std::net::IpAddr;
use std::time::Duration;

use clap::Parser;
use leapcraft_fake::{
    Churn, Corruption, FakeServer, FaultKind, NotificationLimitPolicy, RateLimit, RetryAfter,
};

/// A fake Leapcraft Client API server on 127.0.0.1, for offline development and tests.
#[derive(Debug, Parser)]
#[command(name = "leapcraft-fake", version, about)]
struct Args {
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Number of devices.
    #[arg(long, default_value_t = 25)]
    devices: usize,
    /// Devices per topology (gateway included).
    #[arg(long, default_value_t = 8)]
    devices_per_gateway: usize,
    /// Number of notifications at start (default: 3 per device, at most 10,000).
    #[arg(long)]
    notifications: Option<usize>,
    /// Number of things.
    #[arg(long, default_value_t = 14)]
    things: usize,
    /// Probability (0.0 to 1.0) that a request fails with an injected fault.
    #[arg(long, default_value_t = 0.0)]
    fault_rate: f64,
    /// Faults to inject, comma-separated: 429, 503, 500 (HTML), drop, truncate.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "429,503,500,drop,truncate"
    )]
    faults: Vec<FaultKind>,
    /// Inject faults into the token exchange too.
    #[arg(long)]
    fault_token_exchange: bool,
    /// Latency added to each request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Requests a second allowed over all operations; beyond it, 429 (default: no limit).
    #[arg(long, value_name = "RPS")]
    rate_limit: Option<f64>,
    /// Requests that may arrive at once under --rate-limit (default: one second's worth).
    #[arg(long, value_name = "N", requires = "rate_limit")]
    rate_burst: Option<u32>,
    /// The Retry-After of a 429 from --rate-limit: N (seconds), date+N (an HTTP date N
    /// seconds ahead) or none.
    #[arg(
        long,
        value_name = "SPEC",
        default_value = "1",
        requires = "rate_limit"
    )]
    retry_after: RetryAfter,
    /// Tokens expire after this many requests.
    #[arg(long)]
    token_max_uses: Option<u64>,
    /// Tokens expire this many seconds after they were issued.
    #[arg(long)]
    token_ttl_secs: Option<u64>,
    /// The key is refused (401) after this many token exchanges.
    #[arg(long, value_name = "N")]
    revoke_key_after: Option<u64>,
    /// How the lists change while read: none, remove-first (the first device / newest
    /// notification deleted after each list request) or add (one added before each).
    #[arg(long, default_value = "none")]
    churn: Churn,
    /// Serve device INDEX as a malformed record, KIND one of utf8, surrogate, unreadable
    /// (repeatable), as INDEX:KIND.
    #[arg(long, value_name = "INDEX:KIND", value_parser = corrupt_device)]
    corrupt_device: Vec<(usize, Corruption)>,
    /// Answer every device list request with about this many MiB of devices.
    #[arg(long, value_name = "MIB")]
    oversized_device_page_mib: Option<u64>,
    /// A valid API key (repeatable). Default: demo-key.
    #[arg(long = "key")]
    keys: Vec<String>,
    /// Seed of the dataset and of the fault generator.
    #[arg(long, default_value_t = leapcraft_fake::DEFAULT_SEED)]
    seed: u64,
    /// Serve at most 50 notifications for `limit` above 50, instead of answering 400.
    #[arg(long)]
    clamp_notification_limit: bool,
    /// Every this many seconds, new latest readings and a new notification appear (0: never).
    #[arg(long, default_value_t = 0)]
    live_secs: u64,
    /// Stamp the latest readings from now instead of the docs' fixed 2026-03-29T15:24:05Z.
    #[arg(long)]
    fresh_readings: bool,
}

fn corrupt_device(s: &str) -> Result<(usize, Corruption), String> {
    let (index, kind) = s
        .split_once(':')
        .ok_or_else(|| format!("`{s}`: expected INDEX:KIND, such as 3:utf8"))?;
    let index = index
        .parse()
        .map_err(|_| format!("`{index}` is not a device index"))?;
    Ok((index, kind.parse()?))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let mut builder = FakeServer::builder()
        .host(args.host)
        .port(args.port)
        .seed(args.seed)
        .devices(args.devices)
        .devices_per_gateway(args.devices_per_gateway)
        .things(args.things)
        .fault_rate(args.fault_rate)
        .fault_kinds(args.faults)
        .fault_token_exchange(args.fault_token_exchange)
        .fresh_readings(args.fresh_readings)
        .churn(args.churn)
        .latency(Duration::from_millis(args.latency_ms))
        .precise_latency(true);
    if let Some(rate) = args.rate_limit {
        let mut limit = RateLimit::per_second(rate).with_retry_after(args.retry_after);
        if let Some(burst) = args.rate_burst {
            limit = limit.with_burst(burst);
        }
        builder = builder.rate_limit(limit);
    }
    if let Some(n) = args.notifications {
        builder = builder.notifications(n);
    }
    if let Some(n) = args.token_max_uses {
        builder = builder.token_max_uses(n);
    }
    if let Some(s) = args.token_ttl_secs {
        builder = builder.token_ttl(Duration::from_secs(s));
    }
    if let Some(n) = args.revoke_key_after {
        builder = builder.revoke_key_after_exchanges(n);
    }
    for (index, corruption) in args.corrupt_device {
        builder = builder.corrupt_device(index, corruption);
    }
    if let Some(mib) = args.oversized_device_page_mib {
        builder = builder.oversized_device_page(mib.saturating_mul(1 << 20));
    }
    for key in args.keys {
        builder = builder.valid_key(key);
    }
    if args.clamp_notification_limit {
        builder = builder.notification_limit_policy(NotificationLimitPolicy::Clamp);
    }
    if args.live_secs > 0 {
        builder = builder.live(Duration::from_secs(args.live_secs));
    }
    let fake = builder.start().await?;
    println!("Leapcraft fake API: {}", fake.base_url());
    println!("API key: {}", fake.api_key());
    println!(
        "export LEAPCRAFT_BASE_URL={} LEAPCRAFT_API_KEY={}",
        fake.base_url(),
        fake.api_key()
    );
    tokio::signal::ctrl_c().await?;
    let counters = fake.counters();
    fake.shutdown().await;
    eprintln!(
        "served {} requests, {} token exchanges, {} faults, {} answered 429",
        counters.requests.total(),
        counters.token_exchanges,
        counters.faults.total(),
        counters.too_many_requests
    );
    Ok(())
}
