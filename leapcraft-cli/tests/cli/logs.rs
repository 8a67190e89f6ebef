//! What the binary logs on stderr: nothing for a one-shot command unless asked, a line per
//! request from `-vv` on, JSON lines with `--log-format json`, `RUST_LOG` over the flags,
//! and never the key or a token, at any level.

use leapcraft_fake::FakeServer;
use serde_json::Value;

use crate::support::*;

/// What a successful run wrote on stderr.
fn stderr_of(cmd: &mut assert_cmd::Command) -> String {
    let out = cmd.assert().success().get_output().clone();
    String::from_utf8(out.stderr).expect("UTF-8 logs")
}

/// Whether `text` holds something shaped like one of the fake's tokens: 32 hex digits and
/// more in a row.
fn holds_a_token(text: &str) -> bool {
    let mut run = 0;
    for c in text.chars() {
        run = if c.is_ascii_hexdigit() { run + 1 } else { 0 };
        if run >= 32 {
            return true;
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_key_nor_token_in_the_logs_at_any_level_through_token_refreshes() {
    let fake = FakeServer::builder()
        .devices(12)
        .token_max_uses(3)
        .start()
        .await
        .unwrap();
    for (verbosity, rust_log) in [("-vvv", None), ("-q", Some("trace"))] {
        let before = fake.counters().token_exchanges;
        let mut cmd = leapcraft(&fake);
        cmd.args([verbosity, "--format", "json", "latest", "--all"]);
        if let Some(directives) = rust_log {
            cmd.env("RUST_LOG", directives);
        }
        let logs = stderr_of(&mut cmd);
        assert!(
            fake.counters().token_exchanges - before >= 3,
            "tokens were refreshed"
        );
        assert!(
            logs.matches("token exchanged").count() >= 3,
            "{verbosity} {rust_log:?} logs the exchanges: {logs}"
        );
        let level = if rust_log.is_some() { "TRACE" } else { "DEBUG" };
        assert!(logs.contains(level), "{verbosity} {rust_log:?}: {logs}");
        assert!(
            !logs.contains(fake.api_key()),
            "{verbosity} {rust_log:?} shows the key"
        );
        assert!(
            !holds_a_token(&logs),
            "{verbosity} {rust_log:?} shows a token: {logs}"
        );
    }
    assert!(holds_a_token(&format!(
        "Bearer {}",
        "0123456789abcdef".repeat(2)
    )));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_shot_commands_are_quiet_unless_asked_and_vv_logs_each_request() {
    let fake = FakeServer::builder().devices(3).start().await.unwrap();
    let id = fake.dataset().physical_id(0);

    for quiet in [vec![], vec!["-q"]] {
        let logs = stderr_of(leapcraft(&fake).args(&quiet).args(["device", &id]));
        assert_eq!(logs, "", "{quiet:?}");
    }
    let info = stderr_of(leapcraft(&fake).args(["-v", "device", &id]));
    assert!(info.contains("INFO"), "{info}");
    assert!(!info.contains("DEBUG"), "{info}");

    let logs = stderr_of(leapcraft(&fake).args(["-vv", "device", &id]));
    let requests: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("leapcraft.attempt{"))
        .collect();
    assert_eq!(requests.len(), 2, "the exchange and the call: {logs}");
    let call = requests
        .iter()
        .find(|l| l.contains(r#"leapcraft.attempt{operation="get_device""#))
        .unwrap_or_else(|| panic!("a line for get_device: {logs}"));
    for field in [
        "attempt=1",
        r#"http.request.method="GET""#,
        &format!(r#"url.path="/v1/devices/{id}""#),
        "http.response.status_code=200",
        "elapsed_ms=",
    ] {
        assert!(call.contains(field), "{field} in {call}");
    }
    for line in logs.lines() {
        let time = line.split(' ').next().unwrap();
        assert!(
            chrono::DateTime::parse_from_rfc3339(time).is_ok(),
            "a timestamp first: {line}"
        );
    }

    let only_ours_off = stderr_of(
        leapcraft(&fake)
            .env("RUST_LOG", "leapcraft_ext=off")
            .args(["-vv", "device", &id]),
    );
    assert_eq!(only_ours_off, "", "RUST_LOG wins over -vv");
    leapcraft(&fake)
        .env("RUST_LOG", "leapcraft_ext=loud")
        .args(["device", &id])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("RUST_LOG"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_one_object_a_line_with_the_request_fields() {
    let fake = FakeServer::builder().devices(3).start().await.unwrap();
    let id = fake.dataset().physical_id(1);
    let logs = stderr_of(leapcraft(&fake).args(["-vv", "--log-format", "json", "device", &id]));
    let lines: Vec<Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(lines.iter().all(|l| l["timestamp"].is_string()), "{logs}");
    let call = lines
        .iter()
        .find(|l| l["span"]["operation"] == "get_device" && l["span"]["attempt"] == 1)
        .unwrap_or_else(|| panic!("a line for get_device: {logs}"));
    assert_eq!(call["span"]["http.request.method"], "GET");
    assert_eq!(call["span"]["http.response.status_code"], 200);
    assert_eq!(call["span"]["url.path"], format!("/v1/devices/{id}"));
    assert!(call["fields"]["elapsed_ms"].is_u64(), "{call}");
}
