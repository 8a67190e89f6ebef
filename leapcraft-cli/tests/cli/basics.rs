//! `leapcraft` end to end, against a fake server started in-process by each test.

use std::collections::HashSet;

use crate::support::*;
use leapcraft_fake::{FakeServer, FaultKind};
use predicates::prelude::*;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_in_every_format() {
    let fake = fake().await;
    let data = fake.dataset();
    let expected: Vec<String> = (0..data.device_count())
        .map(|i| data.physical_id(i))
        .collect();

    let first_page = json_list(leapcraft(&fake).arg("devices"));
    assert_eq!(ids(&first_page, "physical_id"), expected);
    let d0 = data.device(0);
    assert_eq!(first_page[0]["serial"].as_str(), d0.serial.as_deref());
    assert_eq!(first_page[0]["type"].as_str(), d0.kind);

    let page2 = json_list(leapcraft(&fake).args(["devices", "--limit", "10", "--page", "2"]));
    assert_eq!(ids(&page2, "physical_id"), expected[10..20]);
    let past = json_list(leapcraft(&fake).args(["devices", "--limit", "10", "--page", "9"]));
    assert!(past.is_empty());

    let all = json_list(leapcraft(&fake).args(["devices", "--all", "--page-size", "7"]));
    assert_eq!(ids(&all, "physical_id"), expected);

    let (header, rows) = csv(leapcraft(&fake).args(["devices", "--all"]));
    assert_eq!(header[0], "physical_id");
    assert_eq!(rows.len(), expected.len());
    assert_eq!(rows[3][0], expected[3]);
    let (_, rows) = csv(leapcraft(&fake).args(["devices", "--limit", "5"]));
    assert_eq!(rows.len(), 5);

    let out = table(leapcraft(&fake).arg("devices"));
    assert!(out.contains(&expected[0]), "{out}");
    assert!(out.contains("physical_id"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_device_in_every_format() {
    let fake = fake().await;
    let id = fake.dataset().physical_id(4);
    let device = json(leapcraft(&fake).args(["device", &id]));
    assert!(device.is_object(), "{device}");
    assert_eq!(device["physical_id"], id.as_str());
    assert_eq!(
        device["name"].as_str(),
        fake.dataset().device(4).name.as_deref()
    );
    let (header, rows) = csv(leapcraft(&fake).args(["device", &id]));
    assert!(header.contains(&"serial".to_owned()));
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0][0], id);
    assert!(table(leapcraft(&fake).args(["device", &id])).contains(&id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telemetry_in_every_format() {
    let fake = fake().await;
    let id = fake.dataset().physical_id(2);

    let latest = json_list(leapcraft(&fake).args(["telemetry", &id]));
    assert_eq!(latest.len(), 1);
    assert_eq!(latest[0]["physical_id"], id.as_str());
    assert!(latest[0]["temperature"].is_number(), "{}", latest[0]);

    let week = [
        "telemetry",
        &id,
        "--averages",
        "daily",
        "--from",
        "2026-03-01",
        "--to",
        "2026-03-08 00:00:00",
    ];
    let days = json_list(leapcraft(&fake).args(week));
    assert_eq!(days.len(), 7);
    assert_eq!(days[0]["timestamp"], "2026-03-01T00:00:00.000Z");
    assert!(days.iter().all(|d| d["co2"].is_number()));

    let (header, rows) = csv(leapcraft(&fake).args(week));
    assert_eq!(
        header[..7],
        [
            "physical_id",
            "timestamp",
            "created_at",
            "temperature",
            "humidity",
            "co2",
            "pm2_5"
        ]
    );
    assert_eq!(rows.len(), 7);
    let months = [
        "telemetry",
        &id,
        "--averages",
        "monthly",
        "--from",
        "2025-01-01T00:00:00Z",
        "--to",
        "2025-07-01T00:00:00Z",
    ];
    assert_eq!(csv(leapcraft(&fake).args(months)).1.len(), 6);
    let out = table(leapcraft(&fake).args(week));
    assert!(out.contains("2026-03-07"), "{out}");
    assert!(table(leapcraft(&fake).args(["telemetry", &id])).contains(&id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telemetry_chart_is_an_svg_line_chart() {
    let fake = fake().await;
    let id = fake.dataset().physical_id(0);
    let dir = std::env::temp_dir().join(format!("leapcraft-cli-chart-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("week.svg");
    let path_arg = path.to_str().unwrap();
    let days = json_list(leapcraft(&fake).args([
        "telemetry",
        &id,
        "--averages",
        "daily",
        "--from",
        "2026-03-01",
        "--to",
        "2026-03-15",
        "--chart",
        path_arg,
    ]));
    assert_eq!(days.len(), 14, "the records are printed too");
    let svg = std::fs::read_to_string(&path).unwrap();
    assert!(svg.contains("<svg"), "{svg}");
    let lines = svg.matches("<polyline").count() + svg.matches("<path").count();
    assert!(lines >= 4, "a line per metric: {lines} in {svg}");
    assert!(svg.contains("co2"), "the panels are labelled");

    // --chart alone: daily averages over the last week.
    let path = dir.join("default.svg");
    stdout_of(leapcraft(&fake).args(["telemetry", &id, "--chart", path.to_str().unwrap()]));
    assert!(std::fs::read_to_string(&path).unwrap().contains("<svg"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_in_every_format() {
    let fake = fake().await;
    let data = fake.dataset();
    let (a, b) = (data.physical_id(7), data.physical_id(1));

    let two = json_list(leapcraft(&fake).args(["latest", &a, &b, "--concurrency", "2"]));
    assert_eq!(
        ids(&two, "physical_id"),
        [a.clone(), b.clone()],
        "in the order asked"
    );

    let all = json_list(leapcraft(&fake).args(["latest", "--all"]));
    let all_ids: HashSet<String> = ids(&all, "physical_id").into_iter().collect();
    assert_eq!(all.len(), data.device_count());
    assert_eq!(all_ids.len(), data.device_count());

    let (header, rows) = csv(leapcraft(&fake).args(["latest", "--all", "--concurrency", "3"]));
    assert_eq!(header[1], "timestamp");
    assert_eq!(rows.len(), data.device_count());
    assert!(table(leapcraft(&fake).args(["latest", &a])).contains(&a));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_reports_the_devices_that_fail() {
    let fake = fake().await;
    let a = fake.dataset().physical_id(0);
    let out = leapcraft(&fake)
        .args(["--format", "json", "latest", &a, "NO:SU:CH:DE:VI:CE"])
        .assert()
        .code(4)
        .stderr(predicate::str::contains("NO:SU:CH:DE:VI:CE"))
        .get_output()
        .clone();
    let printed: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        ids(&printed, "physical_id"),
        [a],
        "the others are still printed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topologies_in_every_format() {
    let fake = fake().await;
    let count = fake.dataset().topology_count();
    let topologies = json_list(leapcraft(&fake).arg("topologies"));
    assert_eq!(topologies.len(), count);
    let gateway = fake.dataset().topology(1).gateway_id;
    assert_eq!(topologies[1]["gateway_id"], gateway.as_str());
    assert!(
        topologies[1]["devices"]
            .as_array()
            .is_some_and(|d| !d.is_empty())
    );

    let (header, rows) = csv(leapcraft(&fake).arg("topologies"));
    assert_eq!(header[0], "gateway_id");
    assert_eq!(rows.len(), count);
    assert!(table(leapcraft(&fake).arg("topologies")).contains(&gateway));

    let one = json(leapcraft(&fake).args(["topology", &gateway]));
    assert!(one.is_object());
    assert_eq!(one["gateway_id"], gateway.as_str());
    assert!(one["devices"].as_array().is_some_and(|d| !d.is_empty()));
    let (_, rows) = csv(leapcraft(&fake).args(["topology", &gateway]));
    assert_eq!(rows.len(), 1);
    assert!(
        rows[0][3].contains(&gateway),
        "the gateway is a device of its topology"
    );
    assert!(table(leapcraft(&fake).args(["topology", &gateway])).contains(&gateway));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_in_every_format() {
    let fake = fake().await;
    let total = fake.notifications().len();
    assert!(total > 60, "more than one page of 50");

    let all = json_list(leapcraft(&fake).args(["notifications", "--all"]));
    assert_eq!(all.len(), total);
    let all_ids: Vec<i64> = all.iter().map(|n| n["id"].as_i64().unwrap()).collect();
    assert_eq!(all_ids.iter().collect::<HashSet<_>>().len(), total);

    let default = json_list(leapcraft(&fake).arg("notifications"));
    assert_eq!(default.len(), 20);
    let window =
        json_list(leapcraft(&fake).args(["notifications", "--limit", "5", "--offset", "48"]));
    let window_ids: Vec<i64> = window.iter().map(|n| n["id"].as_i64().unwrap()).collect();
    assert_eq!(window_ids, all_ids[48..53]);

    let device = all[0]["physical_id"].as_str().unwrap().to_owned();
    let mine = json_list(leapcraft(&fake).args(["notifications", "--all", "--device", &device]));
    assert!(!mine.is_empty());
    assert!(mine.iter().all(|n| n["physical_id"] == device.as_str()));

    let (header, rows) = csv(leapcraft(&fake).args(["notifications", "--limit", "7"]));
    assert_eq!(
        header,
        ["id", "physical_id", "category", "created_at", "message"]
    );
    assert_eq!(rows.len(), 7);
    assert!(table(leapcraft(&fake).arg("notifications")).contains("message"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn things_in_every_format() {
    let fake = fake().await;
    let expected = fake.dataset().things(None);
    let first = json_list(leapcraft(&fake).arg("things"));
    assert_eq!(first.len(), 10.min(expected.len()));
    let all = json_list(leapcraft(&fake).args(["things", "--all"]));
    assert_eq!(all.len(), expected.len());
    assert_eq!(all[0]["name"].as_str(), expected[0].name.as_deref());
    assert_eq!(
        json_list(leapcraft(&fake).args(["things", "--limit", "3"])).len(),
        3
    );

    let (header, rows) = csv(leapcraft(&fake).args(["things", "--all"]));
    assert_eq!(header, ["name", "description", "parameters"]);
    assert_eq!(rows.len(), expected.len());
    assert!(table(leapcraft(&fake).arg("things")).contains("parameters"));
}

#[test]
fn demo_needs_no_key() {
    let devices: Vec<Value> = serde_json::from_str(&stdout_of(
        bare().args(["--demo", "--format", "json", "devices"]),
    ))
    .unwrap();
    assert!(!devices.is_empty());
    let id = devices[0]["physical_id"].as_str().unwrap();
    assert!(table(bare().args(["--demo", "latest", id])).contains(id));
    assert!(table(bare().args(["--demo", "things"])).contains("parameters"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_code_3_on_a_wrong_or_missing_key() {
    let fake = fake().await;
    let key = "sk-live-wrong-key-0123456789";
    let out = bare()
        .args(["--base-url", fake.base_url(), "--api-key", key, "devices"])
        .assert()
        .code(3)
        .stdout("")
        .get_output()
        .clone();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("authentication"), "{stderr}");
    assert!(!stderr.contains(key), "{stderr}");

    // From the environment too.
    bare()
        .env("LEAPCRAFT_API_KEY", key)
        .env("LEAPCRAFT_BASE_URL", fake.base_url())
        .arg("things")
        .assert()
        .code(3)
        .stderr(predicate::str::contains(key).not());

    bare()
        .args(["--base-url", fake.base_url(), "devices"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("no API key"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_is_used_and_flags_win() {
    let fake = fake().await;
    // Key and URL from the environment.
    let things: Vec<Value> = serde_json::from_str(&stdout_of(
        bare()
            .env("LEAPCRAFT_API_KEY", fake.api_key())
            .env("LEAPCRAFT_BASE_URL", fake.base_url())
            .args(["--format", "json", "things"]),
    ))
    .unwrap();
    assert_eq!(things.len(), 10);
    // Flags win over a wrong environment.
    stdout_of(
        leapcraft(&fake)
            .env("LEAPCRAFT_API_KEY", "wrong")
            .env("LEAPCRAFT_BASE_URL", "http://127.0.0.1:9/v1")
            .arg("things"),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_code_4_when_not_found() {
    let fake = fake().await;
    for args in [
        ["device", "NO:SU:CH:DE:VI:CE"],
        ["telemetry", "NO:SU:CH:DE:VI:CE"],
        ["topology", "ffffffffffffffffff"],
    ] {
        let out = leapcraft(&fake)
            .args(args)
            .assert()
            .code(4)
            .get_output()
            .clone();
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains("not found"), "{stderr}");
        assert!(!stderr.contains(fake.api_key()), "{stderr}");
    }
}

#[test]
fn exit_code_2_on_usage_errors() {
    for args in [
        &["latest"][..],
        &["devices", "--all", "--page", "2"],
        &["devices", "--limit", "0"],
        &["telemetry", "X", "--averages", "hourly"],
        &[
            "telemetry",
            "X",
            "--averages",
            "daily",
            "--from",
            "last tuesday",
        ],
        &["frobnicate"],
        &["--format", "xml", "devices"],
        &[],
    ] {
        bare().args(args).assert().code(2);
    }
    // Arguments clap cannot check alone.
    bare()
        .args(["--demo", "telemetry", "X", "--from", "2021-05-20"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--averages"));
}

#[test]
fn help_never_shows_the_key() {
    let secret = "sk-live-do-not-print-me";
    for args in [&["--help"][..], &["devices", "--help"], &["-h"]] {
        bare()
            .env("LEAPCRAFT_API_KEY", secret)
            .args(args)
            .assert()
            .success()
            .stdout(predicate::str::contains("LEAPCRAFT_API_KEY"))
            .stdout(predicate::str::contains(secret).not());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_device_exactly_once_despite_faults_and_expiring_tokens() {
    let fake = FakeServer::builder()
        .devices(240)
        .fault_rate(0.2)
        .fault_kinds(FaultKind::ALL)
        .fault_token_exchange(true)
        .token_max_uses(3)
        .start()
        .await
        .unwrap();
    // On top of the 20 %: one of each kind first, so that every kind is surely seen.
    for kind in FaultKind::ALL {
        fake.inject_faults(kind, 1);
    }
    let devices = json_list(leapcraft(&fake).args([
        "--max-attempts",
        "12",
        "--max-retry-wait",
        "0.01",
        "devices",
        "--all",
        "--page-size",
        "10",
    ]));
    let data = fake.dataset();
    let expected: Vec<String> = (0..data.device_count())
        .map(|i| data.physical_id(i))
        .collect();
    assert_eq!(
        ids(&devices, "physical_id"),
        expected,
        "every device, once, in order"
    );

    let seen = fake.counters();
    assert!(seen.faults.total() > 0, "faults were injected: {seen:?}");
    assert!(
        seen.token_exchanges > 1,
        "tokens expired and were renewed: {seen:?}"
    );
    for kind in FaultKind::ALL {
        assert!(seen.faults.get(kind) > 0, "no {kind:?} injected: {seen:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_all_lists_with_large_pages_and_prefetch() {
    // Some latency, so that the prefetched page is surely in flight with the first.
    let fake = FakeServer::builder()
        .devices(1_000)
        .latency(std::time::Duration::from_millis(200))
        .start()
        .await
        .unwrap();
    let devices = json_list(leapcraft(&fake).args(["devices", "--all"]));
    assert_eq!(devices.len(), 1_000);
    let seen = fake.counters();
    assert!(
        seen.requests.list_devices <= 3,
        "a page of 1,000, the empty page that ends the list, at most one asked for ahead: \
         {seen:?}"
    );
    assert_eq!(
        seen.peak_in_flight.list_devices, 2,
        "the next page is requested while one is read: {seen:?}"
    );
}

#[test]
fn completions_for_every_shell_without_a_key() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef leapcraft"),
        ("fish", "complete -c leapcraft"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let script = stdout_of(bare().args(["completions", shell]));
        assert!(script.contains(marker), "{shell}: {script}");
        for subcommand in ["devices", "latest", "export", "completions"] {
            assert!(
                script.contains(subcommand),
                "{shell} completes {subcommand}"
            );
        }
    }
    bare().args(["completions", "tcsh"]).assert().code(2);
}

#[test]
fn the_demo_and_its_server_are_a_default_feature() {
    let tree = |features: &[&str]| {
        let out = std::process::Command::new(std::env::var("CARGO").unwrap_or("cargo".into()))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["tree", "--offline", "--locked", "-p", "leapcraft-cli"])
            .args(["--edges", "normal", "--prefix", "none"])
            .args(features)
            .output()
            .expect("cargo tree runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let server_side = |tree: &str| {
        tree.lines()
            // axum stays: `serve` is an HTTP server.
            .filter(|l| l.starts_with("leapcraft-fake "))
            .count()
    };
    assert!(server_side(&tree(&[])) > 0, "the default build has --demo");
    assert_eq!(
        server_side(&tree(&["--no-default-features"])),
        0,
        "a lean build carries no fake API"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_rps_sets_a_fixed_pace_and_refuses_what_is_not_a_rate() {
    let fake = fake().await;
    for bad in ["0", "-3", "NaN", "inf", "fast"] {
        leapcraft(&fake)
            .args([&format!("--max-rps={bad}"), "devices"])
            .assert()
            .code(2)
            .stderr(predicates::str::contains("requests a second"));
    }
    // At 1,000 a second the limit is a pace, not a wait: the command just works.
    let devices = json_list(leapcraft(&fake).args(["--max-rps", "1000", "devices", "--all"]));
    assert_eq!(devices.len(), fake.dataset().device_count());
}
