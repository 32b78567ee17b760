//! HTTP helpers: the reqwest client tests share, creating a session, and reading a number from
//! `/metrics`.

use std::time::Duration;

/// The shared HTTP client: every request is bounded (20 s).
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

/// Creates a session with `POST {sessions}` (the full URL of `/v1/sessions`); its id.
pub async fn create_session(sessions: &str) -> String {
    let r = http()
        .post(sessions)
        .json(&serde_json::json!({}))
        .send()
        .await
        .expect("POST /v1/sessions");
    assert!(r.status().is_success(), "POST /v1/sessions: {}", r.status());
    let body: serde_json::Value = r.json().await.expect("json");
    body["id"].as_str().expect("id").to_owned()
}

/// A number from Prometheus text (sum of all series of that name).
pub fn metric_value(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.split([' ', '{']).next() == Some(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
