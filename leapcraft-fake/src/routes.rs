//! The HTTP surface: the router, the per-request gate (counting, latency, the rate limit,
//! faults, authentication) and one handler per operation, with the spec's parameters and
//! errors.
//!
//! Parameter rules (all violations are `400` with a JSON `{"message": ...}` body):
//! - `GET /devices`: `limit` is `-1` (everything, `page` then ignored) or at least 1
//!   (default 100); `page` is at least 1 (default 1). A page past the end is `[]`.
//! - `GET /notifications`: `limit` is 1 to 50 (default 20); above 50 is a `400` by default,
//!   as the spec declares `maximum: 50` and a validating server rejects rather than guesses
//!   ([`NotificationLimitPolicy::Clamp`] serves 50 instead). `offset` is at least 0 (default
//!   0). Newest first. `physical_id` filters; an unknown one gives `[]`.
//! - `GET /things`: `limit` is `-1` (all) or at least 1 (default 10).
//! - `GET /telemetry/{id}`: `type` is `latest` or `averages`; averages need `resolution`
//!   (`daily`, `weekly`, `monthly`), `from` and `to` with `from < to`.
//! - Integers must be plain decimal integers. Unknown devices and topologies are `404`.
//!
//! The device list and the notifications may change while they are read, and a device record
//! may be malformed: see [`crate::account`].

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, HeaderValue, StatusCode};
use serde::Serialize;
use serde_json::json;
use tokio::sync::Notify;

use crate::account::{Churn, DeviceList};
use crate::auth::TokenStore;
use crate::counters::{Counters, Operation};
use crate::dataset::{Dataset, Notification, READING_INTERVAL_SECS, Resolution};
use crate::faults::{FaultInjector, FaultKind};
use crate::rate_limit::{Limiter, RetryAfter};
use crate::timefmt::{from_unix, parse_timestamp, seconds_z};

/// What `GET /notifications` does with `limit` above 50.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NotificationLimitPolicy {
    /// Answer `400` (the default): the spec declares `maximum: 50`.
    #[default]
    Reject,
    /// Serve at most 50, as a lenient server would.
    Clamp,
}

/// Responses with more items than this are streamed in chunks rather than built in one buffer.
const STREAM_THRESHOLD: usize = 2_000;
const CHUNK: usize = 250;

/// Everything the handlers share.
#[derive(Debug)]
pub(crate) struct AppState {
    pub(crate) dataset: Dataset,
    pub(crate) tokens: TokenStore,
    pub(crate) faults: FaultInjector,
    pub(crate) rate_limit: Limiter,
    pub(crate) counters: Counters,
    pub(crate) latency_nanos: AtomicU64,
    /// Whether the end of each latency wait is slept on a blocking thread (see
    /// [`crate::FakeServerBuilder::precise_latency`]).
    pub(crate) precise_latency: bool,
    pub(crate) tick: AtomicU64,
    pub(crate) notifications: RwLock<Vec<Notification>>,
    /// The id of the last notification ever raised (deleted ones included): ids are unique.
    pub(crate) last_notification_id: AtomicI64,
    /// When the last notification ever raised was, in Unix seconds.
    pub(crate) last_notification_secs: AtomicI64,
    pub(crate) pushed: AtomicU64,
    pub(crate) notification_limit: NotificationLimitPolicy,
    /// The devices on the account now.
    pub(crate) devices: RwLock<DeviceList>,
    /// How the lists change while read.
    pub(crate) churn: Mutex<Churn>,
    /// When not zero, every `GET /devices` is answered with about this many bytes of devices.
    pub(crate) oversized_page: AtomicU64,
    /// The last requests, when recording is on (capacity > 0).
    pub(crate) log: Mutex<VecDeque<RecordedRequest>>,
    pub(crate) log_capacity: usize,
}

/// One request as the fake understood it (see [`crate::FakeServerBuilder::record_requests`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// The operation.
    pub operation: Operation,
    /// The path parameter (`physical_id` or `topology_id`), percent-decoded, if the
    /// operation has one.
    pub path_param: Option<String>,
    /// The query parameters, decoded, in order.
    pub query: Vec<(String, String)>,
    /// The status answered (`None` for a dropped connection).
    pub status: Option<u16>,
}

