//! What a real account does that a fixed dataset does not: a key revoked, lists that change
//! while paged, malformed records, oversized pages; and the ids the docs use.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::common::*;
use leapcraft_fake::{Churn, Corruption, FakeServer};
use serde_json::Value;

#[tokio::test]
async fn the_key_is_refused_after_n_exchanges_while_issued_tokens_still_work() {
    let fake = FakeServer::builder()
        .revoke_key_after_exchanges(3)
        .start()
        .await
        .unwrap();
    let mut tokens = Vec::new();
    for _ in 0..3 {
        tokens.push(token(&fake).await);
    }
    let refused = exchange(&fake, fake.api_key()).await;
    assert_eq!(refused.status(), 401);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["message"], "API key revoked");
    for t in &tokens {
        get_json(&fake, t, "/devices?limit=1").await;
    }
    assert_eq!(fake.counters().token_exchanges, 3);

    let fake = FakeServer::start_default().await.unwrap();
    let t = token(&fake).await;
    fake.revoke_key();
    assert_eq!(exchange(&fake, fake.api_key()).await.status(), 401);
    get_json(&fake, &t, "/devices?limit=1").await;
}

/// Pages of `limit` devices until an empty one.
async fn page_through(fake: &FakeServer, token: &str, limit: usize) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    for page in 1.. {
        let v = get_json(fake, token, &format!("/devices?limit={limit}&page={page}")).await;
        let ids = ids(&v);
        if ids.is_empty() {
            return pages;
        }
        pages.push(ids);
    }
    unreachable!()
}

#[tokio::test]
async fn removing_the_first_device_after_each_page_shifts_the_list_under_the_pages() {
    let fake = FakeServer::builder()
        .devices(30)
        .churn(Churn::RemoveFirstEachPage)
        .start()
        .await
        .unwrap();
    let t = token(&fake).await;
    let all: Vec<String> = (0..30).map(|i| fake.dataset().physical_id(i)).collect();
    let pages = page_through(&fake, &t, 10).await;
    assert_eq!(pages[0], all[..10]);
    // Device 0 went after page 1: page 2 starts at device 11, and device 10 is never listed.
    assert_eq!(pages[1], all[11..21]);
    let listed: HashSet<&String> = pages.iter().flatten().collect();
    assert!(
        !listed.contains(&all[10]),
        "a device slipped under the page boundary"
    );
    // Three pages and the empty one: four devices deleted, and unknown from then on.
    assert_eq!(fake.device_ids(), all[4..]);
    get_error(&fake, &t, &format!("/devices/{}", all[0]), 404).await;
    get_error(
        &fake,
        &t,
        &format!("/telemetry/{}?type=latest", all[0]),
        404,
    )
    .await;
    get_json(&fake, &t, &format!("/devices/{}", all[4])).await;
}

#[tokio::test]
async fn each_list_request_adds_a_device_and_a_notification_at_the_front() {
    let fake = FakeServer::builder()
        .devices(20)
        .notifications(10)
        .churn(Churn::AddEachRequest)
        .start()
        .await
        .unwrap();
    let t = token(&fake).await;
    let first = ids(&get_json(&fake, &t, "/devices?limit=10&page=1").await);
    let second = ids(&get_json(&fake, &t, "/devices?limit=10&page=2").await);
    let dataset: Vec<String> = (0..20).map(|i| fake.dataset().physical_id(i)).collect();
    assert!(!dataset.contains(&first[0]), "a new device comes first");
    assert_eq!(first[1..], dataset[..9]);
    // A second new one pushed the list right: the last of page 1 is the first of page 2.
    assert_eq!(second[0], first[9]);
    assert_eq!(fake.device_ids().len(), 22);
    assert_eq!(fake.device_ids()[1], first[0]);
    // The new device is a device like any other.
    let details = get_json(&fake, &t, &format!("/devices/{}", first[0])).await;
    assert_eq!(details["physical_id"], first[0].as_str());
    let reading = get_json(&fake, &t, &format!("/telemetry/{}?type=latest", first[0])).await;
    assert_eq!(reading["physical_id"], first[0].as_str());

    let before = fake.notifications().len();
    let page = get_json(&fake, &t, "/notifications?limit=5").await;
    let all = fake.notifications();
    assert_eq!(all.len(), before + 1);
    assert_eq!(page[0]["id"], all.last().unwrap().id, "the new one first");
}

