//! The server handle: [`FakeServerBuilder`] configures and starts a fake, [`FakeServer`] is
//! the running server (its URL, a valid key, counters and the test controls), shut down by
//! [`FakeServer::shutdown`] or on drop.
//!
//! Connections are served by hyper's HTTP/1.1 server, one task per connection, with the axum
//! router of [`crate::routes`] as the service. The loop is hand-written rather than
//! `axum::serve` so that a request can close its own connection without a response (the
//! dropped-connection fault).

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tower_service::Service;

use crate::account::{Churn, Corruption, DeviceList};
use crate::auth::{DEMO_KEY, TokenStore};
use crate::counters::{Counters, CountersSnapshot};
use crate::dataset::{Dataset, DatasetConfig, Notification};
use crate::faults::{FaultInjector, FaultKind};
use crate::rate_limit::{Limiter, RateLimit};
use crate::routes::{AppState, ConnAbort, NotificationLimitPolicy, RecordedRequest, router};

/// Why a fake could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listening socket could not be set up.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// A setting is out of range.
    #[error("invalid configuration: {0}")]
    Config(String),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Configures a [`FakeServer`]. Every setting has a default: [`FakeServer::start_default`]
/// is `FakeServer::builder().start()`.
#[derive(Debug, Clone)]
#[must_use]
pub struct FakeServerBuilder {
    dataset: DatasetConfig,
    notifications: Option<usize>,
    keys: Vec<String>,
    token_max_uses: Option<u64>,
    token_ttl: Option<Duration>,
    revoke_after: Option<u64>,
    fault_rate: f64,
    fault_kinds: Vec<FaultKind>,
    fault_token_exchange: bool,
    latency: Duration,
    precise_latency: bool,
    rate_limit: Option<RateLimit>,
    host: IpAddr,
    port: u16,
    notification_limit: NotificationLimitPolicy,
    churn: Churn,
    corrupt: Vec<(usize, Corruption)>,
    oversized_page: Option<u64>,
    live: Option<Duration>,
    fresh_readings: bool,
    record: usize,
}

impl Default for FakeServerBuilder {
    fn default() -> Self {
        FakeServerBuilder {
            dataset: DatasetConfig::default(),
            notifications: None,
            keys: Vec::new(),
            token_max_uses: None,
            token_ttl: None,
            revoke_after: None,
            fault_rate: 0.0,
            fault_kinds: FaultKind::ALL.to_vec(),
            fault_token_exchange: false,
            latency: Duration::ZERO,
            precise_latency: false,
            rate_limit: None,
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            notification_limit: NotificationLimitPolicy::Reject,
            churn: Churn::None,
            corrupt: Vec::new(),
            oversized_page: None,
            live: None,
            fresh_readings: false,
            record: 0,
        }
    }
}

impl FakeServerBuilder {
    /// Seed of the dataset and of the fault generator (default [`crate::DEFAULT_SEED`]).
    pub fn seed(mut self, seed: u64) -> Self {
        self.dataset.seed = seed;
        self
    }

    /// Number of devices (default 25).
    pub fn devices(mut self, n: usize) -> Self {
        self.dataset.devices = n;
        self
    }

    /// Devices per topology, the gateway included (default 8).
    pub fn devices_per_gateway(mut self, n: usize) -> Self {
        self.dataset.devices_per_gateway = n.max(1);
        self
    }

    /// Number of things (default 14).
    pub fn things(mut self, n: usize) -> Self {
        self.dataset.things = n;
        self
    }

    /// Number of notifications at start (default 3 per device, at most 10,000).
    pub fn notifications(mut self, n: usize) -> Self {
        self.notifications = Some(n);
        self
    }

    /// Adds a valid API key. Without any, the key is [`DEMO_KEY`] (`demo-key`).
    pub fn valid_key(mut self, key: impl Into<String>) -> Self {
        self.keys.push(key.into());
        self
    }

    /// Tokens stop working after this many requests (default: unlimited).
    pub fn token_max_uses(mut self, uses: u64) -> Self {
        self.token_max_uses = Some(uses);
        self
    }