impl AppState {
    fn record(&self, op: Operation, uri: &http::Uri, status: Option<u16>) {
        if self.log_capacity == 0 {
            return;
        }
        let path_param = matches!(
            op,
            Operation::GetDevice | Operation::GetTelemetry | Operation::GetTopology
        )
        .then(|| uri.path().rsplit('/').next().unwrap_or_default())
        .map(|seg| {
            percent_encoding::percent_decode_str(seg)
                .decode_utf8_lossy()
                .into_owned()
        });
        let query = uri
            .query()
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .collect()
            })
            .unwrap_or_default();
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        if log.len() == self.log_capacity {
            log.pop_front();
        }
        log.push_back(RecordedRequest {
            operation: op,
            path_param,
            query,
            status,
        });
    }

    pub(crate) fn push_notification(
        &self,
        physical_id: Option<String>,
        category: &str,
        message: &str,
    ) -> Notification {
        let mut list = self
            .notifications
            .write()
            .unwrap_or_else(|e| e.into_inner());
        let id = self.last_notification_id.fetch_add(1, Ordering::Relaxed) + 1;
        let last_secs = self.last_notification_secs.load(Ordering::Relaxed);
        let now = self.dataset.config().latest_epoch
            + self.tick.load(Ordering::Relaxed) as i64 * READING_INTERVAL_SECS;
        let secs = now.max(last_secs + 1);
        self.last_notification_secs.store(secs, Ordering::Relaxed);
        let n = Notification {
            id,
            physical_id,
            category: Some(category.to_string()),
            message: Some(message.to_string()),
            created_at: seconds_z(from_unix(secs)),
        };
        list.push(n.clone());
        self.pushed.fetch_add(1, Ordering::Relaxed);
        n
    }

    /// The ids and times to continue from after `initial`, the notifications at start.
    pub(crate) fn notification_clock(initial: &[Notification]) -> (AtomicI64, AtomicI64) {
        let last = initial.last();
        let secs = last
            .and_then(|n| parse_timestamp(&n.created_at))
            .map_or(0, |t| t.timestamp());
        (
            AtomicI64::new(last.map_or(4000, |n| n.id)),
            AtomicI64::new(secs),
        )
    }

    pub(crate) fn churn(&self) -> Churn {
        *self.churn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Deletes the `n` newest notifications.
    pub(crate) fn delete_newest_notifications(&self, n: usize) {
        let mut list = self
            .notifications
            .write()
            .unwrap_or_else(|e| e.into_inner());
        let keep = list.len().saturating_sub(n);
        list.truncate(keep);
    }

    /// The device with this id, if it is on the account.
    fn find_device(&self, id: &str) -> Option<usize> {
        self.devices
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .find(&self.dataset, id)
    }

    /// Raises the next of the dataset's plausible notifications.
    pub(crate) fn push_generated_notification(&self) -> Notification {
        let n = self.pushed.load(Ordering::Relaxed);
        let (id, category, message) = self.dataset.generated_notification(n);
        self.push_notification(Some(id), category, message)
    }
}

/// Inserted in each request by the connection loop: notifying it closes the connection at
/// once, without a response.
#[derive(Debug, Clone)]
pub(crate) struct ConnAbort(pub(crate) Arc<Notify>);

/// An error response: a status and a JSON `{"message": ...}` body.
#[derive(Debug)]
pub(crate) struct ApiError(StatusCode, String);

