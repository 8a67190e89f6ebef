//! Per-call options (`Client::customize`) and the metadata of the final response
//! (`LastResponse`): other attempts and timeouts for some calls, on the same token, pace
//! and budget as the client's other calls.

use std::time::Duration;

use leapcraft_ext::{CallOptions, Error, LastResponse};
use leapcraft_test_kit::{DEVICE, RecordingSleep, Reply, Script, client};

const TOKEN: &str = "/auth/client/token";
const DEV: &str = "/devices/dev-1";

#[tokio::test]
async fn a_customized_client_shares_the_token_and_takes_its_own_attempts() {
    let server = Script::start().await;
    let sleep = RecordingSleep::default();
    server.always("POST", TOKEN, Reply::token("tok"));
    server.push("GET", DEV, [Reply::json(200, DEVICE), Reply::status(503)]);
    server.always("GET", DEV, Reply::json(200, DEVICE));
    let client = client(server.base_url(), &sleep).build().unwrap();
    client.device("dev-1").await.unwrap();

    let once = client.customize(CallOptions::new().max_attempts(1));
    let err = once.device("dev-1").await.unwrap_err();
    assert!(
        matches!(&err, Error::Api(api) if api.attempts == 1),
        "{err:?}"
    );
    // The client itself still retries.
    client.device("dev-1").await.unwrap();
    assert_eq!(server.count(TOKEN), 1, "one token for both");
    assert_eq!(
        client.stats().requests,
        once.stats().requests,
        "one set of statistics"
    );
}

#[tokio::test]
async fn the_last_response_tells_status_headers_request_id_and_attempts() {
    let server = Script::start().await;
    let sleep = RecordingSleep::default();
    server.always("POST", TOKEN, Reply::token("tok"));
    server.push("GET", DEV, [Reply::status(503)]);
    server.always(
        "GET",
        DEV,
        Reply::json(200, DEVICE).header("x-request-id", "req-42"),
    );
    let client = client(server.base_url(), &sleep).build().unwrap();
    let last = LastResponse::default();
    assert!(last.get().is_none());
    let device = client
        .customize(CallOptions::new().last_response(&last))
        .device("dev-1")
        .await
        .unwrap();
    assert_eq!(
        device.serial.as_deref(),
        Some("LC-2026-X88"),
        "the typed result"
    );
    let response = last.get().expect("recorded");
    assert_eq!(response.operation, "get_device");
    assert_eq!(response.status.as_u16(), 200);
    assert_eq!(response.request_id.as_deref(), Some("req-42"));
    assert_eq!(response.headers.get("x-request-id").unwrap(), "req-42");
    assert_eq!(response.attempts, 2);
}

#[tokio::test(start_paused = true)]
async fn a_call_can_have_a_shorter_deadline() {
    let server = Script::start().await;
    let sleep = RecordingSleep::default();
    server.always("POST", TOKEN, Reply::token("tok"));
    server.always("GET", DEV, Reply::Hang);
    let client = client(server.base_url(), &sleep).build().unwrap();
    let hasty = client.customize(CallOptions::new().timeout(Duration::from_secs(2)));
    let err = hasty.device("dev-1").await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Timeout {
                operation: "get_device",
                ..
            }
        ),
        "{err:?}"
    );
}
