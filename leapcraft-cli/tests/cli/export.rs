//! `leapcraft export`: averages of many devices to a long-form CSV or a JSON Lines file,
//! each device whole and once, completed by running the same command again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::support::*;
use leapcraft_fake::FakeServer;
use predicates::prelude::*;
use serde_json::{Value, json};

/// The devices of an export file in order, each with its rows (CSV) or lines (JSONL),
/// checked to be together: a device never appears in two places.
fn blocks(path: &Path) -> Vec<(String, usize)> {
    let text = std::fs::read_to_string(path).unwrap();
    let ids: Vec<String> = if path.extension().unwrap() == "csv" {
        let (header, rows) = parse_csv(&text);
        assert_eq!(header, ["physical_id", "timestamp", "metric", "value"]);
        rows.into_iter().map(|r| r[0].clone()).collect()
    } else {
        text.lines()
            .map(|line| {
                let reading: Value = serde_json::from_str(line).unwrap();
                reading["physical_id"].as_str().unwrap().to_owned()
            })
            .collect()
    };
    let mut blocks: Vec<(String, usize)> = Vec::new();
    for id in ids {
        match blocks.last_mut() {
            Some((last, n)) if *last == id => *n += 1,
            _ => {
                assert!(
                    blocks.iter().all(|(seen, _)| *seen != id),
                    "{id} twice in {}",
                    path.display()
                );
                blocks.push((id, 1));
            }
        }
    }
    blocks
}

