//! The API key and the token never show in Debug or Display of the client and of every kind
//! of error (logs: `logs.rs`).

use leapcraft_ext::{Client, Error, RetryPolicy};
use leapcraft_test_kit::{KEY, RecordingSleep, Reply, Script, client};

const TOKEN_1: &str = "TOKEN-one-7c1d2e";
const TOKEN_2: &str = "TOKEN-two-0a9b8c";
const TOKEN: &str = "/auth/client/token";
const DEV: &str = "/devices/dev-1";

fn assert_clean(what: &str, text: &str) {
    for secret in [KEY, TOKEN_1, TOKEN_2] {
        assert!(!text.contains(secret), "{what} shows a secret: {text}");
    }
}

#[tokio::test]
async fn no_secret_in_debug_or_display_of_clients_and_errors() {
    let (server, sleep) = (Script::start().await, RecordingSleep::default());
    // The server echoes the secrets back in its error bodies: they must still not show.
    server.push("POST", TOKEN, [Reply::token(TOKEN_1)]);
    server.always(
        "POST",
        TOKEN,
        Reply::json(401, format!(r#"{{"message":"bad key {KEY}"}}"#)),
    );
    server.push(
        "GET",
        DEV,
        [
            Reply::json(404, format!(r#"{{"message":"no device for {TOKEN_1}"}}"#)),
            Reply::json(200, format!(r#"{{"serial": 5, "token": "{TOKEN_1}"}}"#)),
            Reply::json(401, format!(r#"{{"message":"{TOKEN_1} expired"}}"#)),
        ],
    );
    let builder = client(server.base_url(), &sleep).retry_policy(RetryPolicy::none());
    assert_clean("builder", &format!("{builder:?}"));
    let client = builder.build().unwrap();
    assert_clean("client", &format!("{client:?}"));

    let mut errors = Vec::new();
    errors.push(client.device("dev-1").await.unwrap_err()); // API error
    errors.push(client.device("dev-1").await.unwrap_err()); // decode error
    errors.push(client.device("dev-1").await.unwrap_err()); // key rejected on refresh
    errors.push(Client::builder().build().unwrap_err()); // invalid input
    let bad_exchange = Script::start().await;
    bad_exchange.always(
        "POST",
        TOKEN,
        Reply::json(200, format!(r#"{{"token": "{TOKEN_2}", "type": 5}}"#)),
    );
    bad_exchange.always("GET", DEV, Reply::Drop);
    let other = leapcraft_test_kit::client(bad_exchange.base_url(), &sleep)
        .build()
        .unwrap();
    errors.push(other.device("dev-1").await.unwrap_err()); // the exchange's body is malformed
    let dropped = Script::start().await;
    dropped.always("POST", TOKEN, Reply::token(TOKEN_2));
    dropped.always("GET", DEV, Reply::Drop);
    let other = leapcraft_test_kit::client(dropped.base_url(), &sleep)
        .retry_policy(RetryPolicy::none())
        .build()
        .unwrap();
    errors.push(other.device("dev-1").await.unwrap_err()); // transport error

    let kinds: Vec<&str> = errors
        .iter()
        .map(|e| match e {
            Error::Api(_) => "api",
            Error::Decode(_) => "decode",
            Error::Auth(_) => "auth",
            Error::InvalidInput(_) => "invalid",
            Error::Transport(_) => "transport",
            Error::Timeout { .. } => "timeout",
            _ => "other",
        })
        .collect();
    assert_eq!(
        kinds,
        ["api", "decode", "auth", "invalid", "decode", "transport"]
    );
    for error in &errors {
        assert_clean("error Display", &error.to_string());
        assert_clean("error Debug", &format!("{error:?}"));
        let mut source = std::error::Error::source(error);
        while let Some(s) = source {
            assert_clean("error source", &format!("{s} {s:?}"));
            source = s.source();
        }
    }
    let Error::Api(api) = &errors[0] else {
        unreachable!()
    };
    assert_eq!(api.message.as_deref(), Some("no device for [redacted]"));
}
