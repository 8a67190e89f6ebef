//! The client against servers that misbehave on purpose: bodies that never end, huge error
//! messages, redirects to another origin, a rejected key under concurrency, tokens that last a
//! few requests, a server that speaks no TLS, and settings at their extremes.

use std::time::Duration;

use futures::StreamExt;
use leapcraft_ext::{AuthErrorKind, Client, Error, RetryPolicy};
use leapcraft_test_kit::{DEVICE, RecordingSleep, Reply, Script, client, fake_client};

const TOKEN: &str = "/auth/client/token";
const DEV: &str = "/devices/dev-1";

/// A call that must end by itself: a hang fails the test instead of stalling it.
async fn bounded<F: Future>(call: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(60), call)
        .await
        .expect("the call hung")
}

async fn scripted() -> (Script, RecordingSleep) {
    let server = Script::start().await;
    server.always("POST", TOKEN, Reply::token("tok"));
    (server, RecordingSleep::default())
}

#[tokio::test]
async fn a_successful_body_that_never_ends_stops_at_the_limit() {
    let (server, sleep) = scripted().await;
    server.always("GET", DEV, Reply::Endless { status: 200 });
    let client = client(server.base_url(), &sleep)
        .max_response_bytes(16 * 1024)
        .build()
        .unwrap();
    let err = bounded(client.device("dev-1")).await.unwrap_err();
    assert!(
        matches!(err, Error::ResponseTooLarge { operation: "get_device", limit } if limit == 16 * 1024),
        "{err:?}"
    );
    assert!(err.to_string().contains("max_response_bytes"), "{err}");
    assert_eq!(server.count(DEV), 1, "the same body is not asked for again");
    // The connection was dropped, not read to its (missing) end.
    bounded(server.all_closed()).await;
}

#[tokio::test]
async fn a_page_far_larger_than_asked_is_refused_as_it_arrives() {
    let (server, sleep) = scripted().await;
    // 20,000 devices (about 1.5 MiB) where 10 were asked, under the 64 MiB client limit.
    let devices: Vec<String> = (0..20_000)
        .map(|i| {
            format!(
                r#"{{"physical_id":"dev-{i}","name":"{}","meta":{{}}}}"#,
                "n".repeat(40)
            )
        })
        .collect();
    server.always(
        "GET",
        "/devices",
        Reply::json(200, format!("[{}]", devices.join(","))),
    );
    let client = client(server.base_url(), &sleep).build().unwrap();
    let err = bounded(client.devices().page_size(10).collect())
        .await
        .unwrap_err();
    let Error::ResponseTooLarge { operation, limit } = err else {
        panic!("{err:?}")
    };
    assert_eq!(operation, "list_devices");
    assert!(limit < 1 << 20, "bounded by what was asked: {limit}");
    // The same list asked for whole is read.
    let all = bounded(client.devices().page_size(-1).collect())
        .await
        .unwrap();
    assert_eq!(all.len(), 20_000);
}

#[tokio::test]
async fn one_bad_field_or_record_hides_no_other() {
    let (server, sleep) = scripted().await;
    let mut body = br#"[{"physical_id":"a","name":"ok"},{"physical_id":"b","name":"raw "#.to_vec();
    body.push(0xFF);
    body.extend_from_slice(
        br#" byte"},{"physical_id":"c","name":"lone \ud800"},{"physical_id":17},{"physical_id":"e"}]"#,
    );
    server.always("GET", "/devices", Reply::Bytes { status: 200, body });
    let client = client(server.base_url(), &sleep).build().unwrap();
    let devices = bounded(client.devices().collect()).await.unwrap();
    let names: Vec<_> = devices
        .iter()
        .map(|d| (d.physical_id.as_str(), d.name.as_deref()))
        .collect();
    assert_eq!(
        names,
        [
            ("a", Some("ok")),
            ("b", Some("raw \u{FFFD} byte")),
            ("c", Some("lone \u{FFFD}")),
            ("e", None)
        ],
        "the unreadable record (an id that is a number) skipped, the others kept"
    );
}

#[tokio::test]
async fn a_huge_content_length_fails_before_reading() {
    let (server, sleep) = scripted().await;
    server.always(
        "GET",
        DEV,
        Reply::Announced {
            status: 200,
            length: 1 << 40,
        },
    );
    // No timeouts: only the announced length can end this call.
    let client = client(server.base_url(), &sleep)
        .attempt_timeout(None)
        .overall_timeout(None)
        .build()
        .unwrap();
    let err = bounded(client.device("dev-1")).await.unwrap_err();
    assert!(matches!(err, Error::ResponseTooLarge { .. }), "{err:?}");
}