#[tokio::test]
async fn deleted_notifications_are_gone_and_their_ids_never_come_back() {
    let fake = FakeServer::builder()
        .devices(10)
        .notifications(120)
        .start()
        .await
        .unwrap();
    let t = token(&fake).await;
    let newest = fake.notifications().last().unwrap().id;
    fake.delete_newest_notifications(50);
    let fresh = fake.push_generated_notification();
    assert_eq!(fresh.id, newest + 1, "ids are never reused");
    let page = get_json(&fake, &t, "/notifications?limit=50").await;
    let page: Vec<i64> = page
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_i64().unwrap())
        .collect();
    assert_eq!(page[0], fresh.id);
    assert_eq!(page[1], newest - 50, "the 50 newest went");
    assert_eq!(fake.notifications().len(), 71);

    let fake = FakeServer::builder()
        .notifications(10)
        .churn(Churn::RemoveFirstEachPage)
        .start()
        .await
        .unwrap();
    let t = token(&fake).await;
    let newest = fake.notifications().last().unwrap().id;
    let page = get_json(&fake, &t, "/notifications?limit=3").await;
    assert_eq!(page[0]["id"], newest);
    assert_eq!(fake.notifications().last().unwrap().id, newest - 1);
}

#[tokio::test]
async fn one_malformed_record_among_others() {
    let fake = FakeServer::builder()
        .devices(5)
        .corrupt_device(1, Corruption::InvalidUtf8)
        .corrupt_device(2, Corruption::LoneSurrogate)
        .corrupt_device(3, Corruption::Unreadable)
        .start()
        .await
        .unwrap();
    let t = token(&fake).await;
    let body = get(&fake, &t, "/devices").await.bytes().await.unwrap();
    assert!(std::str::from_utf8(&body).is_err(), "a raw 0xFF byte");
    assert!(body.windows(4).any(|w| w == b" \xFF B"));
    assert!(body.windows(8).any(|w| w == br"\ud800 B"));
    // Lossily decoded, the list holds every other device whole.
    let text = String::from_utf8_lossy(&body).replace(r"\ud800", "?");
    let list: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(list.len(), 5);
    let d = fake.dataset();
    for i in [0, 4] {
        assert_eq!(list[i], serde_json::to_value(d.device(i)).unwrap());
    }
    assert_eq!(list[1]["physical_id"], d.physical_id(1).as_str());
    assert_eq!(list[2]["physical_id"], d.physical_id(2).as_str());
    assert_eq!(list[3]["physical_id"], 4711, "unreadable as a device");
    // The device's own record is malformed too; its readings are not.
    let one = get(&fake, &t, &format!("/devices/{}", d.physical_id(1))).await;
    assert!(std::str::from_utf8(&one.bytes().await.unwrap()).is_err());
    get_json(
        &fake,
        &t,
        &format!("/telemetry/{}?type=latest", d.physical_id(3)),
    )
    .await;
    fake.corrupt_device(1, None);
    get_json(&fake, &t, &format!("/devices/{}", d.physical_id(1))).await;
}

