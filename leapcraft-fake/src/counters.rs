//! Counters of what the fake served: requests and peak concurrency per operation, token
//! exchanges, injected faults per kind, `401`s and `429`s.
//!
//! Read them with [`crate::FakeServer::counters`] (a [`CountersSnapshot`]) and zero them with
//! [`crate::FakeServer::reset_counters`]. Every request that reaches an operation's route is
//! counted, whether it then fails (fault, 400, 401, 404) or not.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::faults::FaultKind;

/// The operations of the API, by `operationId`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// `POST /auth/client/token`.
    GetAccessToken,
    /// `GET /devices`.
    ListDevices,
    /// `GET /devices/{physical_id}`.
    GetDevice,
    /// `GET /telemetry/{physical_id}`.
    GetTelemetry,
    /// `GET /topologies`.
    ListTopologies,
    /// `GET /topologies/{topology_id}`.
    GetTopology,
    /// `GET /notifications`.
    ListNotifications,
    /// `GET /things`.
    ListThings,
}

impl Operation {
    /// Every operation, in the spec's order.
    pub const ALL: [Operation; 8] = [
        Operation::GetAccessToken,
        Operation::ListDevices,
        Operation::GetDevice,
        Operation::GetTelemetry,
        Operation::ListTopologies,
        Operation::GetTopology,
        Operation::ListNotifications,
        Operation::ListThings,
    ];

    /// The spec's `operationId`, such as `list_devices`.
    pub fn operation_id(self) -> &'static str {
        match self {
            Operation::GetAccessToken => "get_access_token",
            Operation::ListDevices => "list_devices",
            Operation::GetDevice => "get_device",
            Operation::GetTelemetry => "get_telemetry",
            Operation::ListTopologies => "list_topologies",
            Operation::GetTopology => "get_topology",
            Operation::ListNotifications => "list_notifications",
            Operation::ListThings => "list_things",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.operation_id())
    }
}

/// One number per operation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpCounts {
    /// `get_access_token`.
    pub get_access_token: u64,
    /// `list_devices`.
    pub list_devices: u64,
    /// `get_device`.
    pub get_device: u64,
    /// `get_telemetry`.
    pub get_telemetry: u64,
    /// `list_topologies`.
    pub list_topologies: u64,
    /// `get_topology`.
    pub get_topology: u64,
    /// `list_notifications`.
    pub list_notifications: u64,
    /// `list_things`.
    pub list_things: u64,
}

impl OpCounts {
    /// The number for one operation.
    pub fn get(&self, op: Operation) -> u64 {
        self.as_array()[op as usize]
    }

    /// The sum over all operations.
    pub fn total(&self) -> u64 {
        self.as_array().iter().sum()
    }

    fn as_array(&self) -> [u64; 8] {
        [
            self.get_access_token,
            self.list_devices,
            self.get_device,
            self.get_telemetry,
            self.list_topologies,
            self.get_topology,
            self.list_notifications,
            self.list_things,
        ]
    }

    fn from_array(a: [u64; 8]) -> Self {
        OpCounts {
            get_access_token: a[0],
            list_devices: a[1],
            get_device: a[2],
            get_telemetry: a[3],
            list_topologies: a[4],
            get_topology: a[5],
            list_notifications: a[6],
            list_things: a[7],
        }
    }
}

/// Injected faults, per kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultCounts {
    /// `429` responses.
    pub too_many_requests: u64,
    /// `503` responses.
    pub service_unavailable: u64,
    /// HTML `500` responses.
    pub internal_error_html: u64,
    /// Connections dropped without a response.
    pub dropped_connection: u64,
    /// Truncated bodies.
    pub truncated_body: u64,
}

impl FaultCounts {
    /// The count for one kind.
    pub fn get(&self, kind: FaultKind) -> u64 {
        match kind {
            FaultKind::TooManyRequests => self.too_many_requests,
            FaultKind::ServiceUnavailable => self.service_unavailable,
            FaultKind::InternalErrorHtml => self.internal_error_html,
            FaultKind::DroppedConnection => self.dropped_connection,
            FaultKind::TruncatedBody => self.truncated_body,
        }
    }

    /// All injected faults.
    pub fn total(&self) -> u64 {
        FaultKind::ALL.iter().map(|k| self.get(*k)).sum()
    }
}

