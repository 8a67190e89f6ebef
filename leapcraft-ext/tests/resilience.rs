//! The client under a flaky network and an expiring token: token lifecycle, retries,
//! timeouts, errors. Waits go through a recording `Sleep`: nothing here sleeps.

use std::time::Duration;

use leapcraft_ext::{AuthErrorKind, Client, Error, RateLimit, RetryPolicy};
use leapcraft_test_kit::{DEVICE, KEY, RecordingSleep, Reply, Script, client};

const TOKEN: &str = "/auth/client/token";
const DEV: &str = "/devices/dev-1";

async fn scripted() -> (Script, RecordingSleep) {
    (Script::start().await, RecordingSleep::default())
}

#[tokio::test]
async fn exchanges_lazily_once_and_shares_the_token_across_clones() {
    let (server, sleep) = scripted().await;
    server.push("POST", TOKEN, [Reply::token("tok-1")]);
    server.always("GET", DEV, Reply::json(200, DEVICE));
    let client = client(server.base_url(), &sleep)
        .app_name("itest/1.0")
        .build()
        .unwrap();
    assert_eq!(server.count(TOKEN), 0, "building sends nothing");

    let clone = client.clone();
    client.device("dev-1").await.unwrap();
    clone.device("dev-1").await.unwrap();
    let device = clone.device("dev-1").await.unwrap();
    assert_eq!(device.serial.as_deref(), Some("LC-2026-X88"));

    assert_eq!(server.count(TOKEN), 1);
    let exchange = &server.seen(TOKEN)[0];
    assert_eq!(exchange.body, format!("api_key={KEY}"));
    assert!(exchange.header("authorization").is_none());
    for seen in server.seen(DEV) {
        assert_eq!(seen.header("authorization"), Some("Bearer tok-1"));
        let agent = seen.header("user-agent").unwrap();
        assert!(
            agent.starts_with("leapcraft-rs/") && agent.ends_with(" itest/1.0"),
            "{agent}"
        );
    }
}

#[tokio::test]
async fn a_401_refreshes_the_token_and_resends_once() {
    let (server, sleep) = scripted().await;
    server.push(
        "POST",
        TOKEN,
        [Reply::token("tok-1"), Reply::token("tok-2")],
    );
    server.push("GET", DEV, [Reply::json(200, DEVICE), Reply::status(401)]);
    server.always("GET", DEV, Reply::json(200, DEVICE));
    let client = client(server.base_url(), &sleep).build().unwrap();

    client.device("dev-1").await.unwrap();
    client.device("dev-1").await.unwrap();

    assert_eq!(server.count(TOKEN), 2);
    let auth: Vec<_> = server
        .seen(DEV)
        .iter()
        .map(|s| s.header("authorization").unwrap().to_owned())
        .collect();
    assert_eq!(auth, ["Bearer tok-1", "Bearer tok-1", "Bearer tok-2"]);
    assert!(
        sleep.waits().is_empty(),
        "a refresh is not a retry: no backoff"
    );
}

