//! Bad input on the native SSE fallback gets a clear error with its stable code and changes
//! nothing; idempotent sends and busy policies behave as on the WebSocket.

use crate::sse_support;
use crate::support;

use serde_json::{json, Value};
use sse_support::{ends_run, events_url, open, request};
use support::{http, TestHub};

fn base(hub: &TestHub) -> String {
    format!("http://{}", hub.addr)
}

/// POST a raw body; returns (status, JSON body).
async fn post_raw(hub: &TestHub, path: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
    let r = http()
        .post(hub.url(path))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("POST");
    let status = r.status().as_u16();
    let text = r.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|_| json!({"raw": text})),
    )
}

fn code(body: &Value) -> &str {
    body["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("not an error body: {body}"))
}

#[tokio::test]
async fn bad_messages_get_clear_errors_and_change_nothing() {
    let hub = TestHub::start_with(|c| c.max_text_chars = 100).await;
    let s = hub.create_session().await;
    let path = format!("/v1/sessions/{s}/messages");
    let huge = "x".repeat(hub.hub.config().max_body_bytes + 10);
    let cases: Vec<(String, u16, &str)> = vec![
        ("{not json".into(), 400, "bad_request"),
        ("[1,2]".into(), 400, "bad_request"),
        (json!({"text": "hi"}).to_string(), 400, "bad_request"),
        (
            json!({"client_msg_id": "c", "text": 5}).to_string(),
            400,
            "bad_request",
        ),
        (
            json!({"client_msg_id": "", "text": "hi"}).to_string(),
            400,
            "bad_request",
        ),
        (
            json!({"client_msg_id": "c".repeat(300), "text": "hi"}).to_string(),
            400,
            "bad_request",
        ),
        (
            json!({"client_msg_id": 7, "text": "hi"}).to_string(),
            400,
            "bad_request",
        ),
        (
            json!({"client_msg_id": "c", "text": "hi", "on_busy": "later"}).to_string(),
            400,
            "bad_request",
        ),
        (
            json!({"client_msg_id": "c", "text": "é".repeat(101)}).to_string(),
            413,
            "too_large",
        ),
        (
            format!("{{\"client_msg_id\":\"c\",\"text\":\"{huge}\"}}"),
            413,
            "too_large",
        ),
    ];
    for (body, status, want) in cases {
        let shown: String = body.chars().take(60).collect();
        let (st, b) = post_raw(&hub, &path, body).await;
        assert_eq!((st, code(&b)), (status, want), "body {shown}: {b}");
        assert!(
            b["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "a message says why: {b}"
        );
    }
    // Shape is checked before existence.
    let (st, b) = post_raw(&hub, "/v1/sessions/ses_nope/messages", "{bad").await;
    assert_eq!((st, code(&b)), (400, "bad_request"));
    let (st, b) = post_raw(
        &hub,
        "/v1/sessions/ses_nope/messages",
        json!({"client_msg_id": "c", "text": "hi"}).to_string(),
    )
    .await;
    assert_eq!((st, code(&b)), (404, "not_found"));

    // Nothing was stored, not even a client_msg_id: the session is still at seq 0, and "c"
    // is free to use.
    assert!(hub.items(&s).await.is_empty());
    let tab = open(&events_url(&base(&hub), &s), None).await;
    assert_eq!(tab.header("sessionhub-head-seq"), "0");
    let (st, ack) = post_raw(
        &hub,
        &path,
        json!({"client_msg_id": "c", "text": "now fine"}).to_string(),
    )
    .await;
    assert_eq!(st, 200, "{ack}");
    assert_eq!(ack["duplicate"], false);
    assert_eq!(ack["seq"], 1);
}

#[tokio::test]
async fn bad_event_stream_requests_are_rejected() {
    let hub = TestHub::start().await;
    let s = hub.create_session().await;
    let url = events_url(&base(&hub), &s);
    for bad in [
        "nocolon",
        "epoch:",
        ":5",
        "epoch:-1",
        "epoch:x",
        "ep och:3",
        "epoch:99999999999999999999999",
    ] {
        let r = request(&url, Some(bad)).await;
        assert_eq!(r.status(), 400, "Last-Event-ID {bad}");
        let b: Value = r.json().await.expect("json");
        assert_eq!(code(&b), "bad_request", "{b}");
        let r = request(&format!("{url}?since={}", urlencode(bad)), None).await;
        assert_eq!(r.status(), 400, "since {bad}");
    }
    let r = request(&events_url(&base(&hub), "ses_missing"), None).await;
    assert_eq!(r.status(), 404);
    let b: Value = r.json().await.expect("json");
    assert_eq!(code(&b), "not_found");
    // Resume position checked before existence.
    let r = request(&events_url(&base(&hub), "ses_missing"), Some("bad")).await;
    assert_eq!(r.status(), 400);
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.:".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test]
async fn bad_cancels_get_clear_errors() {
    let hub = TestHub::start().await;
    let s = hub.create_session().await;
    let path = format!("/v1/sessions/{s}/cancel");
    let (st, b) = post_raw(&hub, &path, "{oops").await;
    assert_eq!((st, code(&b)), (400, "bad_request"));
    let (st, b) = post_raw(&hub, &path, json!({"run_id": 3}).to_string()).await;
    assert_eq!((st, code(&b)), (400, "bad_request"));
    let (st, b) = post_raw(&hub, &path, "").await;
    assert_eq!((st, code(&b)), (409, "no_active_run"));
    let (st, b) = post_raw(&hub, &path, json!({"run_id": "run_unknown"}).to_string()).await;
    assert_eq!((st, code(&b)), (409, "no_active_run"));
    let (st, b) = post_raw(&hub, "/v1/sessions/ses_nope/cancel", "{}").await;
    assert_eq!((st, code(&b)), (404, "not_found"));
    assert!(hub.items(&s).await.is_empty());
}

#[tokio::test]
async fn repeated_sends_are_idempotent_and_busy_policies_apply() {
    let hub = TestHub::start_with(|c| {
        c.scripted_deltas = 200;
        c.scripted_delay_ms = 10;
    })
    .await;
    let s = hub.create_session().await;
    let path = format!("/v1/sessions/{s}/messages");
    let mut tab = open(&events_url(&base(&hub), &s), None).await;
    tab.next_event().await;

    let (st, first) = post_raw(
        &hub,
        &path,
        json!({"client_msg_id": "c-1", "text": "hello"}).to_string(),
    )
    .await;
    assert_eq!(st, 200);
    let (st, again) = post_raw(
        &hub,
        &path,
        json!({"client_msg_id": "c-1", "text": "hello"}).to_string(),
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(again["duplicate"], true);
    for k in ["item_id", "epoch", "seq"] {
        assert_eq!(again[k], first[k], "duplicate repeats {k}");
    }
    let (st, b) = post_raw(
        &hub,
        &path,
        json!({"client_msg_id": "c-1", "text": "other text"}).to_string(),
    )
    .await;
    assert_eq!((st, code(&b)), (400, "bad_request"));

    // While the run is active: `reject` stores nothing, `interrupt` cancels it.
    tab.until(|v| v["type"] == "run.delta").await;
    let (st, b) = post_raw(
        &hub,
        &path,
        json!({"client_msg_id": "c-2", "text": "no", "on_busy": "reject"}).to_string(),
    )
    .await;
    assert_eq!((st, code(&b)), (409, "busy"));
    let (st, ack) = post_raw(
        &hub,
        &path,
        json!({"client_msg_id": "c-3", "text": "now", "on_busy": "interrupt"}).to_string(),
    )
    .await;
    assert_eq!(st, 200, "{ack}");
    let run1 = first["run_id"].as_str().expect("run");
    let cancelled = tab
        .until(|v| ends_run(v, run1))
        .await
        .last()
        .expect("end")
        .json();
    assert_eq!(cancelled["type"], "run.cancelled");
    let started = tab.next_event().await.json();
    assert_eq!(started["type"], "run.started");
    assert_eq!(started["run_id"], ack["run_id"]);

    let messages: Vec<Value> = hub
        .items(&s)
        .await
        .into_iter()
        .filter(|i| i["role"] == "user")
        .collect();
    let ids: Vec<&str> = messages
        .iter()
        .map(|i| i["client_msg_id"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        ids,
        ["c-1", "c-3"],
        "one message per client_msg_id, none for the rejected send"
    );
}