/// A snapshot of the counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CountersSnapshot {
    /// Requests received per operation (every attempt, failed or not).
    pub requests: OpCounts,
    /// The most requests of each operation in flight at once (latency included).
    pub peak_in_flight: OpCounts,
    /// Successful token exchanges (tokens issued). Attempts are `requests.get_access_token`.
    pub token_exchanges: u64,
    /// Injected faults per kind.
    pub faults: FaultCounts,
    /// `401` responses served (bad key, missing, malformed, unknown or expired token).
    pub unauthorized: u64,
    /// `400` responses served.
    pub bad_requests: u64,
    /// `404` responses served for unknown devices and topologies.
    pub not_found: u64,
    /// `429` responses served: by the rate limit, or injected as faults (those are also in
    /// [`faults`](Self::faults)).
    pub too_many_requests: u64,
}

/// The live counters, updated by the server.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    requests: [AtomicU64; 8],
    in_flight: [AtomicU64; 8],
    peak: [AtomicU64; 8],
    token_exchanges: AtomicU64,
    faults: [AtomicU64; 5],
    unauthorized: AtomicU64,
    bad_requests: AtomicU64,
    not_found: AtomicU64,
    too_many_requests: AtomicU64,
}

/// Decrements the in-flight count of an operation when dropped (also when the request's
/// future is dropped, as happens for a dropped connection).
pub(crate) struct InFlight<'a> {
    counters: &'a Counters,
    op: Operation,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.counters.in_flight[self.op as usize].fetch_sub(1, Ordering::Relaxed);
    }
}

impl Counters {
    /// Counts a request and marks it in flight until the guard is dropped.
    pub(crate) fn start(&self, op: Operation) -> InFlight<'_> {
        let i = op as usize;
        self.requests[i].fetch_add(1, Ordering::Relaxed);
        let now = self.in_flight[i].fetch_add(1, Ordering::Relaxed) + 1;
        self.peak[i].fetch_max(now, Ordering::Relaxed);
        InFlight { counters: self, op }
    }

    pub(crate) fn token_exchanged(&self) {
        self.token_exchanges.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn fault(&self, kind: FaultKind) {
        self.faults[kind.index()].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn status(&self, status: u16) {
        let c = match status {
            400 => &self.bad_requests,
            401 => &self.unauthorized,
            404 => &self.not_found,
            429 => &self.too_many_requests,
            _ => return,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> CountersSnapshot {
        let load = |a: &[AtomicU64; 8]| std::array::from_fn(|i| a[i].load(Ordering::Relaxed));
        let f = |k: FaultKind| self.faults[k.index()].load(Ordering::Relaxed);
        CountersSnapshot {
            requests: OpCounts::from_array(load(&self.requests)),
            peak_in_flight: OpCounts::from_array(load(&self.peak)),
            token_exchanges: self.token_exchanges.load(Ordering::Relaxed),
            faults: FaultCounts {
                too_many_requests: f(FaultKind::TooManyRequests),
                service_unavailable: f(FaultKind::ServiceUnavailable),
                internal_error_html: f(FaultKind::InternalErrorHtml),
                dropped_connection: f(FaultKind::DroppedConnection),
                truncated_body: f(FaultKind::TruncatedBody),
            },
            unauthorized: self.unauthorized.load(Ordering::Relaxed),
            bad_requests: self.bad_requests.load(Ordering::Relaxed),
            not_found: self.not_found.load(Ordering::Relaxed),
            too_many_requests: self.too_many_requests.load(Ordering::Relaxed),
        }
    }

    /// Zeroes every counter; peaks restart from the requests in flight now.
    pub(crate) fn reset(&self) {
        for i in 0..8 {
            self.requests[i].store(0, Ordering::Relaxed);
            self.peak[i].store(self.in_flight[i].load(Ordering::Relaxed), Ordering::Relaxed);
        }
        for f in &self.faults {
            f.store(0, Ordering::Relaxed);
        }
        for c in [
            &self.token_exchanges,
            &self.unauthorized,
            &self.bad_requests,
            &self.not_found,
            &self.too_many_requests,
        ] {
            c.store(0, Ordering::Relaxed);
        }
    }
}
