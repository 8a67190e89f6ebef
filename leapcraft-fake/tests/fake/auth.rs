//! Token exchange and token expiry.

use std::time::Duration;

use crate::common::*;
use leapcraft_fake::FakeServer;

#[tokio::test]
async fn exchange_accepts_configured_keys_only() {
    let fake = FakeServer::builder()
        .valid_key("k1")
        .valid_key("k2")
        .start()
        .await
        .unwrap();
    assert_eq!(fake.api_key(), "k1");
    let a = token(&fake).await;
    assert_eq!(exchange(&fake, "k2").await.status(), 200);
    let bad = exchange(&fake, "demo-key").await;
    assert_eq!(bad.status(), 401);
    let body: serde_json::Value = bad.json().await.unwrap();
    assert!(body["message"].is_string());
    // Missing field → 400.
    let resp = client()
        .post(format!("{}/auth/client/token", fake.base_url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("key=k1")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    // Fresh tokens each time.
    assert_ne!(a, token(&fake).await);
    let c = fake.counters();
    assert_eq!(c.requests.get_access_token, 5);
    assert_eq!(c.token_exchanges, 3);
    assert_eq!(c.unauthorized, 1);
}

#[tokio::test]
async fn missing_garbled_or_unknown_authorization_is_401() {
    let fake = FakeServer::start_default().await.unwrap();
    let url = format!("{}/devices", fake.base_url());
    let resp = client().get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert!(body["message"].is_string());
    for h in [
        "Basic abc",
        "Bearer",
        "Bearer ",
        "garbage",
        "Bearer not-a-token",
    ] {
        let resp = client()
            .get(&url)
            .header("authorization", h)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401, "{h}");
    }
    assert_eq!(fake.counters().unauthorized, 6);
}

#[tokio::test]
async fn tokens_expire_after_n_uses() {
    let fake = FakeServer::builder()
        .token_max_uses(3)
        .start()
        .await
        .unwrap();
    let t = token(&fake).await;
    for _ in 0..3 {
        get_json(&fake, &t, "/things").await;
    }
    let msg = get_error(&fake, &t, "/things", 401).await;
    assert!(msg.contains("expired"), "{msg}");
    // Still expired, and a new token works.
    get_error(&fake, &t, "/things", 401).await;
    let t2 = token(&fake).await;
    get_json(&fake, &t2, "/things").await;
    // 4xx responses use the token too; a 404 is the third use here.
    get_error(&fake, &t2, "/devices/nope", 404).await;
    get_json(&fake, &t2, "/things").await;
    get_error(&fake, &t2, "/things", 401).await;
}

#[tokio::test]
async fn tokens_expire_after_ttl_on_the_fake_clock() {
    let fake = FakeServer::builder()
        .token_ttl(Duration::from_secs(60))
        .start()
        .await
        .unwrap();
    let t = token(&fake).await;
    get_json(&fake, &t, "/things").await;
    fake.advance_clock(Duration::from_secs(30));
    get_json(&fake, &t, "/things").await;
    let fresh = token(&fake).await;
    fake.advance_clock(Duration::from_secs(31));
    get_error(&fake, &t, "/things", 401).await;
    get_json(&fake, &fresh, "/things").await;
}

#[tokio::test]
async fn expire_tokens_expires_every_token_at_once() {
    let fake = FakeServer::start_default().await.unwrap();
    let (a, b) = (token(&fake).await, token(&fake).await);
    fake.expire_tokens();
    get_error(&fake, &a, "/topologies", 401).await;
    get_error(&fake, &b, "/topologies", 401).await;
    let c = token(&fake).await;
    get_json(&fake, &c, "/topologies").await;
}
