//! The rate limit: a burst, then `429` with the configured `Retry-After` until tokens come
//! back; the token exchange counts; the limit changes while serving. On tokio's paused
//! clock, which the bucket runs on: time moves only when the test moves it.

use std::time::Duration;

use crate::common::*;
use leapcraft_fake::{FakeServer, RateLimit, RetryAfter};

async fn limited(limit: RateLimit) -> FakeServer {
    FakeServer::builder()
        .rate_limit(limit)
        .start()
        .await
        .unwrap()
}

/// The statuses of `n` requests for the thing list, one after the other.
async fn statuses(fake: &FakeServer, token: &str, n: usize) -> Vec<u16> {
    let mut seen = Vec::new();
    for _ in 0..n {
        seen.push(get(fake, token, "/things").await.status().as_u16());
    }
    seen
}

#[tokio::test(start_paused = true)]
async fn a_burst_then_429_until_tokens_come_back() {
    let fake = limited(RateLimit::per_second(10.0).with_burst(3)).await;
    // The exchange takes the first token.
    let t = token(&fake).await;
    assert_eq!(statuses(&fake, &t, 3).await, [200, 200, 429]);
    let refused = get(&fake, &t, "/things").await;
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "1");
    let body: serde_json::Value = refused.json().await.unwrap();
    assert!(body["message"].is_string());

    tokio::time::advance(Duration::from_millis(100)).await;
    assert_eq!(statuses(&fake, &t, 2).await, [200, 429]);
    tokio::time::advance(Duration::from_secs(60)).await;
    assert_eq!(
        statuses(&fake, &t, 4).await,
        [200, 200, 200, 429],
        "the burst, no more"
    );

    let c = fake.counters();
    assert_eq!(c.too_many_requests, 4);
    assert_eq!(c.faults.total(), 0, "a limit is not a fault");
    assert_eq!(
        c.requests.list_things, 10,
        "refused requests are counted too"
    );
    assert_eq!(c.requests.get_access_token, 1);
}

#[tokio::test(start_paused = true)]
async fn the_token_exchange_is_limited_too() {
    let fake = limited(RateLimit::per_second(1.0).with_burst(1)).await;
    assert_eq!(exchange(&fake, fake.api_key()).await.status(), 200);
    assert_eq!(exchange(&fake, fake.api_key()).await.status(), 429);
    assert_eq!(fake.counters().token_exchanges, 1);
    assert_eq!(fake.counters().too_many_requests, 1);
}

#[tokio::test(start_paused = true)]
async fn retry_after_in_seconds_as_a_date_or_absent() {
    let fake = limited(
        RateLimit::per_second(1.0)
            .with_burst(1)
            .with_retry_after(RetryAfter::Seconds(7)),
    )
    .await;
    let t = token(&fake).await;
    let refused = get(&fake, &t, "/things").await;
    assert_eq!(refused.headers()["retry-after"], "7");

    fake.set_rate_limit(Some(
        RateLimit::per_second(1.0)
            .with_burst(1)
            .with_retry_after(RetryAfter::Date(30)),
    ))
    .unwrap();
    let refused = get(&fake, &t, "/things").await;
    assert_eq!(refused.status(), 429);
    let date = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .to_owned();
    let at = chrono::DateTime::parse_from_rfc2822(&date.replace("GMT", "+0000")).unwrap();
    let ahead = at.timestamp() - chrono::Utc::now().timestamp();
    assert!((29..=31).contains(&ahead), "{date}: {ahead} s ahead");

    fake.set_rate_limit(Some(
        RateLimit::per_second(1.0)
            .with_burst(1)
            .with_retry_after(RetryAfter::Absent),
    ))
    .unwrap();
    let refused = get(&fake, &t, "/things").await;
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().get("retry-after").is_none());
}

#[tokio::test(start_paused = true)]
async fn the_limit_changes_while_serving() {
    let fake = limited(RateLimit::per_second(2.0).with_burst(1)).await;
    let t = token(&fake).await;
    assert_eq!(statuses(&fake, &t, 1).await, [429]);
    tokio::time::advance(Duration::from_millis(500)).await;
    assert_eq!(statuses(&fake, &t, 2).await, [200, 429]);

    // Slower: half a second is no longer enough.
    fake.set_rate_limit(Some(RateLimit::per_second(1.0).with_burst(1)))
        .unwrap();
    tokio::time::advance(Duration::from_millis(500)).await;
    assert_eq!(statuses(&fake, &t, 1).await, [429]);
    tokio::time::advance(Duration::from_millis(500)).await;
    assert_eq!(statuses(&fake, &t, 1).await, [200]);

    // Faster, with a bigger burst: it fills from now on.
    fake.set_rate_limit(Some(RateLimit::per_second(100.0).with_burst(5)))
        .unwrap();
    assert_eq!(fake.rate_limit().map(|l| l.per_second), Some(100.0));
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(statuses(&fake, &t, 6).await, [200, 200, 200, 200, 200, 429]);

    fake.set_rate_limit(None).unwrap();
    assert_eq!(statuses(&fake, &t, 20).await, [200; 20]);
    assert!(
        fake.set_rate_limit(Some(RateLimit::per_second(0.0)))
            .is_err()
    );
}

#[tokio::test]
async fn an_unusable_limit_is_refused_at_start() {
    let err = FakeServer::builder()
        .rate_limit(RateLimit::per_second(-3.0))
        .start()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("rate limit"), "{err}");
}
