//! The HTTP server: `/metrics` and `/healthz` (and a short index at `/`), answered from the
//! [`Store`] alone.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use leapcraft_ext::Client;

use super::exposition::{self, Format};
use crate::poll::Store;

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct Shared {
    /// What the poller found.
    pub store: Store,
    /// The client, for its counters.
    pub client: Client,
    /// The size of the last `/metrics`, to allocate the next one at once.
    pub last_size: Arc<AtomicUsize>,
}

/// The routes.
pub fn router(shared: Shared) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .with_state(shared)
}

async fn index() -> &'static str {
    "leapcraft serve: a Prometheus exporter for Leapcraft sensors.\n\
     /metrics  the readings and the exporter's health\n\
     /healthz  200 while the last successful poll is recent, 503 otherwise\n"
}

async fn metrics(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    let format = Format::from_accept(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    let stats = shared.client.stats();
    // Rendering 10,000 devices takes milliseconds of CPU: off the async workers.
    let rendered = tokio::task::spawn_blocking(move || {
        let capacity = shared.last_size.load(Ordering::Relaxed);
        let body = exposition::render(
            &shared.store,
            stats,
            shared.store.stale_after(),
            format,
            SystemTime::now(),
            capacity + capacity / 8,
        );
        shared.last_size.store(body.len(), Ordering::Relaxed);
        body
    })
    .await;
    match rendered {
        Ok(body) => ([(header::CONTENT_TYPE, format.content_type())], body).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn healthz(State(shared): State<Shared>) -> Response {
    let health = shared.store.read().health.clone();
    let since = health
        .last_success
        .map(|at| Instant::now().saturating_duration_since(at));
    let healthy = shared.store.is_healthy(&health, Instant::now());
    let mut body = match since {
        Some(ago) => format!(
            "last successful poll {} ago\n",
            humantime::format_duration(Duration::from_secs(ago.as_secs()))
        ),
        None => "no successful poll yet\n".to_owned(),
    };
    if let Some(problem) = health.last_poll.and_then(|p| p.problem) {
        body.push_str(&format!("last poll: {problem}\n"));
    }
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, body).into_response()
}