    /// Tokens stop working this long after they were issued (default: never). Measured on
    /// the fake's clock, which [`FakeServer::advance_clock`] moves forward.
    pub fn token_ttl(mut self, ttl: Duration) -> Self {
        self.token_ttl = Some(ttl);
        self
    }

    /// The API key is revoked after this many successful token exchanges (default: never):
    /// from then on the exchange answers `401` ("API key revoked"), while the tokens already
    /// issued work until they expire.
    pub fn revoke_key_after_exchanges(mut self, exchanges: u64) -> Self {
        self.revoke_after = Some(exchanges);
        self
    }

    /// Probability, from 0.0 to 1.0, that a request fails with an injected fault (default 0).
    pub fn fault_rate(mut self, rate: f64) -> Self {
        self.fault_rate = rate;
        self
    }

    /// Which faults to inject (default: all of [`FaultKind::ALL`]).
    pub fn fault_kinds(mut self, kinds: impl IntoIterator<Item = FaultKind>) -> Self {
        self.fault_kinds = kinds.into_iter().collect();
        self
    }

    /// Whether the token exchange is subject to faults too (default: no).
    pub fn fault_token_exchange(mut self, yes: bool) -> Self {
        self.fault_token_exchange = yes;
        self
    }

    /// Minimum time each request takes (default zero): the response is sent no sooner.
    pub fn latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// Whether the [`latency`](Self::latency) is kept to within a fraction of a millisecond
    /// (default: no). tokio's timer ends a wait on one of its 1 ms ticks, and later when the
    /// runtime is busy, so that "20 ms" takes about 21.5 ms; with this, the last few
    /// milliseconds of each wait are slept on a blocking thread, whose sleep is accurate.
    /// For benchmarks, whose bounds count the latency asked for; not for a paused tokio clock,
    /// as that part of the wait is real time.
    pub fn precise_latency(mut self, yes: bool) -> Self {
        self.precise_latency = yes;
        self
    }

    /// A request-rate limit over all operations, beyond which requests are answered `429`
    /// (default: none). See [`crate::rate_limit`].
    pub fn rate_limit(mut self, limit: RateLimit) -> Self {
        self.rate_limit = Some(limit);
        self
    }

    /// Address to listen on (default 127.0.0.1).
    pub fn host(mut self, host: IpAddr) -> Self {
        self.host = host;
        self
    }

    /// Port to listen on (default 0: any free port).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// What `limit` above 50 does on `GET /notifications` (default: `400`).
    pub fn notification_limit_policy(mut self, policy: NotificationLimitPolicy) -> Self {
        self.notification_limit = policy;
        self
    }

    /// How the device and notification lists change while they are read (default:
    /// [`Churn::None`]); also [`FakeServer::set_churn`].
    pub fn churn(mut self, churn: Churn) -> Self {
        self.churn = churn;
        self
    }

    /// Serves device `index` (of the dataset) as a malformed record, in `GET /devices` and
    /// `GET /devices/{physical_id}`; its id and readings stay as they are. Repeatable.
    pub fn corrupt_device(mut self, index: usize, corruption: Corruption) -> Self {
        self.corrupt.push((index, corruption));
        self
    }

    /// Answers every `GET /devices` with about `bytes` bytes of distinct devices (at least
    /// 250), whatever its `limit` and `page` (default: off): a page far larger than asked.
    /// The body is streamed, so the fake's memory stays small.
    pub fn oversized_device_page(mut self, bytes: u64) -> Self {
        self.oversized_page = Some(bytes);
        self
    }

    /// Makes the fake live: every `every`, each device gets a new latest reading and a new
    /// notification is raised (default: off; use [`FakeServer::advance_readings`] and
    /// [`FakeServer::push_notification`] in tests instead).
    pub fn live(mut self, every: Duration) -> Self {
        self.live = Some(every);
        self
    }

