//! The Leapcraft Client API for Rust.
//!
//! [`Client`] wraps the generated [`leapcraft_api`] client with what a long-running service
//! needs: the API key exchanged for a bearer token lazily and again when the token stops
//! working (one exchange for all concurrent callers), retries with backoff and `Retry-After`
//! within a shared retry budget, a pace learned from the API's `429`s ([`RateLimit`]),
//! timeouts per attempt and per call, one error type that says what happened, and secrets
//! that never reach a log line or an error message.
//!
//! ```no_run
//! # async fn run() -> Result<(), leapcraft_ext::Error> {
//! let client = leapcraft_ext::Client::from_env()?;
//! let device = client.device("D2:C1:AA:FF:3E:09").await?;
//! println!("serial: {:?}", device.serial);
//! # Ok(()) }
//! ```
//!
//! | what | how |
//! |---|---|
//! | devices | [`Client::devices`] (a [`Pager`]), [`Client::device`] |
//! | telemetry | [`Client::telemetry`] with a [`TelemetryQuery`], [`Client::latest`] |
//! | many devices | [`Client::latest_many`], [`Client::latest_for_all_devices`] |
//! | live | [`Client::watch_latest`], [`Client::follow_notifications`], [`NotificationCursor`] |
//! | topologies | [`Client::topologies`], [`Client::topology`] |
//! | notifications | [`Client::notifications`], [`Client::device_notifications`] |
//! | things | [`Client::things`] |
//! | anything else | [`Client::api`]: the generated client, with auth and retries |
//!
//! Lists come as a [`Pager`]: a stream of items, a stream of pages, or everything collected,
//! with the API's three paging schemes handled here.
//!
//! # Per-call options and response metadata
//!
//! [`Client::customize`] gives a client whose calls take other [`CallOptions`] (timeouts,
//! attempts, idempotence) on the same token, pace and retry budget; with
//! [`CallOptions::last_response`], each call leaves its final response's status, headers,
//! request id, attempts and time in a [`LastResponse`], beside the typed result.
//!
//! # Logging
//!
//! Everything is told through [`tracing`]: a span `leapcraft.call` per call and
//! `leapcraft.attempt` per attempt, with OpenTelemetry's HTTP field names
//! (`http.request.method`, `url.path`, `server.address`, `http.response.status_code`) and
//! the `operation`; at DEBUG, one line per attempt (operation, status, attempt, time); at
//! INFO, retries (naming their operation), token exchanges and slow-downs; at WARN, what
//! went missing (an exhausted retry budget, a skipped record, an open circuit breaker).
//! Secrets never appear at any level. To see one line per request:
//!
//! ```no_run
//! # async fn run() -> Result<(), leapcraft_ext::Error> {
//! // RUST_LOG=leapcraft_ext=debug, or in code:
//! tracing_subscriber::fmt()
//!     .with_env_filter("leapcraft_ext=debug")
//!     .init();
//! let client = leapcraft_ext::Client::from_env()?;
//! client.device("D2:C1:AA:FF:3E:09").await?; // DEBUG leapcraft.call{operation="get_device" ...}
//! # Ok(()) }
//! ```

#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::print_stdout, clippy::print_stderr))]

// Read top-down: what goes wrong, what a response says, when to retry, tokens, pacing, the
// one request pipeline and how the generated client reaches it, the client, then the API
// families.
mod auth;
mod breaker;
mod client;
mod error;
mod exchange;
mod pipeline;
mod rate_limit;
mod response;
mod retry;
mod retry_budget;
mod sleep;
mod stats;
mod task;
mod transport;

mod bulk;
mod cursor;
mod devices;
mod ids;
mod kinds;
mod lenient;
mod notifications;
mod options;
mod paging;
mod telemetry;
mod things;
mod topologies;
mod watch;

/// The README's Rust examples, compiled as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

pub use bulk::DEFAULT_CONCURRENCY;
pub use cursor::{MAX_PAGES_PER_POLL, NotificationCursor};
pub use devices::{DEFAULT_DEVICE_PAGE_SIZE, Device};
pub use ids::{GatewayId, PhysicalId};
pub use kinds::{DeviceKind, NotificationCategory};
pub use leapcraft_api::Timestamp;
pub use notifications::{DEFAULT_NOTIFICATION_PAGE_SIZE, MAX_NOTIFICATION_PAGE_SIZE, Notification};
pub use options::{CallOptions, LastResponse, ResponseMetadata};
pub use paging::{MAX_PREFETCH, Pager};
pub use telemetry::{Reading, Resolution, TelemetryQuery};
pub use things::DEFAULT_THINGS_LIMIT;
pub use topologies::{Topology, TopologyDetails, TopologyDevice, TopologyMember};

pub use client::{
    API_KEY_ENV, BASE_URL_ENV, Client, ClientBuilder, DEFAULT_BASE_URL, DEFAULT_MAX_RESPONSE_BYTES,
};
pub use error::{
    ApiError, AuthError, AuthErrorKind, DecodeError, Error, MAX_SNIPPET, TransportError,
};
pub use leapcraft_api::types;
pub use rate_limit::RateLimit;
pub use retry::RetryPolicy;
pub use sleep::{Sleep, SleepFuture, TokioSleep};
pub use stats::ClientStats;