impl ApiError {
    fn bad_request(msg: impl Into<String>) -> Self {
        ApiError(StatusCode::BAD_REQUEST, msg.into())
    }
    fn not_found(msg: impl Into<String>) -> Self {
        ApiError(StatusCode::NOT_FOUND, msg.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        json_error(self.0, &self.1)
    }
}

fn json_error(status: StatusCode, message: &str) -> Response {
    let body = serde_json::to_vec(&json!({ "message": message })).unwrap_or_default();
    (
        status,
        [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        body,
    )
        .into_response()
}

fn json_response<T: Serialize>(value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => (
            [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
            body,
        )
            .into_response(),
        Err(e) => json_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

/// Writes item `k` of a JSON array into the buffer.
trait WriteItem: Fn(usize, &mut Vec<u8>) + Send + Sync + 'static {}
impl<F: Fn(usize, &mut Vec<u8>) + Send + Sync + 'static> WriteItem for F {}

/// Items `range` of an array of `n` (`None`: without end), with the `[`, `,` and `]` they need.
fn array_chunk(range: std::ops::Range<usize>, n: Option<usize>, write: &impl WriteItem) -> Bytes {
    let mut buf = Vec::with_capacity(range.len() * 200 + 2);
    if range.start == 0 {
        buf.push(b'[');
    }
    for k in range.clone() {
        if k > 0 {
            buf.push(b',');
        }
        write(k, &mut buf);
    }
    if Some(range.end) == n {
        buf.push(b']');
    }
    Bytes::from(buf)
}

/// Item `k` serialised as JSON.
fn serialised<T: Serialize>(item: impl Fn(usize) -> T + Send + Sync + 'static) -> impl WriteItem {
    // Serialising our own plain structs into a Vec cannot fail.
    move |k, buf: &mut Vec<u8>| drop(serde_json::to_writer(buf, &item(k)))
}

fn json_body(body: Body) -> Response {
    (
        [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        body,
    )
        .into_response()
}

/// A JSON array of `n` items written by `write(0..n)`: built at once when small, streamed in
/// chunks (generated as the client reads) when large, so huge lists cost little memory.
fn array_response(n: usize, write: impl WriteItem) -> Response {
    let chunks = n.div_ceil(CHUNK).max(1);
    let range = move |c: usize| c * CHUNK..((c + 1) * CHUNK).min(n);
    let body = if n <= STREAM_THRESHOLD {
        let mut buf = Vec::new();
        for c in 0..chunks {
            buf.extend_from_slice(&array_chunk(range(c), Some(n), &write));
        }
        Body::from(buf)
    } else {
        let stream = futures::stream::iter(
            (0..chunks).map(move |c| Ok::<_, Infallible>(array_chunk(range(c), Some(n), &write))),
        );
        Body::from_stream(stream)
    };
    json_body(body)
}

/// A JSON array of as many items written by `write(0..)` as make about `bytes` bytes (at
/// least one chunk), streamed.
fn sized_array_response(bytes: u64, write: impl WriteItem) -> Response {
    let stream = futures::stream::unfold((0usize, 0u64), move |(k, sent)| {
        let chunk = (sent < bytes).then(|| {
            let mut part = array_chunk(k..k + CHUNK, None, &write).to_vec();
            let sent = sent + part.len() as u64;
            if sent >= bytes {
                part.push(b']');
            }
            (Ok::<_, Infallible>(Bytes::from(part)), (k + CHUNK, sent))
        });
        std::future::ready(chunk)
    });
    json_body(Body::from_stream(stream))
}

/// Writes device `i` as the account lists it: its record, or the malformed one it was given.
fn write_device(dataset: &Dataset, list: &DeviceList, i: usize, buf: &mut Vec<u8>) {
    match list.corrupt.get(&i) {
        Some(corruption) => buf.extend_from_slice(&corruption.record(dataset, i)),
        None => drop(serde_json::to_writer(buf, &dataset.device(i))),
    }
}

/// Decoded query parameters.
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(raw: Option<String>) -> Query {
        Query(
            raw.map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .collect()
            })
            .unwrap_or_default(),
        )
    }

    fn str(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn int(&self, name: &str) -> Result<Option<i64>, ApiError> {
        match self.str(name) {
            None => Ok(None),
            Some(v) => v.parse::<i64>().map(Some).map_err(|_| {
                ApiError::bad_request(format!("`{name}` must be an integer, got `{v}`"))
            }),
        }
    }

    fn required(&self, name: &str, why: &str) -> Result<&str, ApiError> {
        self.str(name)
            .ok_or_else(|| ApiError::bad_request(format!("`{name}` is required{why}")))
    }
}

fn path_param(p: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    p.map(|Path(s)| s)
        .map_err(|e| ApiError::bad_request(e.body_text()))
}

/// Counts, delays, applies the rate limit, injects faults and authenticates, before the
/// handler of `op` runs.
async fn gate(
    State((st, op)): State<(Arc<AppState>, Operation)>,
    req: Request,
    next: Next,
) -> Response {
    let _in_flight = st.counters.start(op);
    let latency = Duration::from_nanos(st.latency_nanos.load(Ordering::Relaxed));
    let deadline = (!latency.is_zero()).then(|| tokio::time::Instant::now() + latency);
    let limited = st.rate_limit.admit().err();
    let fault = match limited {
        Some(_) => None,
        None => st.faults.decide(op == Operation::GetAccessToken),
    };
    let uri = (st.log_capacity > 0).then(|| req.uri().clone());
    if let Some(kind) = fault {
        st.counters.fault(kind);
        tracing::debug!(operation = %op, fault = %kind, "injecting fault");
    }
    let response = match (limited, fault) {
        (Some(retry_after), _) => too_many_requests(retry_after),
        (None, Some(FaultKind::TooManyRequests)) => too_many_requests(RetryAfter::Seconds(1)),
        (None, Some(FaultKind::ServiceUnavailable)) => json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "Service temporarily unavailable",
        ),
        (None, Some(FaultKind::InternalErrorHtml)) => html_500(),
        (None, Some(FaultKind::DroppedConnection)) => {
            wait_until(deadline, st.precise_latency).await;
            st.record(op, req.uri(), None);
            if let Some(abort) = req.extensions().get::<ConnAbort>() {
                abort.0.notify_one();
                // The connection task drops this future, and the connection, right away.
                std::future::pending::<()>().await;
            }
            html_500()
        }
        (None, None | Some(FaultKind::TruncatedBody)) => {
            let auth = if op == Operation::GetAccessToken {
                Ok(())
            } else {
                st.tokens
                    .authorize(req.headers().get(AUTHORIZATION).map(HeaderValue::as_bytes))
            };
            match auth {
                Ok(()) => next.run(req).await,
                Err(rejection) => json_error(StatusCode::UNAUTHORIZED, rejection.message()),
            }
        }
    };
    wait_until(deadline, st.precise_latency).await;
    st.counters.status(response.status().as_u16());
    if let Some(uri) = uri {
        st.record(op, &uri, Some(response.status().as_u16()));
    }
    if fault == Some(FaultKind::TruncatedBody) {
        truncate(response).await
    } else {
        response
    }
}

/// `429 Too Many Requests`, with a JSON body and the `Retry-After` asked for.
fn too_many_requests(retry_after: RetryAfter) -> Response {
    let mut r = json_error(StatusCode::TOO_MANY_REQUESTS, "Too many requests");
    if let Some(value) = retry_after
        .value(std::time::SystemTime::now())
        .and_then(|v| HeaderValue::try_from(v).ok())
    {
        r.headers_mut().insert(RETRY_AFTER, value);
    }
    r
}

/// How much of a precise latency wait is slept on a blocking thread: more than tokio's timer
/// overshoots on a busy runtime, little enough that few threads are held at once.
const PRECISE_TAIL: Duration = Duration::from_millis(3);

/// Sleeps until `deadline`, if there is any latency at all (no timer for zero latency); when
/// `precise`, the last [`PRECISE_TAIL`] of it on a blocking thread, so that it ends on time
/// rather than on one of tokio's millisecond ticks.
async fn wait_until(deadline: Option<tokio::time::Instant>, precise: bool) {
    let Some(deadline) = deadline else { return };
    if !precise {
        tokio::time::sleep_until(deadline).await;
        return;
    }
    if let Some(early) = deadline.checked_sub(PRECISE_TAIL) {
        tokio::time::sleep_until(early).await;
    }
    let rest = deadline.saturating_duration_since(tokio::time::Instant::now());
    if !rest.is_zero() {
        // A failed blocking task (the runtime shutting down) ends the wait early: harmless.
        let _ = tokio::task::spawn_blocking(move || std::thread::sleep(rest)).await;
    }
}

fn html_500() -> Response {
    let body = "<!DOCTYPE html>\n<html><head><title>500 Internal Server Error</title></head>\n<body><center><h1>500 Internal Server Error</h1></center><hr><center>nginx</center></body></html>\n";
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

/// Keeps the status and headers, announces the full `Content-Length`, sends half the body and
/// then fails the body, which makes the server close the connection.
async fn truncate(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let full = bytes.len().max(1);
    let half = bytes.slice(..bytes.len() / 2);
    parts
        .headers
        .insert(CONTENT_LENGTH, HeaderValue::from(full));
    // Send the half, give the server a moment to flush it (with the head), then fail.
    let stream = futures::stream::unfold(Some(half), |state| async move {
        match state {
            Some(half) => Some((Ok(half), None)),
            None => {
                tokio::time::sleep(Duration::from_millis(5)).await;
                let e = std::io::Error::new(
                    std::io::ErrorKind::ConnectionAborted,
                    "injected truncated body",
                );
                Some((Err(e), None))
            }
        }
    });
    Response::from_parts(parts, Body::from_stream(stream))
}

async fn get_access_token(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let is_json = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("application/json"));
    let key = if is_json {
        serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| {
                v.get("api_key")
                    .and_then(|k| k.as_str())
                    .map(str::to_string)
            })
    } else {
        url::form_urlencoded::parse(&body)
            .find(|(k, _)| k == "api_key")
            .map(|(_, v)| v.into_owned())
    };
    let key = key
        .filter(|k| !k.is_empty())
        .ok_or_else(|| ApiError::bad_request("`api_key` is required"))?;
    match st.tokens.exchange(&key) {
        Ok(token) => {
            st.counters.token_exchanged();
            Ok(json_response(&json!({ "type": "bearer", "token": token })))
        }
        Err(refusal) => Err(ApiError(StatusCode::UNAUTHORIZED, refusal.message().into())),
    }
}

async fn list_devices(
    State(st): State<Arc<AppState>>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let q = Query::parse(raw);
    let limit = q.int("limit")?.unwrap_or(100);
    let page = q.int("page")?.unwrap_or(1);
    let churn = st.churn();
    let mut devices = st.devices.write().unwrap_or_else(|e| e.into_inner());
    if churn == Churn::AddEachRequest {
        devices.add(&st.dataset);
    }
    // What this answer lists: the account as it is now, whatever happens to it next.
    let list = devices.clone();
    if churn == Churn::RemoveFirstEachPage {
        devices.remove_first(&st.dataset);
    }
    drop(devices);
    let oversized = st.oversized_page.load(Ordering::Relaxed);
    if oversized > 0 {
        // Devices past the dataset's count too: as many distinct ones as the size takes.
        return Ok(sized_array_response(
            oversized,
            move |k, buf: &mut Vec<u8>| write_device(&st.dataset, &list, k, buf),
        ));
    }
    let n = list.len(&st.dataset);
    let (start, end) = if limit == -1 {
        (0, n)
    } else {
        if limit < 1 {
            return Err(ApiError::bad_request(format!(
                "`limit` must be -1 or at least 1, got {limit}"
            )));
        }
        if page < 1 {
            return Err(ApiError::bad_request(format!(
                "`page` must be at least 1 (the first page is 1), got {page}"
            )));
        }
        let start = (page as u64 - 1).saturating_mul(limit as u64).min(n as u64) as usize;
        (start, start.saturating_add(limit as usize).min(n))
    };
    Ok(array_response(end - start, move |k, buf: &mut Vec<u8>| {
        let i = list.at(&st.dataset, start + k);
        write_device(&st.dataset, &list, i, buf)
    }))
}

async fn get_device(
    State(st): State<Arc<AppState>>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = path_param(id)?;
    let i = st
        .find_device(&id)
        .ok_or_else(|| ApiError::not_found(format!("Device `{id}` not found")))?;
    let mut buf = Vec::new();
    let list = st.devices.read().unwrap_or_else(|e| e.into_inner());
    write_device(&st.dataset, &list, i, &mut buf);
    Ok(json_body(Body::from(buf)))
}

async fn get_telemetry(
    State(st): State<Arc<AppState>>,
    id: Result<Path<String>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let id = path_param(id)?;
    let q = Query::parse(raw);
    let kind = q.required("type", "")?;
    let averages = match kind {
        "latest" => None,
        "averages" => {
            let why = " when `type=averages`";
            let res = q.required("resolution", why)?;
            let res = Resolution::parse(res).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "`resolution` must be daily, weekly or monthly, got `{res}`"
                ))
            })?;
            let time = |name: &str| -> Result<_, ApiError> {
                let v = q.required(name, why)?;
                parse_timestamp(v).ok_or_else(|| {
                    ApiError::bad_request(format!("`{name}` is not a timestamp: `{v}`"))
                })
            };
            let (from, to) = (time("from")?, time("to")?);
            if from >= to {
                return Err(ApiError::bad_request("`from` must be before `to`"));
            }
            Some((res, from, to))
        }
        other => {
            return Err(ApiError::bad_request(format!(
                "`type` must be latest or averages, got `{other}`"
            )));
        }
    };
    let i = st
        .find_device(&id)
        .ok_or_else(|| ApiError::not_found(format!("Device `{id}` not found")))?;
    match averages {
        None => Ok(json_response(
            &st.dataset.latest(i, st.tick.load(Ordering::Relaxed)),
        )),
        Some((res, from, to)) => st
            .dataset
            .averages(i, res, from, to)
            .map(|r| json_response(&r))
            .map_err(ApiError::bad_request),
    }
}

