//! Figure 5: `latest_many` against a fake that limits the request rate, with the client's
//! rate limiter off and adaptive (the default), then with the server's limit dropping and
//! rising during the run, sampled once a second to show the client's pace following it.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use leapcraft_ext::{Client, RateLimit};
use leapcraft_fake::{FakeServer, RateLimit as ServerLimit};

use crate::{Result, Row, Sizes, secs};

/// The sizes of figure 5.
#[derive(Debug, Clone)]
pub struct RateSizes {
    pub devices: usize,
    pub concurrency: usize,
    pub latency: Duration,
    /// The server's limit, requests a second (a burst of one second's worth, `Retry-After: 1`).
    pub limit: f64,
    /// Changes of the server's limit during the third run: after this long, this many a second.
    pub changes: [(Duration, f64); 2],
    /// The third run's table has a line per this interval; its counters are read ten times
    /// as often, for the time the client takes to follow a change.
    pub sample: Duration,
}

impl RateSizes {
    pub fn full() -> Self {
        RateSizes {
            devices: 2_000,
            concurrency: 64,
            latency: Duration::from_millis(20),
            limit: 100.0,
            changes: [
                (Duration::from_secs(6), 50.0),
                (Duration::from_secs(14), 200.0),
            ],
            sample: Duration::from_secs(1),
        }
    }

    pub fn quick() -> Self {
        RateSizes {
            devices: 150,
            concurrency: 16,
            latency: Duration::from_millis(5),
            limit: 100.0,
            changes: [
                (Duration::from_millis(200), 50.0),
                (Duration::from_millis(400), 200.0),
            ],
            sample: Duration::from_millis(100),
        }
    }
}

/// What one run did.
struct Run {
    failed: usize,
    requests: u64,
    refused: u64,
    wall: Duration,
    samples: Vec<Sample>,
}

/// The state at the end of one sampling interval.
struct Sample {
    /// Since the start of the run.
    at: Duration,
    limit: f64,
    /// Requests the server received so far, and how many it answered `429`.
    requests: u64,
    refused: u64,
    /// The client's rate in force.
    rate: Option<f64>,
}

async fn run(r: &RateSizes, limiter: RateLimit, changes: Vec<(Duration, f64)>) -> Result<Run> {
    let fake = Arc::new(
        FakeServer::builder()
            .devices(r.devices)
            .latency(r.latency)
            .precise_latency(true)
            .rate_limit(ServerLimit::per_second(r.limit))
            .start()
            .await?,
    );
    let client = Client::builder()
        .api_key(fake.api_key())
        .base_url(fake.base_url())
        .rate_limit(limiter)
        .build()?;
    let ids: Vec<String> = (0..r.devices)
        .map(|i| fake.dataset().physical_id(i))
        .collect();

    // Samples the counters every interval and changes the server's limit on schedule, until
    // told to stop.
    let started = tokio::time::Instant::now();
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let sampler = {
        let (fake, client, every) = (fake.clone(), client.clone(), r.sample);
        let mut changes = changes.into_iter().peekable();
        let mut limit = r.limit;
        tokio::spawn(async move {
            let sample = |limit| {
                let seen = fake.counters();
                Sample {
                    at: started.elapsed(),
                    limit,
                    requests: seen.requests.total(),
                    refused: seen.too_many_requests,
                    rate: client.stats().request_rate,
                }
            };
            let mut samples = vec![sample(limit)];
            let every = every / READS_PER_SAMPLE as u32;
            let mut tick = tokio::time::interval_at(started + every, every);
            loop {
                let change = changes.peek().map(|(after, _)| started + *after);
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = tick.tick() => samples.push(sample(limit)),
                    _ = tokio::time::sleep_until(change.unwrap_or(started)), if change.is_some() => {
                        if let Some((_, new)) = changes.next() {
                            limit = new;
                            let _ = fake.set_rate_limit(Some(ServerLimit::per_second(new)));
                        }
                    }
                }
            }
            samples.push(sample(limit));
            samples
        })
    };
    let wall_start = Instant::now();
    let failed = client
        .latest_many(ids, r.concurrency)
        .filter(|(_, reading)| std::future::ready(reading.is_err()))
        .count()
        .await;
    let wall = wall_start.elapsed();
    let _ = stop.send(());
    let samples = sampler.await?;
    let seen = fake.counters();
    Ok(Run {
        failed,
        requests: seen.requests.total(),
        refused: seen.too_many_requests,
        wall,
        samples,
    })
}

/// Counter readings per line of the table, and per window of the follow time.
const READS_PER_SAMPLE: usize = 10;

fn percent(part: u64, whole: u64) -> f64 {
    100.0 * part as f64 / whole.max(1) as f64
}