#[tokio::test]
async fn an_error_body_that_never_ends_is_read_to_32_kib_and_quoted_to_1() {
    let (server, sleep) = scripted().await;
    server.always("GET", DEV, Reply::Endless { status: 500 });
    let client = client(server.base_url(), &sleep)
        .retry_policy(RetryPolicy::default().with_max_attempts(2))
        .build()
        .unwrap();
    let err = bounded(client.device("dev-1")).await.unwrap_err();
    let Error::Api(api) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(api.status.as_u16(), 500);
    assert_eq!(api.attempts, 2, "a 500 is retried as usual");
    assert!(api.body.len() <= leapcraft_ext::MAX_SNIPPET);
    assert!(err.to_string().len() < 2048, "{}", err.to_string().len());
}

#[tokio::test]
async fn a_huge_error_message_is_cut_to_1_kib() {
    let (server, sleep) = scripted().await;
    let message = "m".repeat(20_000);
    server.always(
        "GET",
        DEV,
        Reply::json(404, format!(r#"{{"message":"{message}"}}"#)),
    );
    let client = client(server.base_url(), &sleep).build().unwrap();
    let err = bounded(client.device("dev-1")).await.unwrap_err();
    let Error::Api(api) = &err else {
        panic!("{err:?}")
    };
    let quoted = api.message.as_deref().unwrap();
    assert!(
        quoted.len() <= 1024 && quoted.len() > 1000,
        "{}",
        quoted.len()
    );
    assert!(err.to_string().len() < 1200, "{}", err.to_string().len());
}

/// A second server, another origin (another port), that counts what reaches it.
async fn elsewhere() -> Script {
    let other = Script::start().await;
    other.always("POST", TOKEN, Reply::token("stolen"));
    other.always("GET", DEV, Reply::json(200, DEVICE));
    other
}

fn redirect(status: u16, to: String) -> Reply {
    Reply::Http {
        status,
        headers: vec![("location".into(), to)],
        body: String::new(),
    }
}

#[tokio::test]
async fn no_credential_follows_a_redirect_to_another_origin() {
    for status in [301, 302, 303, 307, 308] {
        // The bearer token, on a GET.
        let other = elsewhere().await;
        let (server, sleep) = scripted().await;
        server.always(
            "GET",
            DEV,
            redirect(status, format!("{}{DEV}", other.base_url())),
        );
        let api = client(server.base_url(), &sleep).build().unwrap();
        let err = bounded(api.device("dev-1")).await.unwrap_err();
        assert_eq!(err.status().map(|s| s.as_u16()), Some(status), "{err}");
        assert!(err.to_string().contains("not followed"), "{err}");
        assert_eq!(
            other.count(DEV),
            0,
            "{status}: the request reached the other origin"
        );

        // The API key, in the token exchange's form body.
        let other = elsewhere().await;
        let server = Script::start().await;
        server.always(
            "POST",
            TOKEN,
            redirect(status, format!("{}{TOKEN}", other.base_url())),
        );
        let api = client(server.base_url(), &sleep).build().unwrap();
        let err = bounded(api.device("dev-1")).await.unwrap_err();
        assert_eq!(err.status().map(|s| s.as_u16()), Some(status), "{err}");
        assert_eq!(
            other.count(TOKEN),
            0,
            "{status}: the exchange reached the other origin"
        );
    }
}

#[tokio::test]
async fn a_redirect_within_the_origin_is_followed_with_the_token() {
    let (server, sleep) = scripted().await;
    server.always(
        "GET",
        DEV,
        redirect(307, format!("{}/devices/dev-2", server.base_url())),
    );
    server.always("GET", "/devices/dev-2", Reply::json(200, DEVICE));
    let client = client(server.base_url(), &sleep).build().unwrap();
    bounded(client.device("dev-1")).await.unwrap();
    assert_eq!(
        server.seen("/devices/dev-2")[0].header("authorization"),
        Some("Bearer tok")
    );
}

#[tokio::test]
async fn a_rejected_key_is_one_exchange_for_all_concurrent_callers() {
    let server = Script::start().await;
    server.always("POST", TOKEN, Reply::json(401, r#"{"message":"bad key"}"#));
    let client = client(server.base_url(), &RecordingSleep::default())
        .build()
        .unwrap();
    let calls = (0..50).map(|i| {
        let client = client.clone();
        tokio::spawn(async move { client.device(format!("dev-{i}")).await })
    });
    let results = bounded(futures::future::join_all(calls)).await;
    for result in results {
        let err = result.unwrap().unwrap_err();
        let Error::Auth(auth) = &err else {
            panic!("{err:?}")
        };
        assert_eq!(auth.kind, AuthErrorKind::KeyRejected);
    }
    assert_eq!(server.count(TOKEN), 1, "one exchange");
    assert_eq!(client.stats().token_exchanges, 0);
}

#[tokio::test]
async fn a_failing_token_endpoint_is_retried_by_one_caller_for_all() {
    let (server, sleep) = (Script::start().await, RecordingSleep::default());
    server.push("POST", TOKEN, [Reply::status(503), Reply::status(503)]);
    server.always("POST", TOKEN, Reply::token("tok"));
    server.always(
        "GET",
        "/telemetry/dev",
        Reply::json(200, r#"[{"co2":400}]"#),
    );
    let client = client(server.base_url(), &sleep).build().unwrap();
    let readings: Vec<_> = bounded(
        client
            .latest_many((0..20).map(|_| "dev"), 20)
            .collect::<Vec<_>>(),
    )
    .await;
    assert!(readings.iter().all(|(_, r)| r.is_ok()), "{readings:?}");
    assert_eq!(
        server.count(TOKEN),
        3,
        "two failures and one success, for all"
    );
    assert_eq!(sleep.waits().len(), 2);
}

#[tokio::test]
async fn tokens_that_last_seven_requests_serve_sixteen_concurrent_calls() {
    let fake = leapcraft_fake::FakeServer::builder()
        .devices(16)
        .token_max_uses(7)
        .start()
        .await
        .unwrap();
    let client = fake_client(&fake)
        .sleep(RecordingSleep::default())
        .build()
        .unwrap();
    let ids: Vec<_> = fake
        .dataset()
        .devices(0..16)
        .map(|d| d.physical_id.clone())
        .collect();
    for round in 0..3 {
        let results: Vec<_> =
            bounded(client.latest_many(ids.clone(), 16).collect::<Vec<_>>()).await;
        let failed: Vec<_> = results.iter().filter(|(_, r)| r.is_err()).collect();
        assert!(failed.is_empty(), "round {round}: {failed:?}");
    }
    assert!(client.stats().token_exchanges >= 7);
}

#[tokio::test]
async fn a_failed_attempt_is_released_before_the_wait() {
    /// Waits until the server has no connection open: if the client held the timed-out
    /// attempt's connection during the wait, this never returns.
    #[derive(Clone)]
    struct WaitForRelease(Script);
    impl std::fmt::Debug for WaitForRelease {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("WaitForRelease")
        }
    }
    impl leapcraft_ext::Sleep for WaitForRelease {
        fn sleep(&self, _: Duration) -> leapcraft_ext::SleepFuture {
            let server = self.0.clone();
            Box::pin(async move { server.all_closed().await })
        }
    }
    let (server, _) = scripted().await;
    server.push("GET", DEV, [Reply::Hang]);
    server.always("GET", DEV, Reply::json(200, DEVICE));
    let client = Client::builder()
        .api_key("k")
        .base_url(server.base_url())
        .attempt_timeout(Duration::from_millis(200))
        .sleep(WaitForRelease(server.clone()))
        .build()
        .unwrap();
    bounded(client.device("dev-1")).await.unwrap();
    assert_eq!(server.count(DEV), 2);
}

#[tokio::test]
async fn a_server_that_speaks_no_tls_is_not_retried() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            use tokio::io::AsyncWriteExt;
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                .await;
        }
    });
    let client = Client::builder()
        .api_key("k")
        .base_url(format!("https://127.0.0.1:{port}/v1"))
        .sleep(RecordingSleep::default())
        .build()
        .unwrap();
    let err = bounded(client.device("dev-1")).await.unwrap_err();
    assert!(matches!(err, Error::Transport(_)), "{err:?}");
    assert_eq!(
        accepted.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "a TLS failure is not retried: {err}"
    );
}