fn stderr_of(cmd: &mut assert_cmd::Command, code: i32) -> String {
    let out = cmd.assert().code(code).get_output().clone();
    assert_eq!(out.stdout, b"", "an export prints nothing on stdout");
    String::from_utf8(out.stderr).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_device_to_long_form_csv_and_to_json_lines() {
    let fake = FakeServer::builder().devices(12).start().await.unwrap();
    let data = fake.dataset();
    let all: Vec<String> = (0..12).map(|i| data.physical_id(i)).collect();
    let dir = tempfile::tempdir().unwrap();

    let csv = dir.path().join("week.csv");
    let stderr = stderr_of(leapcraft(&fake).args(export_args(&csv)), 0);
    assert_eq!(stderr.lines().count(), 1, "a summary: {stderr}");
    assert!(stderr.contains("12 devices written"), "{stderr}");
    let csv_blocks = blocks(&csv);
    let mut exported: Vec<String> = csv_blocks.iter().map(|(id, _)| id.clone()).collect();
    exported.sort();
    let mut expected = all.clone();
    expected.sort();
    assert_eq!(exported, expected, "every device");

    // One row per period and metric, as `telemetry` gives them.
    let days = json_list(leapcraft(&fake).args(["telemetry", &all[3]]).args(RANGE));
    let values: usize = days
        .iter()
        .map(|day| {
            let typed = ["temperature", "humidity", "co2", "pm2_5"]
                .iter()
                .filter(|m| day[**m].is_number())
                .count();
            typed
                + day["other"]
                    .as_object()
                    .unwrap()
                    .values()
                    .filter(|v| !v.is_null())
                    .count()
        })
        .sum();
    let rows = csv_blocks.iter().find(|(id, _)| *id == all[3]).unwrap().1;
    assert_eq!(rows, values);
    let (_, table) = parse_csv(&std::fs::read_to_string(&csv).unwrap());
    let co2 = table
        .iter()
        .find(|r| r[0] == all[3] && r[1] == "2026-03-02T00:00:00.000Z" && r[2] == "co2")
        .unwrap();
    assert_eq!(
        co2[3].parse::<f64>().unwrap(),
        days[1]["co2"].as_f64().unwrap()
    );

    let jsonl = dir.path().join("week.jsonl");
    stderr_of(leapcraft(&fake).args(export_args(&jsonl)), 0);
    let lines = blocks(&jsonl);
    assert_eq!(lines.len(), 12);
    assert!(
        lines.iter().all(|(_, n)| *n == 7),
        "a reading per day: {lines:?}"
    );
    // As the API sends them (`data` holding the metrics), with the values `telemetry` gives.
    let text = std::fs::read_to_string(&jsonl).unwrap();
    let of_device: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter(|reading| reading["physical_id"] == all[3].as_str())
        .collect();
    assert_eq!(of_device.len(), days.len());
    for (line, day) in of_device.iter().zip(&days) {
        assert_eq!(line["timestamp"], day["timestamp"], "{line}");
        for metric in ["temperature", "humidity", "co2", "pm2_5"] {
            assert_eq!(
                line["data"][metric].as_f64(),
                day[metric].as_f64(),
                "{line}"
            );
        }
    }

    // Chosen devices, each once.
    let two = dir.path().join("two.csv");
    let mut cmd = leapcraft(&fake);
    cmd.args(export_args(&two)).args([
        "--device", &all[1], "--device", &all[5], "--device", &all[1],
    ]);
    stderr_of(&mut cmd, 0);
    let chosen: Vec<String> = blocks(&two).into_iter().map(|(id, _)| id).collect();
    assert_eq!(chosen.len(), 2);
    assert!(chosen.contains(&all[1]) && chosen.contains(&all[5]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_cut_anywhere_is_completed_by_running_again() {
    let fake = FakeServer::builder().devices(6).start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    for extension in ["csv", "jsonl"] {
        let reference = dir.path().join(format!("reference.{extension}"));
        stderr_of(
            leapcraft(&fake)
                .args(export_args(&reference))
                .args(["--concurrency", "1"]),
            0,
        );
        let whole = std::fs::read(&reference).unwrap();
        let devices = blocks(&reference);
        let third_device_starts = {
            let header = if extension == "csv" { 1 } else { 0 };
            let lines_before = header + devices[0].1 + devices[1].1;
            whole
                .split_inclusive(|&b| b == b'\n')
                .take(lines_before)
                .map(<[u8]>::len)
                .sum::<usize>()
        };
        // A crash inside the header, between two devices, inside a row of the third.
        for cut in [5, third_device_starts, third_device_starts + 7] {
            let cut_file = dir.path().join(format!("cut-{cut}.{extension}"));
            std::fs::write(&cut_file, &whole[..cut]).unwrap();
            // With the record of its query, as the run that was cut left it.
            std::fs::copy(
                dir.path()
                    .join(format!("reference.{extension}.leapcraft-export")),
                dir.path()
                    .join(format!("cut-{cut}.{extension}.leapcraft-export")),
            )
            .unwrap();
            fake.reset_counters();
            stderr_of(
                leapcraft(&fake)
                    .args(export_args(&cut_file))
                    .args(["--concurrency", "1"]),
                0,
            );
            assert_eq!(
                std::fs::read(&cut_file).unwrap(),
                whole,
                "{extension} cut at {cut}: completed as a run without interruption"
            );
            let refetched = fake.counters().requests.get_telemetry;
            let held = if cut == 5 { 0 } else { 1 }; // the last device is fetched again
            assert_eq!(refetched, 6 - held, "{extension} cut at {cut}");
        }
    }
}

/// The first request for one device's averages, held: the test hears of it, and it is
/// answered once `release` is notified (never, unless it is).
#[derive(Clone)]
struct Hold {
    id: &'static str,
    asked: tokio::sync::mpsc::UnboundedSender<()>,
    release: Arc<tokio::sync::Notify>,
}

impl Hold {
    /// A hold of `id`'s first request, and the events of it being asked.
    fn of(id: &'static str) -> (Self, tokio::sync::mpsc::UnboundedReceiver<()>) {
        let (asked, events) = tokio::sync::mpsc::unbounded_channel();
        let release = Arc::default();
        (Self { id, asked, release }, events)
    }
}

/// `n` devices whose averages are a reading per day; `fail(id, attempt)` says whether a
/// request fails (500), `hold` which request waits.
async fn scripted_devices(n: usize, fail: fn(&str, usize) -> bool, hold: Option<Hold>) -> Scripted {
    let ids = device_ids(n);
    let attempts: Arc<std::sync::Mutex<HashMap<String, usize>>> = Arc::default();
    let held = Arc::new(AtomicBool::new(false));
    Scripted::start(move |req| {
        let (ids, attempts, held, hold) =
            (ids.clone(), attempts.clone(), held.clone(), hold.clone());
        async move {
            if req.path == "/v1/devices" {
                return device_page(&ids, &req);
            }
            let id = last_segment(&req);
            let attempt = {
                let mut attempts = attempts.lock().unwrap();
                let n = attempts.entry(id.clone()).or_default();
                *n += 1;
                *n
            };
            if let Some(hold) = &hold
                && id == hold.id
                && !held.swap(true, Ordering::SeqCst)
            {
                let _ = hold.asked.send(());
                hold.release.notified().await;
            }
            if fail(&id, attempt) {
                return reply(500, json!({"message": "try again"}));
            }
            let days: Vec<Value> = (1..=3)
                .map(|d| {
                    json!({"timestamp": format!("2026-03-0{d}T00:00:00Z"),
                                "data": {"co2": 400 + d, "voc": d}})
                })
                .collect();
            reply(200, Value::Array(days))
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_leaves_whole_devices_and_the_same_command_completes_the_file() {
    let (hold, mut events) = Hold::of("dev-0002");
    let server = scripted_devices(5, |_, _| false, Some(hold)).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("march.csv");
    let args = export_args(&out);
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    args.extend(["--concurrency", "1"]);

    let child = spawn_at(server.base_url(), KEY, &args);
    next_event(&mut events).await;
    interrupt(&child);
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130), "{output:?}");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("2 devices written") && stderr.contains("interrupted"),
        "{stderr}"
    );
    assert_eq!(
        blocks(&out),
        [("dev-0000".into(), 6), ("dev-0001".into(), 6)]
    );

    let before = server.count("/v1/telemetry");
    let stderr = stderr_of(server.leapcraft().args(&args), 0);
    assert!(
        stderr.contains("4 devices written") && stderr.contains("1 already there"),
        "{stderr}"
    );
    assert_eq!(
        server.count("/v1/telemetry") - before,
        4,
        "the devices the file did not hold, and its last one again"
    );
    let expected: Vec<(String, usize)> = device_ids(5).into_iter().map(|id| (id, 6)).collect();
    assert_eq!(blocks(&out), expected, "each device once, whole");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_devices_are_listed_and_fetched_by_the_next_run() {
    let server = scripted_devices(
        5,
        |id, attempt| attempt == 1 && matches!(id, "dev-0001" | "dev-0003"),
        None,
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("march.jsonl");
    let args = export_args(&out);
    let args: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .chain(["--concurrency", "1", "--max-attempts", "1"])
        .collect();

    let stderr = stderr_of(server.leapcraft().args(&args), 1);
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(
        lines[0].contains("3 devices written") && lines[0].contains("2 failed"),
        "{stderr}"
    );
    assert!(
        lines[1].contains("dev-0001") && lines[2].contains("dev-0003"),
        "{stderr}"
    );
    assert!(lines[3].contains("2 of 5 devices failed"), "{stderr}");
    assert_eq!(lines.len(), 4, "{stderr}");

    let stderr = stderr_of(server.leapcraft().args(&args), 0);
    assert!(
        stderr.contains("3 devices written") && stderr.contains("0 failed"),
        "{stderr}"
    );
    let mut held: Vec<String> = blocks(&out).into_iter().map(|(id, _)| id).collect();
    held.sort();
    assert_eq!(held, device_ids(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_cells_are_neutralised_and_still_resume() {
    let server = Scripted::start(|req| async move {
        if req.path == "/v1/devices" {
            return reply(
                200,
                json!([{"physical_id": "=cmd|' /C calc'!A0", "meta": {}},
                       {"physical_id": "@SUM(1+1)", "meta": {}},
                       {"physical_id": "-2+3", "meta": {}}]),
            );
        }
        reply(
            200,
            json!([{"timestamp": "2026-03-01T00:00:00Z",
                    "data": {"co2": -5, "+label": "=HYPERLINK(\"http://evil.example\")"}}]),
        )
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.csv");
    let args = export_args(&out);
    stderr_of(server.leapcraft().args(&args), 0);
    let text = std::fs::read_to_string(&out).unwrap();
    assert_spreadsheet_safe("export", &text);
    assert!(text.contains(",co2,-5.0\n"), "numbers stay numbers: {text}");

    let before = server.count("/v1/telemetry");
    stderr_of(server.leapcraft().args(&args), 0);
    assert_eq!(
        server.count("/v1/telemetry") - before,
        1,
        "only the last device again"
    );
    assert_eq!(blocks(&out).len(), 3);

    let raw = dir.path().join("raw.csv");
    stderr_of(
        server.leapcraft().arg("--raw-csv").args(export_args(&raw)),
        0,
    );
    assert!(std::fs::read_to_string(&raw).unwrap().contains("\n=cmd|"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_without_data_are_counted_not_written() {
    let server = Scripted::start(|req| async move {
        if req.path == "/v1/devices" {
            return device_page(&device_ids(3), &req);
        }
        if last_segment(&req) == "dev-0001" {
            return reply(200, json!([]));
        }
        reply(
            200,
            json!([{"timestamp": "2026-03-01T00:00:00Z", "data": {"co2": 500}}]),
        )
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.csv");
    let stderr = stderr_of(server.leapcraft().args(export_args(&out)), 0);
    assert!(
        stderr.contains("2 devices written") && stderr.contains("1 without data"),
        "{stderr}"
    );
    assert_eq!(blocks(&out).len(), 2);
}

#[test]
fn the_file_must_be_csv_or_jsonl_and_an_export() {
    bare()
        .args(["--api-key", "k", "--base-url", "http://127.0.0.1:9/v1"])
        .args(export_args(&PathBuf::from("out.xlsx")))
        .assert()
        .code(2)
        .stderr(predicate::str::contains(".csv or .jsonl"));

    let dir = tempfile::tempdir().unwrap();
    let foreign = dir.path().join("mine.csv");
    std::fs::write(&foreign, "name,amount\nrent,1200\n").unwrap();
    bare()
        .args(["--api-key", "k", "--base-url", "http://127.0.0.1:9/v1"])
        .args(export_args(&foreign))
        .assert()
        .code(1)
        .stderr(predicate::str::contains("not a file this command wrote"));
    assert_eq!(
        std::fs::read_to_string(&foreign).unwrap(),
        "name,amount\nrent,1200\n",
        "left alone"
    );
}

/// The export arguments `args` with `--out` and one request at a time, as `&str`s.
fn one_at_a_time(args: &[String]) -> Vec<&str> {
    args.iter()
        .map(String::as_str)
        .chain(["--concurrency", "1"])
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_export_into_a_file_being_written_fails_at_once() {
    let (hold, mut events) = Hold::of("dev-0002");
    let release = hold.release.clone();
    let server = scripted_devices(5, |_, _| false, Some(hold)).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("march.csv");
    let args = export_args(&out);
    let args = one_at_a_time(&args);

    let first = spawn_at(server.base_url(), KEY, &args);
    next_event(&mut events).await;
    let asked_so_far = server.requests().len();
    let stderr = stderr_of(server.leapcraft().args(&args), 1);
    assert!(
        stderr.contains(&out.display().to_string())
            && stderr.contains("another export is writing it")
            && stderr.contains("locked"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert_eq!(
        server.requests().len(),
        asked_so_far,
        "the second export asks nothing"
    );

    release.notify_one();
    let output = first.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("5 devices written"), "{stderr}");
    let expected: Vec<(String, usize)> = device_ids(5).into_iter().map(|id| (id, 6)).collect();
    assert_eq!(blocks(&out), expected, "each device once, whole");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_made_by_another_query_is_refused_and_overwrite_starts_afresh() {
    let fake = FakeServer::builder().devices(4).start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("march.csv");
    stderr_of(leapcraft(&fake).args(export_args(&out)), 0);
    let daily = std::fs::read(&out).unwrap();
    let record = dir.path().join("march.csv.leapcraft-export");
    let recorded: Value = serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
    assert_eq!(recorded["averages"], "daily", "{recorded}");
    assert_eq!(recorded["from"], "2026-03-01T00:00:00.000Z", "{recorded}");

    // The case: another resolution and range into the daily file.
    let weekly: Vec<String> = [
        "export",
        "--averages",
        "weekly",
        "--from",
        "2025-01-01",
        "--to",
        "2026-03-08",
        "--out",
        out.to_str().unwrap(),
    ]
    .map(str::to_owned)
    .to_vec();
    fake.reset_counters();
    let stderr = stderr_of(leapcraft(&fake).args(&weekly), 2);
    assert!(
        stderr.contains("another query")
            && stderr.contains("--averages daily there, weekly here")
            && stderr
                .contains("--from 2026-03-01T00:00:00.000Z there, 2025-01-01T00:00:00.000Z here")
            && stderr.contains("--overwrite"),
        "{stderr}"
    );
    assert!(!stderr.contains("--to "), "the same end: {stderr}");
    let stderr = stderr_of(
        leapcraft(&fake)
            .args(export_args(&out))
            .args(["--device", "x"]),
        2,
    );
    assert!(
        stderr.contains("--device every device there, x here"),
        "{stderr}"
    );
    let stderr = stderr_of(leapcraft(&fake).arg("--raw-csv").args(export_args(&out)), 2);
    assert!(stderr.contains("--raw-csv"), "{stderr}");
    assert_eq!(std::fs::read(&out).unwrap(), daily, "left alone");
    assert_eq!(fake.counters().requests.get_telemetry, 0, "nothing asked");

    let stderr = stderr_of(leapcraft(&fake).args(&weekly).arg("--overwrite"), 0);
    assert!(
        stderr.contains("4 devices written") && stderr.contains("0 already there"),
        "{stderr}"
    );
    assert_eq!(blocks(&out).len(), 4, "each device once");
    let (_, rows) = parse_csv(&std::fs::read_to_string(&out).unwrap());
    assert!(
        rows.iter().any(|r| r[1].starts_with("2025-")),
        "weekly averages since 2025 only"
    );
    let recorded: Value = serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
    assert_eq!(recorded["averages"], "weekly", "{recorded}");

    // Its own query completes it; without its record, nothing can.
    let stderr = stderr_of(leapcraft(&fake).args(&weekly), 0);
    assert!(stderr.contains("3 already there"), "{stderr}");
    std::fs::remove_file(&record).unwrap();
    let stderr = stderr_of(leapcraft(&fake).args(&weekly), 1);
    assert!(
        stderr.contains("march.csv.leapcraft-export is missing") && stderr.contains("--overwrite"),
        "{stderr}"
    );
}

/// The byte offsets where each device of the export `path` ends, in file order.
fn device_ends(path: &Path) -> Vec<usize> {
    let bytes = std::fs::read(path).unwrap();
    let mut lines = bytes.split_inclusive(|&b| b == b'\n').map(<[u8]>::len);
    let mut end = if path.extension().unwrap() == "csv" {
        lines.next().unwrap()
    } else {
        0
    };
    blocks(path)
        .into_iter()
        .map(|(_, rows)| {
            end += lines.by_ref().take(rows).sum::<usize>();
            end
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_error_cuts_the_file_back_to_its_last_whole_device() {
    let fake = FakeServer::builder().devices(12).start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    for extension in ["csv", "jsonl"] {
        let reference = dir.path().join(format!("reference.{extension}"));
        let args = export_args(&reference);
        stderr_of(leapcraft(&fake).args(one_at_a_time(&args)), 0);
        let whole = std::fs::read(&reference).unwrap();
        let ends = device_ends(&reference);
        assert_eq!(ends.last(), Some(&whole.len()));

        // POSIX sh counts `ulimit -f` in blocks of 512 bytes; ignoring SIGXFSZ makes a write
        // past the limit fail (EFBIG) instead of killing the process.
        let blocks_allowed = whole.len() / 3 / 512;
        let limit = blocks_allowed * 512;
        let fit = ends.iter().filter(|&&end| end <= limit).count();
        assert!((1..12).contains(&fit), "{fit} devices fit in {limit} bytes");

        let out = dir.path().join(format!("limited.{extension}"));
        let args = export_args(&out);
        let prelude = format!("ulimit -f {blocks_allowed}");
        let stderr = stderr_of(
            leapcraft_after(&prelude, &fake).args(one_at_a_time(&args)),
            1,
        );
        assert!(
            stderr.contains(&format!("holds {fit} whole devices"))
                && stderr.contains("run the same command again to continue it"),
            "{stderr}"
        );
        assert_eq!(
            std::fs::read(&out).unwrap(),
            whole[..ends[fit - 1]],
            "{extension}: cut back to the end of its last whole device"
        );

        let stderr = stderr_of(leapcraft(&fake).args(one_at_a_time(&args)), 0);
        assert!(
            stderr.contains(&format!("{} already there", fit - 1)),
            "{stderr}"
        );
        assert_eq!(
            std::fs::read(&out).unwrap(),
            whole,
            "{extension}: completed, each device once"
        );
    }
}
