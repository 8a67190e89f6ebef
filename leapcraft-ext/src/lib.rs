//! The Leapcraft Client API for Rust.
//!
//! [`Client`] wraps the generated [`leapcraft_api`] client with what a long-running service
//! needs: the API key exchanged for a bearer token lazily and again when the token stops
//! working (one exchange for all concurrent callers), retries with backoff and `Retry-After`,
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
//! Modules, each with one job: `client` (the client and its builder), `auth` (the token
//! cache), `transport` (what every request goes through), `retry` (the retry policy),
//! `call` (what a call recorded, for errors), `error` (the error type).

#![deny(missing_docs)]

mod auth;
mod call;
mod client;
mod devices;
mod error;
mod retry;
mod transport;

pub use client::{API_KEY_ENV, BASE_URL_ENV, Client, ClientBuilder, DEFAULT_BASE_URL};
pub use error::{
    ApiError, AuthError, AuthErrorKind, DecodeError, Error, MAX_SNIPPET, TransportError,
};
pub use leapcraft_api::types;
pub use retry::{RetryPolicy, Sleep, SleepFuture, TokioSleep};