/// How long after `at` the client's pace first came within a fifth of `limit`, over a window
/// of one table interval ending then: the requests it sent fell to 1.2 × `limit` (when the
/// limit dropped from `before`), or the requests accepted rose to 0.8 × `limit` (when it
/// rose). `None` if never.
fn follow_time(samples: &[Sample], at: Duration, before: f64, limit: f64) -> Option<Duration> {
    samples.windows(READS_PER_SAMPLE + 1).find_map(|window| {
        let (start, end) = (&window[0], &window[READS_PER_SAMPLE]);
        let secs = (end.at - start.at).as_secs_f64();
        let sent = (end.requests - start.requests) as f64 / secs;
        let accepted = sent - (end.refused - start.refused) as f64 / secs;
        let within = if limit < before {
            sent <= 1.2 * limit
        } else {
            accepted >= 0.8 * limit
        };
        (end.at > at && within).then(|| end.at - at)
    })
}

/// The third run, a line per table interval (and one for the rest at the end).
fn timeline(samples: &[Sample]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| until (s) | server limit (req/s) | sent (req/s) | answered 429 | accepted (req/s) | client's rate (req/s) |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|");
    let lines = samples
        .iter()
        .enumerate()
        .filter(|(i, _)| i % READS_PER_SAMPLE == 0 || *i == samples.len() - 1)
        .map(|(_, s)| s);
    let mut last: Option<&Sample> = None;
    for s in lines {
        let Some(from) = last.replace(s) else {
            continue;
        };
        let secs = (s.at - from.at).as_secs_f64().max(1e-9);
        let sent = s.requests - from.requests;
        let refused = s.refused - from.refused;
        let _ = writeln!(
            out,
            "| {:.1} | {:.0} | {:.0} | {refused} | {:.0} | {} |",
            s.at.as_secs_f64(),
            s.limit,
            sent as f64 / secs,
            (sent - refused) as f64 / secs,
            s.rate.map_or("none".to_owned(), |r| format!("{r:.0}"))
        );
    }
    out
}

/// Figure 5: its rows, and the rate over time of the run whose limit changes.
pub async fn figure(s: &Sizes) -> Result<(Vec<Row>, String)> {
    let r = &s.rates;
    let (n, limit) = (r.devices, r.limit);
    let ideal = Duration::from_secs_f64(n as f64 / limit);
    let off = run(r, RateLimit::Off, Vec::new()).await?;
    let adaptive = run(r, RateLimit::Adaptive, Vec::new()).await?;
    let changing = run(r, RateLimit::Adaptive, r.changes.to_vec()).await?;

    let setting = format!(
        "latest_many, {n} devices, concurrency {}, {} ms latency, the fake limited to {limit:.0} req/s (burst {limit:.0}, `429` with `Retry-After: 1`)",
        r.concurrency,
        r.latency.as_millis()
    );
    let outcome = |run: &Run| {
        format!(
            "{} of {n} devices failed; {} of {} requests answered 429 ({:.1} %); {}",
            run.failed,
            run.refused,
            run.requests,
            percent(run.refused, run.requests),
            secs(run.wall)
        )
    };
    let share = percent(adaptive.refused, adaptive.requests);
    let wall = crate::ratio(adaptive.wall, ideal);
    let [(down_at, down), (up_at, up)] = r.changes;
    let down_in = follow_time(&changing.samples, down_at, limit, down);
    let up_in = follow_time(&changing.samples, up_at, down, up);
    let slowest = down_in.zip(up_in).map(|(a, b)| a.max(b));
    let shown =
        |d: Option<Duration>| d.map_or("never".to_owned(), |d| format!("{:.1} s", d.as_secs_f64()));
    let rows = vec![
        Row::info(
            "5",
            format!("{setting}: the client's rate limiter off"),
            outcome(&off),
        ),
        Row {
            id: "5",
            what: "the same with the adaptive rate limiter (the default): devices failed".into(),
            measured: outcome(&adaptive),
            figure: format!("{} failed", adaptive.failed),
            target: "none".into(),
            met: Some(adaptive.failed == 0),
        },
        Row {
            id: "5",
            what: "… requests answered 429".into(),
            measured: format!("{} of {}", adaptive.refused, adaptive.requests),
            figure: format!("{share:.1} %"),
            target: "≤ 5 %".into(),
            met: Some(share <= 5.0),
        },
        Row {
            id: "5",
            what: "… wall time".into(),
            measured: format!(
                "{} (ideal {n} / {limit:.0} per second = {})",
                secs(adaptive.wall),
                secs(ideal)
            ),
            figure: format!("{wall:.3}× ideal"),
            target: "≤ 1.15× ideal".into(),
            met: Some(wall <= 1.15),
        },
        Row {
            id: "5",
            what: format!(
                "the limit drops to {down:.0} req/s after {} and rises to {up:.0} req/s after {}: the client's pace follows (table below)",
                shown(Some(down_at)),
                shown(Some(up_at))
            ),
            measured: format!(
                "down in {}, up in {}; {}",
                shown(down_in),
                shown(up_in),
                outcome(&changing)
            ),
            figure: shown(slowest),
            target: "a few seconds: ≤ 5 s each".into(),
            met: Some(slowest.is_some_and(|d| d <= Duration::from_secs(5)) && changing.failed == 0),
        },
    ];
    Ok((rows, timeline(&changing.samples)))
}
