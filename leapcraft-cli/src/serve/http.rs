//! The HTTP server: `/metrics` and `/healthz` (and a short index at `/`), answered from the
//! [`Store`] alone, on connections that cannot pile up: at most [`MAX_CONNECTIONS`] open at
//! once (more are closed as they come), and a connection that sends no request for
//! [`IDLE_TIMEOUT`] is closed, so idle clients never use up the file descriptors a scrape
//! needs.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use leapcraft_ext::Client;

use super::exposition::{self, ExpositionFormat};
use crate::poll::Store;

/// The most connections open at once: well under systemd's default of 1,024 file
/// descriptors (the shipped unit raises it), with room for the API's connections.
pub const MAX_CONNECTIONS: usize = 512;

/// How long a connection may wait for a request (its headers) before it is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` until `stop`, then lets the requests under way finish (for at
/// most a few seconds).
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    stop: tokio_util::sync::CancellationToken,
) {
    let permits = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stop.cancelled() => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors, most likely: wait for some to close.
                tracing::warn!("cannot accept a connection: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::warn!("{MAX_CONNECTIONS} connections open: closing a new one");
            continue;
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let stop = stop.clone();
        connections.spawn(async move {
            let _permit = permit;
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(IDLE_TIMEOUT)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                () = stop.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
        while connections.try_join_next().is_some() {}
    }
    let drain = async { while connections.join_next().await.is_some() {} };
    let _ = tokio::time::timeout(Duration::from_secs(5), drain).await;
}

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
    let format =
        ExpositionFormat::from_accept(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
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
