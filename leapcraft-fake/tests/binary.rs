//! The `leapcraft-fake` binary starts, prints its base URL and key, and serves (within its
//! rate limit).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[tokio::test]
async fn binary_prints_url_and_key_and_serves() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_leapcraft-fake"))
        .args([
            "--port",
            "0",
            "--devices",
            "7",
            "--key",
            "secret-k",
            "--seed",
            "5",
            // Two requests, then 429 without Retry-After (for 1,000 s).
            "--rate-limit",
            "0.001",
            "--rate-burst",
            "2",
            "--retry-after",
            "none",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url_line = lines.next().unwrap().unwrap();
    let key_line = lines.next().unwrap().unwrap();
    let base = url_line.rsplit(' ').next().unwrap().to_string();
    assert!(
        base.starts_with("http://127.0.0.1:") && base.ends_with("/v1"),
        "{url_line}"
    );
    assert_eq!(key_line, "API key: secret-k");

    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let token: serde_json::Value = client
        .post(format!("{base}/auth/client/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("api_key=secret-k")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let devices: serde_json::Value = client
        .get(format!("{base}/devices?limit=-1"))
        .bearer_auth(token["token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(devices.as_array().unwrap().len(), 7);
    let refused = client
        .get(format!("{base}/things"))
        .bearer_auth(token["token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().get("retry-after").is_none());
    child.kill().unwrap();
    child.wait().unwrap();
}
