//! Helpers shared by the integration tests: a plain reqwest client and token exchange.

use leapcraft_fake::FakeServer;
use serde_json::Value;

/// A client that never goes through a proxy from the environment.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
}

/// Exchanges `key` for a token; returns the raw response.
pub async fn exchange(fake: &FakeServer, key: &str) -> reqwest::Response {
    client()
        .post(format!("{}/auth/client/token", fake.base_url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("api_key={key}"))
        .send()
        .await
        .expect("token request")
}

/// A valid token.
pub async fn token(fake: &FakeServer) -> String {
    let resp = exchange(fake, fake.api_key()).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["type"], "bearer");
    body["token"].as_str().unwrap().to_string()
}

/// `GET base_url + path` with a bearer token.
pub async fn get(fake: &FakeServer, token: &str, path: &str) -> reqwest::Response {
    client()
        .get(format!("{}{path}", fake.base_url()))
        .bearer_auth(token)
        .send()
        .await
        .expect("request")
}

/// `GET` that must answer 200 with JSON.
pub async fn get_json(fake: &FakeServer, token: &str, path: &str) -> Value {
    let resp = get(fake, token, path).await;
    assert_eq!(resp.status(), 200, "{path}");
    assert_eq!(resp.headers()["content-type"], "application/json");
    resp.json().await.unwrap()
}

/// `GET` that must fail with `status` and a JSON `{"message": ...}` body.
pub async fn get_error(fake: &FakeServer, token: &str, path: &str, status: u16) -> String {
    let resp = get(fake, token, path).await;
    assert_eq!(resp.status(), status, "{path}");
    let body: Value = resp.json().await.unwrap();
    body["message"].as_str().expect("message").to_string()
}

/// The `physical_id`s of a JSON array of devices.
pub fn ids(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|d| d["physical_id"].as_str().unwrap().to_string())
        .collect()
}
