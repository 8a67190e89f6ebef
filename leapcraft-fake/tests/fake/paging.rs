//! Paging and parameter validation, exactly as documented.

use crate::common::*;
use leapcraft_fake::{Churn, FakeServer, NotificationLimitPolicy};

#[tokio::test]
async fn devices_exact_multiple_of_the_page_size() {
    let fake = FakeServer::builder().devices(30).start().await.unwrap();
    let t = token(&fake).await;
    let mut all = Vec::new();
    for page in 1..=3 {
        let v = get_json(&fake, &t, &format!("/devices?limit=10&page={page}")).await;
        assert_eq!(v.as_array().unwrap().len(), 10);
        all.extend(ids(&v));
    }
    let past = get_json(&fake, &t, "/devices?limit=10&page=4").await;
    assert_eq!(past, serde_json::json!([]));
    let expected: Vec<String> = (0..30).map(|i| fake.dataset().physical_id(i)).collect();
    assert_eq!(all, expected);
}

#[tokio::test]
async fn devices_short_last_page_and_defaults() {
    let fake = FakeServer::builder().devices(25).start().await.unwrap();
    let t = token(&fake).await;
    let p3 = get_json(&fake, &t, "/devices?limit=10&page=3").await;
    assert_eq!(
        ids(&p3),
        (20..25)
            .map(|i| fake.dataset().physical_id(i))
            .collect::<Vec<_>>()
    );
    // Default limit 100 and page 1.
    assert_eq!(ids(&get_json(&fake, &t, "/devices").await).len(), 25);
    // Page 1 is the first page.
    let p1 = get_json(&fake, &t, "/devices?limit=2").await;
    assert_eq!(p1, get_json(&fake, &t, "/devices?limit=2&page=1").await);
    assert_eq!(ids(&p1)[0], fake.dataset().physical_id(0));
}

#[tokio::test]
async fn devices_limit_minus_one_returns_everything_and_ignores_page() {
    let fake = FakeServer::builder().devices(5_000).start().await.unwrap();
    let t = token(&fake).await;
    // 5,000 devices: large enough to take the streamed path.
    let all = ids(&get_json(&fake, &t, "/devices?limit=-1").await);
    assert_eq!(all.len(), 5_000);
    let unique: std::collections::HashSet<_> = all.iter().collect();
    assert_eq!(unique.len(), 5_000);
    assert_eq!(all[4_999], fake.dataset().physical_id(4_999));
    let with_page = ids(&get_json(&fake, &t, "/devices?limit=-1&page=7").await);
    assert_eq!(with_page, all);
}

#[tokio::test]
async fn devices_invalid_parameters_are_400() {
    let fake = FakeServer::start_default().await.unwrap();
    let t = token(&fake).await;
    for q in [
        "page=0",
        "page=-1",
        "limit=0",
        "limit=-2",
        "limit=ten",
        "page=1.5",
        "limit=",
        "page=%20",
    ] {
        let msg = get_error(&fake, &t, &format!("/devices?{q}"), 400).await;
        assert!(!msg.is_empty());
    }
    assert_eq!(fake.counters().bad_requests, 8);
}

#[tokio::test]
async fn notifications_limit_offset_cap_and_filter() {
    let fake = FakeServer::builder()
        .devices(10)
        .notifications(120)
        .start()
        .await
        .unwrap();
    let t = token(&fake).await;
    let all = fake.notifications();
    assert_eq!(all.len(), 120);
    // Default 20, newest first.
    let first = get_json(&fake, &t, "/notifications").await;
    let first = first.as_array().unwrap();
    assert_eq!(first.len(), 20);
    assert_eq!(first[0]["id"], all[119].id);
    assert_eq!(first[19]["id"], all[100].id);
    // Walk all pages of 50 with offset.
    let mut seen = Vec::new();
    for offset in (0..).step_by(50) {
        let page = get_json(
            &fake,
            &t,
            &format!("/notifications?limit=50&offset={offset}"),
        )
        .await;
        let page = page.as_array().unwrap().clone();
        if page.is_empty() {
            break;
        }
        seen.extend(page.iter().map(|n| n["id"].as_i64().unwrap()));
    }
    let mut expected: Vec<i64> = all.iter().map(|n| n.id).collect();
    expected.reverse();
    assert_eq!(seen, expected);
    // The cap: 50 is fine, 51 is a 400.
    get_error(&fake, &t, "/notifications?limit=51", 400).await;
    get_error(&fake, &t, "/notifications?limit=0", 400).await;
    get_error(&fake, &t, "/notifications?offset=-1", 400).await;
    get_error(&fake, &t, "/notifications?offset=x", 400).await;
    // Filter by device.
    let device = all[0].physical_id.clone().unwrap();
    let mine = get_json(
        &fake,
        &t,
        &format!(
            "/notifications?limit=50&physical_id={}",
            device.replace(':', "%3A")
        ),
    )
    .await;
    let expected = all
        .iter()
        .filter(|n| n.physical_id.as_deref() == Some(device.as_str()))
        .count()
        .min(50);
    assert_eq!(mine.as_array().unwrap().len(), expected);
    assert!(
        mine.as_array()
            .unwrap()
            .iter()
            .all(|n| n["physical_id"] == device.as_str())
    );
    assert_eq!(
        get_json(&fake, &t, "/notifications?physical_id=nope").await,
        serde_json::json!([])
    );
}

#[tokio::test]
async fn notification_cap_can_clamp_instead() {
    let fake = FakeServer::builder()
        .notification_limit_policy(NotificationLimitPolicy::Clamp)
        .start()
        .await
        .unwrap();
    let t = token(&fake).await;
    let v = get_json(&fake, &t, "/notifications?limit=500").await;
    assert_eq!(v.as_array().unwrap().len(), 50);
}

#[tokio::test]
async fn things_limit() {
    let fake = FakeServer::builder().things(14).start().await.unwrap();
    let t = token(&fake).await;
    assert_eq!(
        get_json(&fake, &t, "/things")
            .await
            .as_array()
            .unwrap()
            .len(),
        10
    );
    assert_eq!(
        get_json(&fake, &t, "/things?limit=3")
            .await
            .as_array()
            .unwrap()
            .len(),
        3
    );
    let all = get_json(&fake, &t, "/things?limit=-1").await;
    assert_eq!(all.as_array().unwrap().len(), 14);
    assert_eq!(all[0]["name"], "bacnet");
    assert_eq!(all[0]["parameters"][6]["payload"], "p6");
    get_error(&fake, &t, "/things?limit=0", 400).await;
    get_error(&fake, &t, "/things?limit=abc", 400).await;
}

#[tokio::test]
async fn notifications_added_each_request_shift_the_list_between_pages() {
    let fake = FakeServer::builder()
        .notifications(60)
        .churn(Churn::AddEachRequest)
        .start()
        .await
        .unwrap();
    let t = token(&fake).await;
    let first = get_json(&fake, &t, "/notifications?limit=50&offset=0").await;
    let second = get_json(&fake, &t, "/notifications?limit=50&offset=50").await;
    let id = |v: &serde_json::Value, i: usize| v[i]["id"].as_i64().unwrap();
    assert_eq!(fake.notifications().len(), 62, "one raised per request");
    assert_eq!(
        id(&second, 0),
        id(&first, 49),
        "the newest raised one pushed the last item of page 1 onto page 2"
    );
}