async fn list_topologies(State(st): State<Arc<AppState>>) -> Response {
    let n = st.dataset.topology_count();
    // Each topology holds several devices: stream sooner than for flat lists.
    let per = st.dataset.config().devices_per_gateway.max(1);
    if n * per <= STREAM_THRESHOLD {
        json_response(&(0..n).map(|k| st.dataset.topology(k)).collect::<Vec<_>>())
    } else {
        array_response(n, serialised(move |k| st.dataset.topology(k)))
    }
}

async fn get_topology(
    State(st): State<Arc<AppState>>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = path_param(id)?;
    let k = st
        .dataset
        .find_topology(&id)
        .ok_or_else(|| ApiError::not_found(format!("Topology `{id}` not found")))?;
    Ok(json_response(&st.dataset.topology_details(k)))
}

async fn list_notifications(
    State(st): State<Arc<AppState>>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let q = Query::parse(raw);
    let mut limit = q.int("limit")?.unwrap_or(20);
    let offset = q.int("offset")?.unwrap_or(0);
    if limit > 50 && st.notification_limit == NotificationLimitPolicy::Clamp {
        limit = 50;
    }
    if !(1..=50).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "`limit` must be between 1 and 50, got {limit}"
        )));
    }
    if offset < 0 {
        return Err(ApiError::bad_request(format!(
            "`offset` must be at least 0, got {offset}"
        )));
    }
    let churn = st.churn();
    if churn == Churn::AddEachRequest {
        st.push_generated_notification();
    }
    let device = q.str("physical_id");
    let list = st.notifications.read().unwrap_or_else(|e| e.into_inner());
    let page: Vec<Notification> = list
        .iter()
        .rev()
        .filter(|n| {
            device.is_none_or(|d| {
                n.physical_id
                    .as_deref()
                    .is_some_and(|p| p.eq_ignore_ascii_case(d))
            })
        })
        .skip(offset as usize)
        .take(limit as usize)
        .cloned()
        .collect();
    drop(list);
    if churn == Churn::RemoveFirstEachPage {
        st.delete_newest_notifications(1);
    }
    Ok(json_response(&page))
}

