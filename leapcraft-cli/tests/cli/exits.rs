//! Honest exits of the commands over many devices: an authentication failure is one message
//! and exit 3; a device list that cannot be read exits by its kind and stops everything;
//! readings start while the list is still arriving.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::support::*;
use leapcraft_fake::FakeServer;

/// One line on stderr, which says `what`.
fn one_message(stderr: &[u8], what: &str) {
    let stderr = String::from_utf8_lossy(stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains(what), "{what:?} in {stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_key_is_one_message_and_exit_3_over_many_devices() {
    let fake = FakeServer::builder().devices(50).start().await.unwrap();
    let ids: Vec<String> = (0..50).map(|i| fake.dataset().physical_id(i)).collect();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.csv");
    let export = export_args(&out);
    let runs: [Vec<&str>; 3] = [
        [
            &["latest"][..],
            &ids.iter().map(String::as_str).collect::<Vec<_>>(),
        ]
        .concat(),
        vec!["latest", "--all"],
        export.iter().map(String::as_str).collect(),
    ];
    for args in runs {
        let run = leapcraft_at(fake.base_url(), "sk-live-wrong-key")
            .args(&args)
            .assert()
            .code(3)
            .stdout("")
            .get_output()
            .clone();
        one_message(&run.stderr, "authentication failed");
    }
    assert!(!out.exists(), "nothing exported, no file");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_list_that_cannot_be_read_exits_by_its_kind_before_any_reading() {
    for (status, code) in [(404, 4), (403, 3), (500, 1)] {
        let server = Scripted::start(move |req| async move {
            if req.path == "/v1/devices" {
                reply(
                    status,
                    serde_json::json!({"message": "the device list is down"}),
                )
            } else {
                reply(200, serde_json::json!({"data": {"co2": 500}}))
            }
        })
        .await;
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("all.jsonl");
        for args in [
            vec!["latest", "--all"],
            vec!["devices", "--all"],
            export_args(&out).iter().map(String::as_str).collect(),
        ] {
            let run = server
                .leapcraft()
                .args(["--max-attempts", "1"])
                .args(&args)
                .assert()
                .code(code)
                .stdout("")
                .get_output()
                .clone();
            one_message(&run.stderr, "list_devices");
        }
        assert_eq!(
            server.count("/v1/telemetry"),
            0,
            "{status}: no reading fetched"
        );
        assert!(!out.exists());
    }
}

/// A reading: `{"co2": 500}`.
fn reading_ok() -> Reply {
    reply(200, serde_json::json!({"data": {"co2": 500}}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_list_failing_later_keeps_what_was_read_and_says_what_was_not() {
    let listed = device_ids(1_000);
    let server = Scripted::start(move |req| {
        let listed = listed.clone();
        async move {
            match req.path.as_str() {
                "/v1/devices" if req.int("page") == Some(1) => device_page(&listed, &req),
                "/v1/devices" => reply(500, serde_json::json!({"message": "page 2 is down"})),
                _ => reading_ok(),
            }
        }
    })
    .await;
    let run = server
        .leapcraft()
        .args(["--max-attempts", "1", "--format", "json", "latest", "--all"])
        .assert()
        .code(1)
        .get_output()
        .clone();
    let readings: Vec<serde_json::Value> = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(
        ids(&readings, "physical_id"),
        device_ids(1_000),
        "every device of page 1, in list order"
    );
    one_message(&run.stderr, "list_devices");
    one_message(&run.stderr, "1000 devices listed before that");

    let run = server
        .leapcraft()
        .args([
            "--max-attempts",
            "1",
            "--format",
            "json",
            "devices",
            "--all",
        ])
        .args(["--page-size", "100"])
        .assert()
        .code(1)
        .get_output()
        .clone();
    let devices: Vec<serde_json::Value> = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(ids(&devices, "physical_id"), device_ids(100), "page 1");
    one_message(&run.stderr, "100 devices listed before that");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_refused_midway_keeps_the_readings_got_and_exits_3() {
    // After 40 readings the API refuses the account (403): no call can succeed any more.
    let listed = device_ids(100);
    let readings = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let server = Scripted::start(move |req| {
        let (ids, readings) = (listed.clone(), readings.clone());
        async move {
            if req.path == "/v1/devices" {
                return device_page(&ids, &req);
            }
            if readings.fetch_add(1, Ordering::SeqCst) < 40 {
                reading_ok()
            } else {
                reply(403, serde_json::json!({"message": "the key was revoked"}))
            }
        }
    })
    .await;
    let run = server
        .leapcraft()
        .args(["--format", "json", "latest", "--all", "--concurrency", "1"])
        .assert()
        .code(3)
        .get_output()
        .clone();
    let got: Vec<serde_json::Value> = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(
        ids(&got, "physical_id"),
        device_ids(40),
        "the 40 readings got, in order"
    );
    one_message(&run.stderr, "the key was revoked");
    one_message(&run.stderr, "60 of 100 devices were not read");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_on_latest_all_prints_the_readings_got_and_exits_130() {
    // Devices from the 30th on are never answered; the 4th of them asked for (concurrency 4)
    // means the first 30 readings were all taken in.
    let listed = device_ids(100);
    let (hanging_tx, mut hanging) = tokio::sync::mpsc::unbounded_channel();
    let server = Scripted::start(move |req| {
        let (ids, hanging_tx) = (listed.clone(), hanging_tx.clone());
        async move {
            if req.path == "/v1/devices" {
                return device_page(&ids, &req);
            }
            let index: usize = last_segment(&req)[4..].parse().unwrap();
            if index < 30 {
                return reading_ok();
            }
            let _ = hanging_tx.send(index);
            std::future::pending().await
        }
    })
    .await;
    let mut child = spawn_at(
        server.base_url(),
        KEY,
        &["--format", "json", "latest", "--all", "--concurrency", "4"],
    );
    for _ in 0..4 {
        next_event(&mut hanging).await;
    }
    interrupt(&child);
    let out = tokio::task::spawn_blocking(move || {
        let _ = &mut child;
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(130), "{out:?}");
    let got: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(ids(&got, "physical_id"), device_ids(30), "in order");
    one_message(&out.stderr, "interrupted; 70 of 100 devices were not read");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_all_reads_while_the_device_list_is_still_arriving() {
    // Page 2 of the list is answered only once a reading has been asked for (or after 20 s,
    // so that a command that waits for the whole list first is slow, not stuck).
    let listed = device_ids(1_000);
    let (reading_asked, _) = tokio::sync::watch::channel(false);
    let reading_asked = Arc::new(reading_asked);
    let page_2_waited_for_nothing = Arc::new(AtomicBool::new(false));
    let waited = page_2_waited_for_nothing.clone();
    let server = Scripted::start(move |req| {
        let (ids, reading_asked, waited) = (listed.clone(), reading_asked.clone(), waited.clone());
        async move {
            match req.path.as_str() {
                "/v1/devices" if req.int("page") == Some(1) => device_page(&ids, &req),
                "/v1/devices" => {
                    let mut asked = reading_asked.subscribe();
                    let wait = asked.wait_for(|asked| *asked);
                    if tokio::time::timeout(Duration::from_secs(20), wait)
                        .await
                        .is_err()
                    {
                        waited.store(true, Ordering::SeqCst);
                    }
                    device_page(&ids, &req)
                }
                _ => {
                    reading_asked.send_replace(true);
                    reply(200, serde_json::json!({"data": {"co2": 500}}))
                }
            }
        }
    })
    .await;
    let readings = json_list(
        server
            .leapcraft()
            .args(["latest", "--all", "--concurrency", "32"]),
    );
    assert_eq!(readings.len(), 1_000);
    assert!(
        !page_2_waited_for_nothing.load(Ordering::SeqCst),
        "readings started before the list was complete"
    );
    assert_eq!(
        ids(&readings, "physical_id"),
        device_ids(1_000),
        "printed in list order"
    );
    assert!(server.count("/v1/devices") <= 3, "pages of 1,000");
}