#[tokio::test]
async fn no_setting_panics() {
    let (server, sleep) = scripted().await;
    server.always("GET", DEV, Reply::json(200, DEVICE));
    server.always("GET", "/devices", Reply::json(200, "[]"));
    server.always(
        "GET",
        "/telemetry/dev-1",
        Reply::json(200, r#"[{"co2":1}]"#),
    );
    let client = client(server.base_url(), &sleep)
        .connect_timeout(Duration::MAX)
        .attempt_timeout(Duration::MAX)
        .overall_timeout(Duration::MAX)
        .max_token_age(Duration::MAX)
        .max_response_bytes(usize::MAX)
        .retry_policy(
            RetryPolicy::default()
                .with_max_attempts(u32::MAX)
                .with_initial_backoff(Duration::MAX)
                .with_max_backoff(Duration::MAX)
                .with_max_retry_after(Duration::MAX),
        )
        .build()
        .unwrap();
    bounded(client.device("dev-1")).await.unwrap();
    let devices = bounded(
        client
            .devices()
            .prefetch(usize::MAX)
            .page_size(100)
            .collect(),
    )
    .await;
    assert!(devices.unwrap().is_empty());
    for concurrency in [0, 1, usize::MAX] {
        let readings: Vec<_> = bounded(
            client
                .latest_many(["dev-1"], concurrency)
                .collect::<Vec<_>>(),
        )
        .await;
        assert!(readings[0].1.is_ok(), "{concurrency}: {readings:?}");
    }
}
