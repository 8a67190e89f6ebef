//! What makes the command pleasant every day: one syntax for durations, relative times,
//! usage errors for what cannot be meant, help that sets the global options apart.

use chrono::{DateTime, Utc};
use leapcraft_fake::{FakeServer, Operation};
use predicates::prelude::*;

use crate::support::*;

#[test]
fn every_duration_flag_takes_the_same_syntax_and_a_bare_number_is_seconds() {
    for wait in ["30", "0.5", "1m", "1m 30s", "500ms"] {
        stdout_of(bare().args(["--demo", "--max-retry-wait", wait, "topologies"]));
    }
    for wrong in ["0", "soon", "-3", "2000y"] {
        bare()
            .args(["--demo", "--max-retry-wait", wrong, "topologies"])
            .assert()
            .code(2)
            .stderr(predicate::str::contains(wrong));
    }
    bare()
        .args(["--demo", "--max-retry-wait", "soon", "topologies"])
        .assert()
        .stderr(predicate::str::contains(
            "a number of seconds, or such as 500ms, 30s",
        ));
    bare()
        .args(["notifications", "--follow", "--interval", "500ms"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("minimum interval, 1s"));
}

/// The `from` and `to` a telemetry request of `fake` asked for.
fn range_asked(fake: &FakeServer) -> (DateTime<Utc>, DateTime<Utc>) {
    let request = fake
        .recorded_requests()
        .into_iter()
        .rfind(|r| r.operation == Operation::GetTelemetry)
        .expect("a telemetry request");
    let param = |name: &str| {
        let (_, value) = request.query.iter().find(|(k, _)| k == name).unwrap();
        DateTime::parse_from_rfc3339(value)
            .unwrap_or_else(|e| panic!("{name}={value}: {e}"))
            .with_timezone(&Utc)
    };
    (param("from"), param("to"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranges_take_relative_times_beside_dates() {
    let fake = FakeServer::builder()
        .devices(2)
        .record_requests(100)
        .start()
        .await
        .unwrap();
    let id = fake.dataset().physical_id(0);
    let telemetry = |from: &str, to: &str| {
        stdout_of(leapcraft(&fake).args([
            "--format",
            "json",
            "telemetry",
            &id,
            "--averages",
            "daily",
            "--from",
            from,
            "--to",
            to,
        ]));
        range_asked(&fake)
    };
    let close = |a: DateTime<Utc>, b: DateTime<Utc>| (a - b).num_seconds().abs() <= 300;

    let (from, to) = telemetry("7d", "now");
    let now = Utc::now();
    assert!(close(to, now), "now is now: {to}");
    assert!(
        close(from, now - chrono::Duration::days(7)),
        "7d ago: {from}"
    );

    let (from, to) = telemetry("yesterday", "today");
    assert_eq!(to - from, chrono::Duration::days(1));
    assert_eq!(to.time(), chrono::NaiveTime::MIN, "midnight UTC");

    let (from, to) = telemetry("2026-03-01", "2026-03-02T12:00:00Z");
    assert_eq!(from.to_rfc3339(), "2026-03-01T00:00:00+00:00");
    assert_eq!(to.to_rfc3339(), "2026-03-02T12:00:00+00:00");

    let wrong = bare()
        .args([
            "telemetry",
            "X",
            "--averages",
            "daily",
            "--from",
            "last tuesday",
        ])
        .assert()
        .code(2)
        .get_output()
        .clone();
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    for form in ["RFC 3339", "2026-03-01", "24h", "7d", "yesterday", "now"] {
        assert!(stderr.contains(form), "{form} listed in {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reversed_range_is_a_usage_error_before_any_request() {
    let fake = FakeServer::builder()
        .devices(2)
        .record_requests(100)
        .start()
        .await
        .unwrap();
    let id = fake.dataset().physical_id(0);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.csv");
    let reversed = [
        "--averages",
        "daily",
        "--from",
        "2026-03-08",
        "--to",
        "2026-03-01",
    ];
    let telemetry: Vec<&str> = ["telemetry", &id].into_iter().chain(reversed).collect();
    let export: Vec<&str> = ["export", "--out", out.to_str().unwrap()]
        .into_iter()
        .chain(reversed)
        .collect();
    for args in [telemetry, export] {
        leapcraft(&fake)
            .args(&args)
            .assert()
            .code(2)
            .stdout("")
            .stderr(predicate::str::contains("must start before it ends"));
    }
    assert!(fake.recorded_requests().is_empty(), "nothing asked");
    assert!(!out.exists());
}

#[test]
fn subcommand_help_sets_the_global_options_apart() {
    for command in ["devices", "latest", "export", "serve", "notifications"] {
        let help = bare().args([command, "--help"]).assert().success();
        let help = String::from_utf8(help.get_output().stdout.clone()).unwrap();
        let (own, global) = help
            .split_once("Global options:")
            .unwrap_or_else(|| panic!("{command}: a Global options heading in {help}"));
        for flag in [
            "--base-url",
            "--api-key",
            "--format",
            "--max-attempts",
            "--verbose",
        ] {
            assert!(global.contains(flag), "{command}: {flag} is global: {help}");
            assert!(
                !own.contains(flag),
                "{command}: {flag} not among its own: {help}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_base_url_without_v1_names_the_url_and_the_fix_not_exit_4() {
    let fake = FakeServer::builder().devices(3).start().await.unwrap();
    let root = fake.base_url().trim_end_matches("/v1").to_owned();
    for args in [vec!["devices"], vec!["latest", "--all"]] {
        let run = leapcraft_at(&root, fake.api_key())
            .args(["--max-attempts", "1"])
            .args(&args)
            .assert()
            .code(1)
            .stdout("")
            .get_output()
            .clone();
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        for part in [&format!("{root}/auth/client/token"), "--base-url", "/v1"] {
            assert!(stderr.contains(part), "{part} in {stderr}");
        }
    }
}

#[test]
fn plain_http_to_another_host_names_the_cli_flag() {
    bare()
        .args([
            "--base-url",
            "http://api.example.com/v1",
            "--api-key",
            "k",
            "devices",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--allow-insecure-http"))
        .stderr(predicate::str::contains("ClientBuilder").not());
}

#[test]
fn a_format_that_cannot_apply_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.csv");
    let mut export = export_args(&out);
    export.splice(
        0..0,
        [
            "--demo".to_owned(),
            "--format".to_owned(),
            "json".to_owned(),
        ],
    );
    bare()
        .args(&export)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--out FILE.csv or FILE.jsonl"));
    assert!(!out.exists());
    bare()
        .args([
            "--demo",
            "serve",
            "--format",
            "csv",
            "--listen",
            "127.0.0.1:0",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--format does not apply to serve"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summary_lines_count_in_the_right_number() {
    let fake = FakeServer::builder().devices(3).start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("one.csv");
    let id = fake.dataset().physical_id(0);
    let run = leapcraft(&fake)
        .args(export_args(&out))
        .args(["--device", &id])
        .assert()
        .success()
        .get_output()
        .clone();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains(": 1 device written ("), "{stderr}");
    assert!(!stderr.contains("1 devices"), "{stderr}");
    let one = stdout_of(leapcraft(&fake).args(["devices", "--limit", "1"]));
    assert!(one.trim_end().ends_with("\n1 record"), "{one}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_at_80_columns_never_cut_an_id() {
    let fake = FakeServer::builder().devices(20).start().await.unwrap();
    let table = stdout_of(leapcraft(&fake).env("COLUMNS", "80").args(["devices"]));
    for line in table.lines() {
        assert!(line.chars().count() <= 80, "{line:?} in\n{table}");
    }
    for i in 0..20 {
        let id = fake.dataset().physical_id(i);
        assert!(
            table.contains(&format!("│ {id} ")),
            "{id} whole in\n{table}"
        );
    }
}

#[test]
fn man_prints_a_roff_page_of_every_command_without_a_key() {
    let page = bare()
        .env("LEAPCRAFT_API_KEY", "sk-live-secret-in-env")
        .arg("man")
        .assert()
        .success()
        .get_output()
        .clone();
    let page = String::from_utf8(page.stdout).unwrap();
    assert!(page.contains(".TH leapcraft 1"), "{page}");
    for part in [
        "GLOBAL OPTIONS",
        "latest",
        "export",
        "serve",
        "\\-\\-max\\-retry\\-wait",
    ] {
        assert!(page.contains(part), "{part} in the page");
    }
    assert!(!page.contains("sk-live-secret-in-env"));
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_comes_from_a_file_only_its_owner_can_read() {
    use std::os::unix::fs::PermissionsExt;
    let fake = FakeServer::builder().devices(2).start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("key");
    std::fs::write(&file, format!("{}\n", fake.api_key())).unwrap();
    let with_file = |mode: u32| {
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
        let mut cmd = bare();
        cmd.args(["--base-url", fake.base_url(), "--api-key-file"])
            .arg(&file)
            .arg("topologies");
        cmd
    };
    stdout_of(&mut with_file(0o600));
    for mode in [0o644, 0o640, 0o604] {
        let run = with_file(mode)
            .assert()
            .code(2)
            .stdout("")
            .get_output()
            .clone();
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(stderr.contains("chmod 600"), "{mode:o}: {stderr}");
        assert!(!stderr.contains(fake.api_key()), "the key never shown");
    }
    std::fs::write(&file, "wrong-key\n").unwrap();
    let run = with_file(0o600).assert().code(3).get_output().clone();
    assert!(!String::from_utf8_lossy(&run.stderr).contains("wrong-key"));
}
