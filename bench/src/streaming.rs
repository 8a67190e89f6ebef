//! Figure 2: streaming the device list. Its time with and without prefetch, against the fake
//! in this process with a fixed latency per page, as a ratio of the server-bound time (pages ×
//! latency); and the peak RSS (VmHWM) of streaming `items()` against `collect()` of one
//! unlimited page, each measured in a child process (this binary's hidden `__rss`
//! subcommand) so that neither the fake nor the other mode pollutes it.

use std::time::Instant;

use futures::TryStreamExt;
use leapcraft_ext::Client;
use serde::{Deserialize, Serialize};

use crate::{BoxError, Result, Row, Sizes, child, client_for, fake_with_latency, mib, ratio, secs};

pub(crate) async fn figure(s: &Sizes, exe: &std::path::Path) -> Result<Vec<Row>> {
    let n = s.stream_devices;
    let page = s.stream_page;
    let latency = s.stream_latency;
    let fake = fake_with_latency(n, latency).await?;
    let client = client_for(&fake)?;
    client.devices().max_items(1).collect().await?;

    let pages = (n as u64).div_ceil(page as u64) as u32;
    let server_bound = latency * pages;
    let time = |prefetch: usize| {
        let client = client.clone();
        async move {
            let t = Instant::now();
            let count = client
                .devices()
                .page_size(page)
                .prefetch(prefetch)
                .items()
                .try_fold(0usize, |count, device| async move {
                    std::hint::black_box(device);
                    Ok(count + 1)
                })
                .await?;
            if count != n {
                return Err(format!("streamed {count} devices, expected {n}").into());
            }
            Ok::<_, BoxError>(t.elapsed())
        }
    };
    let plain = time(0).await?;
    let prefetched = time(s.prefetch).await?;

    let common = [
        fake.base_url().to_owned(),
        fake.api_key().to_owned(),
        n.to_string(),
        page.to_string(),
        s.prefetch.to_string(),
    ];
    let stream_rss: RssReport = child(
        exe,
        "__rss",
        &[&["stream".to_owned()], &common[..]].concat(),
    )
    .await?;
    let collect_rss: RssReport = child(
        exe,
        "__rss",
        &[&["collect".to_owned()], &common[..]].concat(),
    )
    .await?;
    fake.shutdown().await;

    let r_plain = ratio(plain, server_bound);
    let r_pre = ratio(prefetched, server_bound);
    let rss_target_kib = 64 * 1024;
    Ok(vec![
        Row {
            id: "2",
            what: format!(
                "stream {n} devices, pages of {page}, {} ms per page: no prefetch",
                latency.as_millis()
            ),
            measured: format!(
                "{} (server-bound {pages} pages × {} ms = {})",
                secs(plain),
                latency.as_millis(),
                secs(server_bound)
            ),
            figure: format!("{r_plain:.3}× server-bound"),
            target: String::new(),
            met: None,
        },
        Row {
            id: "2",
            what: format!("the same with prefetch({})", s.prefetch),
            measured: secs(prefetched),
            figure: format!("{r_pre:.3}× server-bound"),
            target: "≤ 1.2× server-bound".into(),
            met: Some(r_pre <= 1.2),
        },
        Row {
            id: "2",
            what: format!(
                "peak RSS (VmHWM) streaming items(), pages of {page}, prefetch({}), child process",
                s.prefetch
            ),
            measured: format!(
                "{} peak ({} before the stream, {} growth)",
                mib(stream_rss.peak_kib),
                mib(stream_rss.baseline_kib),
                mib(stream_rss.peak_kib.saturating_sub(stream_rss.baseline_kib))
            ),
            figure: mib(stream_rss.peak_kib),
            target: "≤ 64 MiB".into(),
            met: Some(stream_rss.peak_kib <= rss_target_kib),
        },
        Row::info(
            "2",
            "peak RSS (VmHWM) collect() with page_size(-1) (limit=-1), child process",
            format!(
                "{} peak ({} before, {} growth; {:.1}× the streaming growth)",
                mib(collect_rss.peak_kib),
                mib(collect_rss.baseline_kib),
                mib(collect_rss
                    .peak_kib
                    .saturating_sub(collect_rss.baseline_kib)),
                collect_rss
                    .peak_kib
                    .saturating_sub(collect_rss.baseline_kib) as f64
                    / (stream_rss.peak_kib.saturating_sub(stream_rss.baseline_kib)).max(1) as f64
            ),
        ),
    ])
}

#[derive(Debug, Serialize, Deserialize)]
struct RssReport {
    baseline_kib: u64,
    peak_kib: u64,
    items: usize,
}

/// `__rss stream|collect URL KEY DEVICES PAGE PREFETCH`: reads the devices one way and prints
/// the RSS before and the peak during, as JSON.
pub(crate) fn child_rss(args: &[String]) -> Result<()> {
    let [mode, url, key, n, page, prefetch] = args else {
        return Err("usage: __rss stream|collect URL KEY DEVICES PAGE PREFETCH".into());
    };
    let (n, page, prefetch): (usize, i64, usize) = (n.parse()?, page.parse()?, prefetch.parse()?);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = rt.block_on(async {
        let client = Client::builder().api_key(key).base_url(url).build()?;
        // Token, connection, first decode: the fixed costs, before the baseline.
        client.devices().max_items(1).collect().await?;
        // Restart the high-water mark from the current RSS (Linux >= 4.0); harmless if refused.
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        let baseline_kib = crate::process_status_kib("self", "VmRSS");
        let items = match mode.as_str() {
            "stream" => {
                client
                    .devices()
                    .page_size(page)
                    .prefetch(prefetch)
                    .items()
                    .try_fold(0usize, |count, device| async move {
                        std::hint::black_box(device);
                        Ok(count + 1)
                    })
                    .await?
            }
            "collect" => {
                let all = client.devices().page_size(-1).collect().await?;
                std::hint::black_box(&all);
                all.len()
            }
            other => return Err(format!("unknown mode {other}").into()),
        };
        let peak_kib = crate::process_status_kib("self", "VmHWM");
        if items != n {
            return Err(format!("{mode}: {items} devices, expected {n}").into());
        }
        Ok::<_, BoxError>(RssReport {
            baseline_kib,
            peak_kib,
            items,
        })
    })?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}
