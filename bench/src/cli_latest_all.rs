//! Figure 7: `leapcraft latest --all` end to end through the binary built beside this one,
//! start to exit, against the fake in this process with a fixed latency; the median run as a
//! ratio of the bound (token + first page + devices × latency / concurrency), beside the
//! same work done in this process through the SDK alone.

use std::time::Instant;

use futures::TryStreamExt;

use crate::{
    Result, Row, Sizes, client_for, fake_with_latency, latest_all, leapcraft_cli, median, no_cli,
    ratio, secs,
};

/// The CLI's concurrency in figure 7.
const CLI_CONCURRENCY: u32 = 32;

pub(crate) async fn figure(s: &Sizes, exe: &std::path::Path) -> Result<Vec<Row>> {
    let what = |n: usize| {
        format!(
            "leapcraft latest --all, {n} devices, {} ms latency, --concurrency {CLI_CONCURRENCY}: the binary, start to exit (median of {} runs)",
            s.cli_latency.as_millis(),
            s.cli_runs
        )
    };
    let Some(cli) = leapcraft_cli(s, exe)? else {
        if s.quick {
            return Ok(vec![Row::info(
                "7",
                what(s.cli_devices),
                "skipped: the leapcraft binary is not built beside this one",
            )]);
        }
        return Err(no_cli("7"));
    };
    let n = s.cli_devices;
    let latency = s.cli_latency;
    let fake = fake_with_latency(n, latency).await?;
    // Token exchange, the first page of the list, then every reading at the concurrency.
    let bound = latency * 2 + latency * n as u32 / CLI_CONCURRENCY;
    let mut ratios = Vec::new();
    let mut requests = 0;
    for _ in 0..s.cli_runs {
        fake.reset_counters();
        let elapsed = latest_all(&cli, &fake, CLI_CONCURRENCY, &[]).await?;
        ratios.push(ratio(elapsed, bound));
        requests = fake.counters().requests.total();
    }
    // The same work in this process, through the SDK alone: what the binary adds (process
    // start, output) is the difference.
    let mut sdk_ratios = Vec::new();
    for _ in 0..s.cli_runs {
        let client = client_for(&fake)?;
        let t = Instant::now();
        let results: Vec<_> = client
            .fetch_each(
                client.device_ids(),
                CLI_CONCURRENCY as usize,
                |client, id| async move { client.latest(id).await },
            )
            .try_collect()
            .await?;
        sdk_ratios.push(ratio(t.elapsed(), bound));
        if results.len() != n || results.iter().any(|(_, r)| r.is_err()) {
            return Err("fetch_each: not every reading".into());
        }
    }
    fake.shutdown().await;
    let r = median(&ratios);
    let sdk = median(&sdk_ratios);
    let (lo, hi) = ratios
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), x| (lo.min(*x), hi.max(*x)));
    Ok(vec![
        Row::info(
            "7",
            format!(
                "the same work in-process: Client::fetch_each over Client::device_ids at {CLI_CONCURRENCY}, a new client each run (token exchange included)"
            ),
            format!(
                "{}; median of {} runs {sdk:.3}× bound",
                secs(bound.mul_f64(sdk)),
                s.cli_runs
            ),
        ),
        Row {
            id: "7",
            what: what(n),
            measured: format!(
                "{} (bound: token + first page + {n} × {} ms / {CLI_CONCURRENCY} = {}; runs {lo:.3}–{hi:.3}×; {requests} requests a run)",
                secs(bound.mul_f64(r)),
                latency.as_millis(),
                secs(bound),
            ),
            figure: format!("{r:.3}× bound"),
            target: "≤ 1.10× bound".into(),
            met: Some(r <= 1.10),
        },
    ])
}
