//! What the client logs through `tracing`: no secret in any output, at TRACE level, through a
//! whole refresh-and-retry scenario; and each call's span where the caller's code would put
//! it. Alone in their test binary: tracing caches per call site whether anyone listens, and
//! a test running beside them without a subscriber could make that cache say "no".

use std::io::Write;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use leapcraft_test_kit::{DEVICE, KEY, RecordingSleep, Reply, Script, client};
use tracing::Instrument;

const TOKEN_1: &str = "TOKEN-one-7c1d2e";
const TOKEN_2: &str = "TOKEN-two-0a9b8c";
const TOKEN: &str = "/auth/client/token";
const DEV: &str = "/devices/dev-1";

/// Everything tracing writes, at every level.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

fn assert_clean(what: &str, text: &str) {
    for secret in [KEY, TOKEN_1, TOKEN_2] {
        assert!(!text.contains(secret), "{what} shows a secret: {text}");
    }
}

/// Everything logged at every level, with span events, for as long as the guard lives.
fn capture() -> (Captured, tracing::subscriber::DefaultGuard) {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::FULL)
        .finish();
    (captured, tracing::subscriber::set_default(subscriber))
}

#[tokio::test]
async fn bulk_calls_log_in_the_span_of_their_caller() {
    let (captured, _guard) = capture();
    let fake = leapcraft_fake::FakeServer::builder()
        .devices(3)
        .start()
        .await
        .unwrap();
    let client = leapcraft_test_kit::fake_client(&fake).build().unwrap();
    let ids: Vec<String> = (0..3).map(|i| fake.dataset().physical_id(i)).collect();
    let read = client
        .latest_many(ids, 2)
        .filter(|(_, reading)| std::future::ready(reading.is_ok()))
        .count()
        .instrument(tracing::info_span!("nightly_report"))
        .await;
    assert_eq!(read, 3);
    let logs = captured.text();
    let calls: Vec<&str> = logs
        .lines()
        .filter(|l| {
            l.ends_with(r#"server.address="127.0.0.1"}: leapcraft_ext::pipeline: new"#)
                && l.contains(r#"leapcraft.call{operation="get_telemetry""#)
                && !l.contains("leapcraft.attempt")
                && !l.contains(r#"operation="get_access_token""#)
        })
        .collect();
    assert_eq!(calls.len(), 3, "{logs}");
    for line in calls {
        assert!(line.contains("nightly_report:leapcraft.call"), "{line}");
    }
}

#[tokio::test]
async fn no_secret_in_any_log_line_through_refresh_and_retries() {
    let (captured, _guard) = capture();

    let (server, sleep) = (Script::start().await, RecordingSleep::default());
    server.push(
        "POST",
        TOKEN,
        [
            Reply::status(503),
            Reply::token(TOKEN_1),
            Reply::token(TOKEN_2),
        ],
    );
    server.push(
        "GET",
        DEV,
        [
            Reply::json(200, DEVICE),
            Reply::status(401),
            Reply::status(503).header("retry-after", "1"),
            Reply::Drop,
        ],
    );
    server.always("GET", DEV, Reply::json(200, DEVICE));
    let client = client(server.base_url(), &sleep).build().unwrap();
    client.device("dev-1").await.unwrap();
    client.device("dev-1").await.unwrap();
    assert_eq!(server.count(TOKEN), 3);
    assert_eq!(
        server.seen(DEV).last().unwrap().header("authorization"),
        Some(&*format!("Bearer {TOKEN_2}"))
    );

    let logs = captured.text();
    assert_clean("tracing", &logs);
    // The scenario is visible in the logs: spans per call, exchanges, retries with waits.
    for expected in [
        "leapcraft.call",
        "operation=\"get_device\"",
        "token exchanged",
        "retrying",
        "wait_ms=1",
        "refreshing the token",
    ] {
        assert!(
            logs.contains(expected),
            "missing {expected:?} in logs:\n{logs}"
        );
    }
}