#[tokio::test]
async fn an_oversized_page_whatever_the_limit() {
    const BYTES: u64 = 4 << 20;
    let fake = FakeServer::builder()
        .devices(10)
        .oversized_device_page(BYTES)
        .start()
        .await
        .unwrap();
    let t = token(&fake).await;
    let body = get(&fake, &t, "/devices?limit=1")
        .await
        .bytes()
        .await
        .unwrap();
    assert!(body.len() as u64 >= BYTES, "{} bytes", body.len());
    assert!(
        (body.len() as u64) < BYTES + (1 << 20),
        "about the size asked"
    );
    let list: Vec<Value> = serde_json::from_slice(&body).unwrap();
    let unique: HashSet<&str> = list
        .iter()
        .map(|d| d["physical_id"].as_str().unwrap())
        .collect();
    assert!(list.len() > 10_000, "{}", list.len());
    assert_eq!(unique.len(), list.len(), "distinct devices");
    fake.set_oversized_device_page(None);
    assert_eq!(ids(&get_json(&fake, &t, "/devices?limit=1").await).len(), 1);
}

/// The ids in `text`: MAC addresses (`D2:C1:AA:FF:3E:09`), gateway-style hex ids
/// (`0123245cf74c60d7ee`) and `testsim` ids, each with whether its line speaks of a
/// topology or a gateway.
fn ids_in(text: &str) -> Vec<(String, bool)> {
    let is_hex = |s: &str| s.bytes().all(|b| b.is_ascii_hexdigit());
    let mut found = Vec::new();
    for line in text.lines() {
        let topology = line.contains("topolog") || line.contains("gateway");
        for token in line.split(|c: char| !(c.is_ascii_alphanumeric() || c == ':')) {
            let token = token.trim_matches(':');
            let parts: Vec<&str> = token.split(':').collect();
            let mac = parts.len() == 6 && parts.iter().all(|p| p.len() == 2 && is_hex(p));
            let gateway = token.len() == 18 && token.starts_with("0123") && is_hex(token);
            let testsim = token
                .strip_prefix("testsim")
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
            if mac || gateway || testsim {
                found.push((token.to_string(), topology));
            }
        }
    }
    found
}

/// Every file under `dir` whose name ends in `ext`.
fn files(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(&path, ext, out);
        } else if path.extension().is_some_and(|e| e == ext) {
            out.push(path);
        }
    }
}

// The README, the SDK's rustdoc, the CLI's --help examples and the API docs use these ids:
// the demo account (`leapcraft --demo`, the fake's default dataset) must hold them all.
#[tokio::test]
async fn the_demo_account_holds_every_id_the_docs_use() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut sources = vec![
        root.join("README.md"),
        root.join("spec/leapcraft-api-docs.txt"),
    ];
    files(&root.join("leapcraft-ext/src"), "rs", &mut sources);
    files(&root.join("leapcraft-cli/src"), "rs", &mut sources);
    let mut wanted = Vec::new();
    for path in &sources {
        let text = std::fs::read_to_string(path).unwrap();
        for (id, topology) in ids_in(&text) {
            wanted.push((id, topology, path.strip_prefix(&root).unwrap().to_owned()));
        }
    }
    for needed in ["D2:C1:AA:FF:3E:09", "0123245cf74c60d7ee"] {
        assert!(wanted.iter().any(|(id, ..)| id == needed), "{needed} found");
    }

    let fake = FakeServer::start_default().await.unwrap();
    let t = token(&fake).await;
    let mut missing = Vec::new();
    for (id, topology, path) in &wanted {
        let device = get(&fake, &t, &format!("/devices/{id}")).await.status();
        let reading = get(&fake, &t, &format!("/telemetry/{id}?type=latest")).await;
        if device != 200 || reading.status() != 200 {
            missing.push(format!("device {id} ({})", path.display()));
        }
        if *topology && id.starts_with("0123") {
            let status = get(&fake, &t, &format!("/topologies/{id}")).await.status();
            if status != 200 {
                missing.push(format!("topology {id} ({})", path.display()));
            }
        }
    }
    assert!(missing.is_empty(), "not in the demo account: {missing:?}");
    // The README's `notifications --device D2:C1:AA:FF:3E:09 --limit 10 --offset 20`.
    let page = get_json(
        &fake,
        &t,
        "/notifications?physical_id=D2%3AC1%3AAA%3AFF%3A3E%3A09&limit=10&offset=20",
    )
    .await;
    assert!(!page.as_array().unwrap().is_empty());
}