    /// Stamps the latest readings (and new notifications) from the moment the server starts,
    /// instead of the docs' fixed `2026-03-29T15:24:05Z` (default: off), so that they are
    /// current for a consumer that hides old readings, such as an exporter. With
    /// [`live`](Self::live) every minute, they stay current.
    pub fn fresh_readings(mut self, yes: bool) -> Self {
        self.fresh_readings = yes;
        self
    }

    /// Keeps the last `capacity` requests as the fake decoded them (operation, path
    /// parameter, query), readable with [`FakeServer::recorded_requests`] (default 0: off).
    pub fn record_requests(mut self, capacity: usize) -> Self {
        self.record = capacity;
        self
    }

    /// Binds the socket and starts serving on the current tokio runtime.
    pub async fn start(self) -> Result<FakeServer> {
        if !(0.0..=1.0).contains(&self.fault_rate) {
            return Err(Error::Config(format!(
                "fault rate must be between 0 and 1, got {}",
                self.fault_rate
            )));
        }
        if self.live.is_some_and(|d| d.is_zero()) {
            return Err(Error::Config("the live interval must not be zero".into()));
        }
        if let Some(limit) = &self.rate_limit {
            limit.check().map_err(Error::Config)?;
        }
        let mut dataset = self.dataset.clone();
        if self.fresh_readings {
            dataset.latest_epoch = chrono::Utc::now().timestamp();
        }
        dataset.notifications = self
            .notifications
            .unwrap_or_else(|| dataset.devices.saturating_mul(3).min(10_000));
        let dataset = Dataset::new(dataset);
        let keys = if self.keys.is_empty() {
            vec![DEMO_KEY.to_string()]
        } else {
            self.keys.clone()
        };
        let notifications = dataset.initial_notifications();
        let (last_notification_id, last_notification_secs) =
            AppState::notification_clock(&notifications);
        let mut devices = DeviceList::default();
        devices.corrupt.extend(self.corrupt.iter().copied());
        let tokens = TokenStore::new(keys, self.token_max_uses, self.token_ttl);
        if let Some(n) = self.revoke_after {
            tokens.revoke_after(n);
        }
        let state = Arc::new(AppState {
            notifications: RwLock::new(notifications),
            last_notification_id,
            last_notification_secs,
            devices: RwLock::new(devices),
            churn: Mutex::new(self.churn),
            oversized_page: AtomicU64::new(self.oversized_page.unwrap_or(0)),
            faults: FaultInjector::new(
                dataset.config().seed,
                self.fault_rate,
                self.fault_kinds.clone(),
                self.fault_token_exchange,
            ),
            rate_limit: Limiter::default(),
            dataset,
            tokens,
            counters: Counters::default(),
            latency_nanos: AtomicU64::new(self.latency.as_nanos().min(u128::from(u64::MAX)) as u64),
            precise_latency: self.precise_latency,
            tick: AtomicU64::new(0),
            pushed: AtomicU64::new(0),
            notification_limit: self.notification_limit,
            log: Mutex::new(VecDeque::new()),
            log_capacity: self.record,
        });

        state.rate_limit.set(self.rate_limit);

        let addr = SocketAddr::new(self.host, self.port);
        let bind = |e| Error::Bind { addr, source: e };
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        }
        .map_err(bind)?;
        #[cfg(unix)]
        socket.set_reuseaddr(true).map_err(bind)?;
        socket.bind(addr).map_err(bind)?;
        // A deep backlog: benchmarks open thousands of connections at once.
        let listener = socket.listen(4096).map_err(bind)?;
        let local = listener.local_addr().map_err(bind)?;

        let (shutdown, shutdown_rx) = watch::channel(false);
        let task = tokio::spawn(serve(listener, router(state.clone()), shutdown_rx.clone()));
        if let Some(every) = self.live {
            // Created here, not in the task, so ticks count from the start.
            let interval = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            tokio::spawn(live(state.clone(), interval, shutdown_rx));
        }
        let api_key = state.tokens.first_key().to_string();
        let host = match local.ip() {
            IpAddr::V6(ip) => format!("[{ip}]"),
            IpAddr::V4(ip) => ip.to_string(),
        };
        tracing::info!(addr = %local, "leapcraft-fake listening");
        Ok(FakeServer {
            base_url: format!("http://{host}:{}/v1", local.port()),
            addr: local,
            api_key,
            state,
            shutdown,
            task: Some(task),
        })
    }
}