#[tokio::test]
async fn concurrent_401s_cause_exactly_one_exchange() {
    let server = httpmock::MockServer::start_async().await;
    let first = server
        .mock_async(|when, then| {
            when.method("POST").path("/v1/auth/client/token");
            then.status(200)
                .body(r#"{"type":"bearer","token":"expired"}"#);
        })
        .await;
    let warm = server
        .mock_async(|when, then| {
            when.path("/v1/devices/warm")
                .header("authorization", "Bearer expired");
            then.status(200).body(DEVICE);
        })
        .await;
    let client = Client::builder()
        .api_key(KEY)
        .base_url(server.url("/v1"))
        .build()
        .unwrap();
    client.device("warm").await.unwrap();
    assert_eq!(
        (first.calls_async().await, warm.calls_async().await),
        (1, 1)
    );

    // The cached token now expires; the next exchange gives a fresh one.
    first.delete_async().await;
    let refresh = server
        .mock_async(|when, then| {
            when.method("POST").path("/v1/auth/client/token");
            then.status(200)
                .body(r#"{"type":"bearer","token":"fresh"}"#);
        })
        .await;
    let refused = server
        .mock_async(|when, then| {
            when.path_includes("/v1/devices/")
                .header("authorization", "Bearer expired");
            then.status(401).body(r#"{"message":"token expired"}"#);
        })
        .await;
    let ok = server
        .mock_async(|when, then| {
            when.path_includes("/v1/devices/")
                .header("authorization", "Bearer fresh");
            then.status(200).body(DEVICE);
        })
        .await;

    let calls = (0..100).map(|i| {
        let client = client.clone();
        tokio::spawn(async move { client.device(format!("dev-{i}")).await })
    });
    let results = futures::future::join_all(calls).await;
    let successes = results
        .into_iter()
        .filter(|r| matches!(r, Ok(Ok(_))))
        .count();
    assert_eq!(successes, 100);
    assert_eq!(refresh.calls_async().await, 1, "exactly one exchange");
    assert_eq!(ok.calls_async().await, 100);
    assert!(refused.calls_async().await >= 1);
}

#[tokio::test]
async fn fresh_tokens_refused_at_once_are_an_auth_error_not_a_loop() {
    let (server, sleep) = scripted().await;
    server.always("POST", TOKEN, Reply::token("tok"));
    server.always("GET", DEV, Reply::json(401, r#"{"message":"not for you"}"#));
    let client = client(server.base_url(), &sleep).build().unwrap();

    let err = client.device("dev-1").await.unwrap_err();
    let Error::Auth(auth) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(auth.kind, AuthErrorKind::Unauthorized);
    assert_eq!(auth.message.as_deref(), Some("not for you"));
    // One fresh token refused may have expired on its way; a second, with no token accepted
    // in between, says the API refuses the tokens it gives.
    assert_eq!(server.count(DEV), 2);
    assert_eq!(server.count(TOKEN), 2);
    assert_eq!(err.status().map(|s| s.as_u16()), Some(401));
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn a_rejected_key_is_an_auth_error_at_once() {
    let (server, sleep) = scripted().await;
    server.always(
        "POST",
        TOKEN,
        Reply::json(401, r#"{"message":"unknown api key"}"#),
    );
    let client = client(server.base_url(), &sleep).build().unwrap();

    let err = client.device("dev-1").await.unwrap_err();
    let Error::Auth(auth) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(auth.kind, AuthErrorKind::KeyRejected);
    assert!(err.to_string().contains("API key was rejected"), "{err}");
    assert_eq!(server.count(TOKEN), 1, "no retries");
    assert_eq!(server.count(DEV), 0);
    assert!(sleep.waits().is_empty());
}

#[tokio::test]
async fn transient_exchange_failures_are_retried() {
    let (server, sleep) = scripted().await;
    server.push(
        "POST",
        TOKEN,
        [Reply::status(503), Reply::Drop, Reply::token("tok")],
    );
    server.always("GET", DEV, Reply::json(200, DEVICE));
    let client = client(server.base_url(), &sleep).build().unwrap();

    client.device("dev-1").await.unwrap();
    assert_eq!(server.count(TOKEN), 3);
    assert_eq!(sleep.waits().len(), 2);
}

#[tokio::test]
async fn a_failed_proactive_refresh_keeps_the_working_token() {
    let (server, sleep) = scripted().await;
    server.push("POST", TOKEN, [Reply::token("tok-1")]);
    server.always("POST", TOKEN, Reply::status(503));
    server.always("GET", DEV, Reply::json(200, DEVICE));
    let client = client(server.base_url(), &sleep)
        .max_token_age(Duration::ZERO)
        .retry_policy(RetryPolicy::default().with_max_attempts(2))
        .build()
        .unwrap();

    client.device("dev-1").await.unwrap();
    client.device("dev-1").await.unwrap();
    assert_eq!(
        server.count(TOKEN),
        3,
        "one exchange, then one refresh of two attempts"
    );
    let auth: Vec<_> = server
        .seen(DEV)
        .iter()
        .map(|s| s.header("authorization").unwrap().to_owned())
        .collect();
    assert_eq!(auth, ["Bearer tok-1", "Bearer tok-1"]);
}

#[tokio::test]
async fn proactive_refresh_after_the_maximum_age() {
    let (server, sleep) = scripted().await;
    server.push(
        "POST",
        TOKEN,
        [Reply::token("tok-1"), Reply::token("tok-2")],
    );
    server.always("GET", DEV, Reply::json(200, DEVICE));
    let aged = client(server.base_url(), &sleep)
        .max_token_age(Duration::ZERO)
        .build()
        .unwrap();
    aged.device("dev-1").await.unwrap();
    aged.device("dev-1").await.unwrap();
    assert_eq!(server.count(TOKEN), 2);
    let last = server.seen(DEV).pop().unwrap();
    assert_eq!(last.header("authorization"), Some("Bearer tok-2"));

    let (server, sleep) = scripted().await;
    server.always("POST", TOKEN, Reply::token("tok"));
    server.always("GET", DEV, Reply::json(200, DEVICE));
    let young = client(server.base_url(), &sleep)
        .max_token_age(Duration::from_secs(3600))
        .build()
        .unwrap();
    young.device("dev-1").await.unwrap();
    young.device("dev-1").await.unwrap();
    assert_eq!(server.count(TOKEN), 1);
}

#[tokio::test]
async fn retryable_statuses_are_retried_with_backoff() {
    for status in [408, 429, 500, 502, 503, 504] {
        let (server, sleep) = scripted().await;
        server.always("POST", TOKEN, Reply::token("tok"));
        server.push("GET", DEV, [Reply::status(status), Reply::status(status)]);
        server.always("GET", DEV, Reply::json(200, DEVICE));
        // After a 429 the rate limiter paces the retries too (its waits go through the same
        // `Sleep`): off here, where the backoff is the subject (see rate_limit.rs).
        let client = client(server.base_url(), &sleep)
            .retry_policy(RetryPolicy::default().with_initial_backoff(Duration::from_millis(100)))
            .rate_limit(RateLimit::Off)
            .build()
            .unwrap();
        client.device("dev-1").await.unwrap();
        assert_eq!(server.count(DEV), 3, "{status}");
        let waits = sleep.waits();
        assert_eq!(waits.len(), 2, "{status}");
        assert!(waits[0] <= Duration::from_millis(100) && waits[1] <= Duration::from_millis(200));
    }
}

#[tokio::test]
async fn other_4xx_are_never_retried() {
    for status in [400, 403, 404, 409, 422] {
        let (server, sleep) = scripted().await;
        server.always("POST", TOKEN, Reply::token("tok"));
        server.always("GET", DEV, Reply::json(status, r#"{"message":"nope"}"#));
        let client = client(server.base_url(), &sleep).build().unwrap();
        let err = client.device("dev-1").await.unwrap_err();
        let Error::Api(api) = &err else {
            panic!("{err:?}")
        };
        assert_eq!(api.status.as_u16(), status);
        assert_eq!(api.message.as_deref(), Some("nope"));
        assert_eq!(api.attempts, 1);
        assert_eq!(server.count(DEV), 1);
        assert!(sleep.waits().is_empty());
    }
}

#[tokio::test]
async fn retry_after_is_honoured_in_both_forms_and_capped() {
    let (server, sleep) = scripted().await;
    server.always("POST", TOKEN, Reply::token("tok"));
    let date = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(40));
    server.push(
        "GET",
        DEV,
        [
            Reply::status(429).header("retry-after", "7"),
            Reply::status(503).header("retry-after", &date),
            Reply::status(503).header("retry-after", "3600"),
        ],
    );
    server.always("GET", DEV, Reply::json(200, DEVICE));
    let client = client(server.base_url(), &sleep)
        .retry_policy(
            RetryPolicy::default()
                .with_max_attempts(5)
                .with_max_retry_after(Duration::from_secs(60)),
        )
        .overall_timeout(None)
        // The waits are the server's alone (the rate limiter's are rate_limit.rs's subject).
        .rate_limit(RateLimit::Off)
        .build()
        .unwrap();
    client.device("dev-1").await.unwrap();
    // Each wait is the server's, plus up to a fifth of it as jitter.
    let waits = sleep.waits();
    let within = |wait: Duration, low: u64, high: u64| {
        wait >= Duration::from_secs(low) && wait <= Duration::from_secs(high) * 6 / 5
    };
    assert_eq!(waits.len(), 3);
    assert!(within(waits[0], 7, 7), "{waits:?}");
    assert!(within(waits[1], 20, 40), "{waits:?}");
    assert!(within(waits[2], 60, 60), "capped: {waits:?}");
}

#[tokio::test]
async fn attempts_are_bounded_and_the_error_says_everything() {
    let (server, sleep) = scripted().await;
    server.always("POST", TOKEN, Reply::token("tok"));
    server.always(
        "GET",
        DEV,
        Reply::json(503, r#"{"message":"maintenance"}"#)
            .header("x-request-id", "req-42")
            .header("retry-after", "1"),
    );
    let client = client(server.base_url(), &sleep)
        .retry_policy(RetryPolicy::default().with_max_attempts(3))
        .build()
        .unwrap();
    let err = client.device("dev-1").await.unwrap_err();
    let Error::Api(api) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(api.status.as_u16(), 503);
    assert_eq!(api.attempts, 3);
    assert_eq!(api.request_id.as_deref(), Some("req-42"));
    assert_eq!(api.retry_after, Some(Duration::from_secs(1)));
    assert!(api.body.contains("maintenance"));
    assert_eq!(server.count(DEV), 3);
    assert!(err.is_retryable());
    assert_eq!(
        err.to_string(),
        "get_device: 503 Service Unavailable: maintenance (after 3 attempts)"
    );
}

#[tokio::test]
async fn truncated_and_dropped_responses_are_retried() {
    let (server, sleep) = scripted().await;
    server.always("POST", TOKEN, Reply::token("tok"));
    server.push(
        "GET",
        DEV,
        [
            Reply::Truncated {
                status: 200,
                body: r#"{"serial":"LC"#.into(),
                claimed: 500,
            },
            Reply::Drop,
        ],
    );
    server.always("GET", DEV, Reply::json(200, DEVICE));
    let client = client(server.base_url(), &sleep).build().unwrap();
    let device = client.device("dev-1").await.unwrap();
    assert_eq!(device.serial.as_deref(), Some("LC-2026-X88"));
    assert_eq!(server.count(DEV), 3);
    // One backoff before each retry: the body cut short (retried by the method) and the
    // dropped connection (retried by the transport) share one budget and one policy.
    assert_eq!(sleep.waits().len(), 2);
}

#[tokio::test]
async fn a_truncated_body_through_the_escape_hatch_is_retried_too() {
    let (server, sleep) = scripted().await;
    server.always("POST", TOKEN, Reply::token("tok"));
    server.push(
        "GET",
        "/things",
        [Reply::Truncated {
            status: 200,
            body: "[{".into(),
            claimed: 500,
        }],
    );
    server.always("GET", "/things", Reply::json(200, r#"[{"name":"modbus"}]"#));
    let client = client(server.base_url(), &sleep).build().unwrap();
    let things = client
        .api()
        .list_things()
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(things[0].name.as_deref(), Some("modbus"));
    assert_eq!(server.count("/things"), 2);
    assert_eq!(sleep.waits().len(), 1);
}

#[tokio::test]
async fn a_truncated_body_that_persists_is_a_transport_error() {
    let (server, sleep) = scripted().await;
    server.always("POST", TOKEN, Reply::token("tok"));
    server.always(
        "GET",
        DEV,
        Reply::Truncated {
            status: 200,
            body: "{".into(),
            claimed: 50,
        },
    );
    let client = client(server.base_url(), &sleep)
        .retry_policy(RetryPolicy::default().with_max_attempts(2))
        .build()
        .unwrap();
    let err = client.device("dev-1").await.unwrap_err();
    let Error::Transport(t) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(t.attempts, 2);
    assert!(err.is_retryable());
}

#[tokio::test]
async fn an_html_error_page_is_an_api_error_with_its_status() {
    let (server, sleep) = scripted().await;
    server.always("POST", TOKEN, Reply::token("tok"));
    server.always(
        "GET",
        DEV,
        Reply::Http {
            status: 500,
            headers: vec![("content-type".into(), "text/html".into())],
            body: "<html><body>Internal Server Error</body></html>".into(),
        },
    );
    let client = client(server.base_url(), &sleep)
        .retry_policy(RetryPolicy::none())
        .build()
        .unwrap();
    let err = client.device("dev-1").await.unwrap_err();
    let Error::Api(api) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(api.status.as_u16(), 500);
    assert!(api.body.starts_with("<html>"));
    assert_eq!(api.message, None);
}

#[tokio::test]
async fn an_error_body_is_quoted_at_most_1_kib() {
    let (server, sleep) = scripted().await;
    server.always("POST", TOKEN, Reply::token("tok"));
    server.always("GET", DEV, Reply::json(400, "é".repeat(10_000)));
    let client = client(server.base_url(), &sleep).build().unwrap();
    let Error::Api(api) = client.device("dev-1").await.unwrap_err() else {
        panic!()
    };
    assert!(api.body.len() <= leapcraft_ext::MAX_SNIPPET && api.body.len() > 1000);
    assert!(api.body.chars().all(|c| c == 'é'));
}

#[tokio::test]
async fn a_malformed_body_is_a_decode_error_with_the_path() {
    let (server, sleep) = scripted().await;
    server.always("POST", TOKEN, Reply::token("tok"));
    server.always(
        "GET",
        DEV,
        Reply::json(200, r#"{"serial":"x","topology_id":"nine"}"#),
    );
    let client = client(server.base_url(), &sleep).build().unwrap();
    let err = client.device("dev-1").await.unwrap_err();
    let Error::Decode(decode) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(decode.operation, "get_device");
    assert_eq!(decode.path, "topology_id");
    assert!(decode.body.contains("nine"));
    assert_eq!(server.count(DEV), 1, "a decode error is not retried");
}

#[tokio::test]
async fn a_hanging_server_times_out_per_attempt_and_overall() {
    let (server, sleep) = scripted().await;
    server.always("POST", TOKEN, Reply::token("tok"));
    server.always("GET", DEV, Reply::Hang);
    let client = client(server.base_url(), &sleep)
        .attempt_timeout(Duration::from_millis(50))
        .overall_timeout(Duration::from_millis(400))
        .retry_policy(
            RetryPolicy::default()
                .with_max_attempts(1000)
                .with_initial_backoff(Duration::ZERO),
        )
        .build()
        .unwrap();
    let err = client.device("dev-1").await.unwrap_err();
    let Error::Timeout {
        operation,
        attempts,
    } = err
    else {
        panic!("{err:?}")
    };
    assert_eq!(operation, "get_device");
    assert!((1..1000).contains(&attempts), "{attempts}");
    assert!(err_is_retryable_timeout());
}

#[tokio::test]
async fn a_body_that_stalls_times_out_per_attempt_and_is_retried() {
    let (server, sleep) = scripted().await;
    server.always("POST", TOKEN, Reply::token("tok"));
    server.push(
        "GET",
        DEV,
        [Reply::Stall {
            status: 200,
            body: r#"{"serial":"#.into(),
            claimed: 500,
        }],
    );
    server.always("GET", DEV, Reply::json(200, DEVICE));
    let client = client(server.base_url(), &sleep)
        .attempt_timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let device = client.device("dev-1").await.unwrap();
    assert_eq!(device.serial.as_deref(), Some("LC-2026-X88"));
    assert_eq!(server.count(DEV), 2);
    assert_eq!(sleep.waits().len(), 1);

    // A body that always stalls: a timeout, after every attempt the policy allows.
    server.always(
        "GET",
        DEV,
        Reply::Stall {
            status: 200,
            body: "[".into(),
            claimed: 50,
        },
    );
    let client = leapcraft_test_kit::client(server.base_url(), &sleep)
        .attempt_timeout(Duration::from_millis(50))
        .retry_policy(RetryPolicy::default().with_max_attempts(3))
        .build()
        .unwrap();
    let err = client.device("dev-1").await.unwrap_err();
    assert!(matches!(err, Error::Timeout { attempts: 3, .. }), "{err:?}");
}

/// A server that never completes a connection: a listener whose accept queue (backlog 0) is
/// already full, so the kernel drops further connection attempts.
fn unconnectable_server() -> (socket2::Socket, Vec<std::net::TcpStream>, String) {
    use socket2::{Domain, Socket, Type};
    let listener = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    listener
        .bind(
            &"127.0.0.1:0"
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
        )
        .unwrap();
    listener.listen(0).unwrap();
    let addr = listener.local_addr().unwrap().as_socket().unwrap();
    // Fill the queue; the fillers' own outcome does not matter.
    let fillers = (0..2)
        .filter_map(|_| {
            std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()
        })
        .collect();
    (listener, fillers, format!("http://{addr}/v1"))
}

#[tokio::test]
async fn a_connection_that_cannot_be_made_times_out_at_the_connect_timeout() {
    let (_listener, _fillers, base) = unconnectable_server();
    let client = Client::builder()
        .api_key(KEY)
        .base_url(base)
        .connect_timeout(Duration::from_millis(100))
        // Only the connect timeout can end this call: no attempt or overall timeout.
        .attempt_timeout(None)
        .overall_timeout(None)
        .retry_policy(RetryPolicy::none())
        .build()
        .unwrap();
    // A guard against a hang if the connect timeout were not applied (not a speed check).
    let outcome = tokio::time::timeout(Duration::from_secs(20), client.device("dev-1")).await;
    let err = outcome
        .expect("the connect timeout ended the call")
        .unwrap_err();
    // The token exchange is the first request: it cannot connect, so the call fails with
    // the exchange's timeout.
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert!(err.is_retryable());
}

fn err_is_retryable_timeout() -> bool {
    Error::Timeout {
        operation: "x",
        attempts: 1,
    }
    .is_retryable()
}

#[tokio::test]
async fn no_retry_is_started_past_the_overall_deadline() {
    let (server, sleep) = scripted().await;
    server.always("POST", TOKEN, Reply::token("tok"));
    server.always("GET", DEV, Reply::status(503).header("retry-after", "60"));
    let client = client(server.base_url(), &sleep)
        .overall_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let Error::Api(api) = client.device("dev-1").await.unwrap_err() else {
        panic!()
    };
    assert_eq!(api.attempts, 1);
    assert!(
        sleep.waits().is_empty(),
        "a 60 s wait would cross the 5 s deadline"
    );
}

#[tokio::test]
async fn unsendable_ids_are_invalid_input_before_any_request() {
    let (server, sleep) = scripted().await;
    let client = client(server.base_url(), &sleep).build().unwrap();
    assert!(matches!(
        client.device("").await,
        Err(Error::InvalidInput(_))
    ));
    assert_eq!(server.count(TOKEN), 0);
}

#[tokio::test]
async fn the_generated_client_escape_hatch_has_auth_and_retries() {
    let (server, sleep) = scripted().await;
    server.always("POST", TOKEN, Reply::token("tok"));
    server.push("GET", "/things", [Reply::status(503), Reply::Drop]);
    server.always(
        "GET",
        "/things",
        Reply::json(200, r#"[{"name":"bacnet","parameters":[]}]"#),
    );
    let client = client(server.base_url(), &sleep).build().unwrap();
    let things = client
        .api()
        .list_things()
        .limit(-1)
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(things[0].name.as_deref(), Some("bacnet"));
    let seen = server.seen("/things");
    assert_eq!(seen.len(), 3);
    assert!(
        seen.iter()
            .all(|s| s.header("authorization") == Some("Bearer tok"))
    );
    assert_eq!(seen[2].target, "/v1/things?limit=-1");
}

/// Three tokens in turn; `DEV` answers tok-1 with a 503 (so it works), then refuses it (it
/// expired), answers tok-2 with a 503, then refuses it, then serves the device with tok-3:
/// five attempts.
fn script_a_token_that_expires_during_retries(server: &Script) {
    server.push(
        "POST",
        TOKEN,
        [
            Reply::token("tok-1"),
            Reply::token("tok-2"),
            Reply::token("tok-3"),
        ],
    );
    server.push(
        "GET",
        DEV,
        [
            Reply::status(503),
            Reply::status(401),
            Reply::status(503),
            Reply::status(401),
        ],
    );
    server.always("GET", DEV, Reply::json(200, DEVICE));
}

fn five_attempts() -> RetryPolicy {
    RetryPolicy::default().with_max_attempts(5)
}

#[tokio::test]
async fn through_the_escape_hatch_a_token_that_worked_and_expires_is_refreshed_again() {
    let (server, sleep) = scripted().await;
    script_a_token_that_expires_during_retries(&server);
    let client = client(server.base_url(), &sleep)
        .retry_policy(five_attempts())
        .build()
        .unwrap();
    let device = client
        .api()
        .get_device()
        .physical_id("dev-1")
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(device.serial.as_deref(), Some("LC-2026-X88"));
    assert_eq!(server.count(TOKEN), 3);
    assert_eq!(server.count(DEV), 5);
}

#[tokio::test]
async fn a_token_that_worked_and_expires_during_the_retries_is_refreshed_again() {
    let (server, sleep) = scripted().await;
    script_a_token_that_expires_during_retries(&server);
    let client = client(server.base_url(), &sleep)
        .retry_policy(five_attempts())
        .build()
        .unwrap();

    client.device("dev-1").await.unwrap();
    let auth: Vec<_> = server
        .seen(DEV)
        .iter()
        .map(|s| s.header("authorization").unwrap().to_owned())
        .collect();
    assert_eq!(
        auth,
        [
            "Bearer tok-1",
            "Bearer tok-1",
            "Bearer tok-2",
            "Bearer tok-2",
            "Bearer tok-3"
        ]
    );
    assert_eq!(server.count(TOKEN), 3);
    assert_eq!(sleep.waits().len(), 2, "a refresh resends at once");
}

#[tokio::test]
async fn with_no_retries_a_refused_token_is_still_refreshed() {
    let (server, sleep) = scripted().await;
    server.push(
        "POST",
        TOKEN,
        [Reply::token("tok-1"), Reply::token("tok-2")],
    );
    server.push("GET", DEV, [Reply::json(200, DEVICE), Reply::status(401)]);
    server.always("GET", DEV, Reply::json(200, DEVICE));
    let client = client(server.base_url(), &sleep)
        .retry_policy(RetryPolicy::none())
        .build()
        .unwrap();
    client.device("dev-1").await.unwrap();
    // "No retries" is about failures; a refresh is not one.
    client.device("dev-1").await.unwrap();
    assert_eq!(server.count(TOKEN), 2, "the refused token was replaced");
    assert_eq!(
        server.seen(DEV).last().unwrap().header("authorization"),
        Some("Bearer tok-2")
    );
    assert_eq!(client.stats().retries, 0);
    assert!(sleep.waits().is_empty(), "a refresh resends at once");
}
