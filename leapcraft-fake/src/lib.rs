//! A fake of the Leapcraft Client API, for tests, demos and offline development.
//!
//! [`FakeServer`] serves the eight operations of the API under `/v1` on 127.0.0.1, over a
//! seeded, deterministic dataset ([`dataset`]), with the documented paging rules and errors
//! ([`routes`]), expiring tokens ([`auth`]), injected faults and latency ([`faults`]), a
//! request-rate limit that answers `429` ([`rate_limit`]), what a live account does to its
//! lists and records ([`account`]: churn, malformed records, oversized pages), and counters
//! tests can assert on ([`counters`]).
//!
//! ```
//! use leapcraft_fake::FakeServer;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let fake = FakeServer::builder()
//!     .devices(1_000)
//!     .token_max_uses(25)
//!     .fault_rate(0.2)
//!     .latency(std::time::Duration::from_millis(5))
//!     .start()
//!     .await?;
//! // Point the client under test at `fake.base_url()` (`http://127.0.0.1:PORT/v1`)
//! // with `fake.api_key()`, then check what the server saw:
//! let seen = fake.counters();
//! assert_eq!(seen.requests.list_devices, 0);
//! assert_eq!(fake.dataset().device_count(), 1_000);
//! fake.shutdown().await;
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

pub mod account;
pub mod auth;
pub mod counters;
pub mod dataset;
pub mod faults;
pub mod rate_limit;
mod rng;
pub mod routes;
pub mod server;
pub mod timefmt;

pub use account::{Churn, Corruption};
pub use auth::DEMO_KEY;
pub use counters::{CountersSnapshot, FaultCounts, OpCounts, Operation};
pub use dataset::{DEFAULT_SEED, Dataset, DatasetConfig};
pub use faults::FaultKind;
pub use rate_limit::{RateLimit, RetryAfter};
pub use routes::{NotificationLimitPolicy, RecordedRequest};
pub use server::{Error, FakeServer, FakeServerBuilder, Result};