async fn serve(listener: TcpListener, app: axum::Router, mut shutdown: watch::Receiver<bool>) {
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Typically out of file descriptors: back off briefly, keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let mut shutdown = shutdown.clone();
        tokio::spawn(async move {
            let abort = Arc::new(Notify::new());
            let ext = ConnAbort(abort.clone());
            let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                req.extensions_mut().insert(ext.clone());
                let mut app = app.clone();
                async move { app.call(req).await }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .header_read_timeout(None)
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = conn => {}
                _ = abort.notified() => {}
                _ = shutdown.changed() => {}
            }
        });
    }
}

async fn live(
    state: Arc<AppState>,
    mut interval: tokio::time::Interval,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = interval.tick() => {
                state.tick.fetch_add(1, Ordering::Relaxed);
                state.push_generated_notification();
            }
            _ = shutdown.changed() => break,
        }
    }
}

/// A running fake Leapcraft server. Dropping it shuts it down.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use leapcraft_fake::{FakeServer, FaultKind};
///
/// let fake = FakeServer::builder().devices(100).token_max_uses(25).start().await?;
/// assert!(fake.base_url().starts_with("http://127.0.0.1:"));
/// fake.inject_faults(FaultKind::TooManyRequests, 1); // the next request gets a 429
/// assert_eq!(fake.counters().requests.total(), 0);
/// fake.shutdown().await;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct FakeServer {
    base_url: String,
    addr: SocketAddr,
    api_key: String,
    state: Arc<AppState>,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl FakeServer {
    /// A builder with every default.
    pub fn builder() -> FakeServerBuilder {
        FakeServerBuilder::default()
    }

    /// Starts a fake with every default: 25 devices, key `demo-key`, no faults, no latency,
    /// on 127.0.0.1 and a free port.
    pub async fn start_default() -> Result<FakeServer> {
        FakeServerBuilder::default().start().await
    }

    /// The base URL of the API, `http://127.0.0.1:PORT/v1`, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A valid API key (the first configured one).
    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    /// The dataset served, to compute expected values in tests.
    pub fn dataset(&self) -> &Dataset {
        &self.state.dataset
    }

    /// A snapshot of the counters.
    pub fn counters(&self) -> CountersSnapshot {
        self.state.counters.snapshot()
    }

    /// Zeroes the counters.
    pub fn reset_counters(&self) {
        self.state.counters.reset();
    }

    /// Expires every token issued so far: their next use is a `401`.
    pub fn expire_tokens(&self) {
        self.state.tokens.expire_all();
    }

    /// Revokes the API key now: the token exchange answers `401` from now on, while the tokens
    /// already issued work until they expire.
    pub fn revoke_key(&self) {
        self.state.tokens.revoke_now();
    }

    /// Changes how the lists change while read (see [`FakeServerBuilder::churn`]).
    pub fn set_churn(&self, churn: Churn) {
        *self.state.churn.lock().unwrap_or_else(|e| e.into_inner()) = churn;
    }

    /// Serves device `index` as a malformed record from now on (see
    /// [`FakeServerBuilder::corrupt_device`]); `None` serves it whole again.
    pub fn corrupt_device(&self, index: usize, corruption: Option<Corruption>) {
        let mut devices = self
            .state
            .devices
            .write()
            .unwrap_or_else(|e| e.into_inner());
        match corruption {
            Some(c) => devices.corrupt.insert(index, c),
            None => devices.corrupt.remove(&index),
        };
    }

    /// Answers every `GET /devices` with about `bytes` bytes of devices from now on (see
    /// [`FakeServerBuilder::oversized_device_page`]); `None` serves pages as asked again.
    pub fn set_oversized_device_page(&self, bytes: Option<u64>) {
        self.state
            .oversized_page
            .store(bytes.unwrap_or(0), Ordering::Relaxed);
    }

    /// The physical ids of the devices on the account now, as `GET /devices` lists them
    /// (newest first): the dataset's, less the deleted ones, plus the added ones.
    pub fn device_ids(&self) -> Vec<String> {
        let devices = self.state.devices.read().unwrap_or_else(|e| e.into_inner());
        let dataset = &self.state.dataset;
        devices
            .slice(dataset, 0..devices.len(dataset))
            .into_iter()
            .map(|i| dataset.physical_id(i))
            .collect()
    }

    /// Deletes the `n` newest notifications (all of them if there are fewer). Ids are never
    /// reused: the next notification raised gets a new one.
    pub fn delete_newest_notifications(&self, n: usize) {
        self.state.delete_newest_notifications(n);
    }

    /// Moves the clock of token lifetimes forward (see [`FakeServerBuilder::token_ttl`]).
    pub fn advance_clock(&self, by: Duration) {
        self.state.tokens.clock().advance(by);
    }

    /// Gives every device a new latest reading, one minute after its previous one, and
    /// returns the new reading tick (0 at start).
    pub fn advance_readings(&self) -> u64 {
        self.state.tick.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// The current reading tick (see [`FakeServer::advance_readings`]).
    pub fn readings_tick(&self) -> u64 {
        self.state.tick.load(Ordering::Relaxed)
    }

    /// Raises a notification: it gets the next id and a `created_at` after every other, and
    /// appears first in `GET /notifications`.
    pub fn push_notification(
        &self,
        physical_id: &str,
        category: &str,
        message: &str,
    ) -> Notification {
        self.state
            .push_notification(Some(physical_id.to_string()), category, message)
    }

    /// Raises a plausible notification for a device of the dataset.
    pub fn push_generated_notification(&self) -> Notification {
        self.state.push_generated_notification()
    }

    /// Every notification, oldest first.
    pub fn notifications(&self) -> Vec<Notification> {
        self.state
            .notifications
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The recorded requests, oldest first (empty unless
    /// [`FakeServerBuilder::record_requests`] is set).
    pub fn recorded_requests(&self) -> Vec<RecordedRequest> {
        self.state
            .log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    /// Changes the fault rate (clamped to 0.0..=1.0).
    pub fn set_fault_rate(&self, rate: f64) {
        self.state.faults.set_rate(rate);
    }

    /// Changes which faults the rate draws from.
    pub fn set_fault_kinds(&self, kinds: impl IntoIterator<Item = FaultKind>) {
        self.state.faults.set_kinds(kinds.into_iter().collect());
    }

    /// Changes whether the token exchange is subject to faults.
    pub fn set_fault_token_exchange(&self, yes: bool) {
        self.state.faults.set_on_token_exchange(yes);
    }

    /// Makes the next `count` requests (token exchanges only if those are subject to faults)
    /// fail with `kind`, whatever the rate.
    pub fn inject_faults(&self, kind: FaultKind, count: usize) {
        self.state.faults.queue(kind, count);
    }

    /// Sets, changes or (`None`) removes the request-rate limit while serving: the tokens in
    /// the bucket stay (up to the new burst) and the new rate applies from now on. A limit
    /// that is not a positive rate with a burst of at least 1 is refused.
    pub fn set_rate_limit(&self, limit: Option<RateLimit>) -> Result<()> {
        if let Some(limit) = &limit {
            limit.check().map_err(Error::Config)?;
        }
        self.state.rate_limit.set(limit);
        Ok(())
    }

    /// The request-rate limit in force.
    pub fn rate_limit(&self) -> Option<RateLimit> {
        self.state.rate_limit.limit()
    }

    /// Changes the latency added to each request.
    pub fn set_latency(&self, latency: Duration) {
        self.state.latency_nanos.store(
            latency.as_nanos().min(u128::from(u64::MAX)) as u64,
            Ordering::Relaxed,
        );
    }

    /// Stops accepting connections, closes the open ones and waits until the listening socket
    /// is closed.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}
