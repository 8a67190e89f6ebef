//! `leapcraft notifications --follow`: new notifications are printed as they appear, and
//! Ctrl-C (SIGINT) ends the command cleanly.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use leapcraft_fake::FakeServer;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_prints_new_notifications_until_interrupted() {
    let fake = FakeServer::builder().start().await.unwrap();
    let existing = fake.notifications().len();
    let mut child = Command::new(assert_cmd::cargo::cargo_bin!("leapcraft"))
        .env_remove("LEAPCRAFT_API_KEY")
        .env_remove("LEAPCRAFT_BASE_URL")
        .args(["--base-url", fake.base_url(), "--api-key", fake.api_key()])
        .args([
            "--format",
            "json",
            "notifications",
            "--follow",
            "--interval",
            "0.05",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines_tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if lines_tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });

    // The first poll only learns what exists: push until the command reports one. Each wait
    // is a receive with a timeout, which returns as soon as a line is printed.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut pushed = Vec::new();
    let first = loop {
        assert!(
            Instant::now() < deadline,
            "nothing printed; pushed {pushed:?}"
        );
        pushed.push(
            fake.push_notification("C4:FE:50:48:68:C5", "thresholdAlert", "CO2 above 1200 ppm")
                .id,
        );
        if let Ok(line) = lines.recv_timeout(Duration::from_millis(250)) {
            break line;
        }
    };
    let first: Value = serde_json::from_str(&first).expect("one JSON object per line");
    let id = first["id"].as_i64().unwrap();
    assert!(pushed.contains(&id), "{id} was pushed: {pushed:?}");
    assert!(
        id > existing as i64,
        "the notifications that existed are not printed"
    );
    assert_eq!(first["message"], "CO2 above 1200 ppm");
    assert_eq!(first["category"], "thresholdAlert");

    // Ctrl-C.
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{output:?}");
    assert!(
        output.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