async fn list_things(
    State(st): State<Arc<AppState>>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let q = Query::parse(raw);
    let limit = q.int("limit")?.unwrap_or(10);
    let n = match limit {
        -1 => None,
        l if l >= 1 => Some(l as usize),
        l => {
            return Err(ApiError::bad_request(format!(
                "`limit` must be -1 or at least 1, got {l}"
            )));
        }
    };
    Ok(json_response(&st.dataset.things(n)))
}

async fn not_found() -> Response {
    json_error(StatusCode::NOT_FOUND, "Not found")
}

/// The API router, every route under `/v1`.
pub(crate) fn router(st: Arc<AppState>) -> Router {
    let gated = |op: Operation, route: MethodRouter<Arc<AppState>>| {
        route.layer(middleware::from_fn_with_state((st.clone(), op), gate))
    };
    let api = Router::new()
        .route(
            "/auth/client/token",
            gated(Operation::GetAccessToken, post(get_access_token)),
        )
        .route("/devices", gated(Operation::ListDevices, get(list_devices)))
        .route(
            "/devices/{physical_id}",
            gated(Operation::GetDevice, get(get_device)),
        )
        .route(
            "/telemetry/{physical_id}",
            gated(Operation::GetTelemetry, get(get_telemetry)),
        )
        .route(
            "/topologies",
            gated(Operation::ListTopologies, get(list_topologies)),
        )
        .route(
            "/topologies/{topology_id}",
            gated(Operation::GetTopology, get(get_topology)),
        )
        .route(
            "/notifications",
            gated(Operation::ListNotifications, get(list_notifications)),
        )
        .route("/things", gated(Operation::ListThings, get(list_things)));
    Router::new()
        .nest("/v1", api)
        .fallback(not_found)
        .with_state(st)
}
