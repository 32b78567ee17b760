//! Bad input on `POST /chatkit`: a 4xx JSON error with a stable code, before any stream starts,
//! and nothing changed. Also the parts of the contract that only error paths show: stored
//! feedback, a retry while busy, and the CORS preflight the ChatKit front end sends.

use crate::ck;
use crate::support;

use ck::{input, Ck};
use serde_json::{json, Value};
use sessionhub::auth::Principal;
use support::{http, TestHub};

#[tokio::test]
async fn bad_requests_get_stable_codes_and_change_nothing() {
    let hub = TestHub::start_with(|c| c.max_text_chars = 100).await;
    let ck = Ck::new(&hub);
    let (thread, events) = ck.create("the only thread").await;
    let user = events[1]["item"]["id"]
        .as_str()
        .expect("user id")
        .to_owned();
    let reply = events.last().expect("done")["item"]["id"]
        .as_str()
        .expect("reply id")
        .to_owned();
    let before = state(&ck, &thread).await;

    let t = thread.as_str();
    let msg = |thread_id: &str, i: Value| json!({"type": "threads.add_user_message", "params": {"thread_id": thread_id, "input": i}});
    let table: Vec<(String, u16, &str)> = vec![
        ("{not json".into(), 400, "bad_request"),
        ("[1,2]".into(), 400, "bad_request"),
        (r#"{"params":{}}"#.into(), 400, "bad_request"),
        (r#"{"type":7,"params":{}}"#.into(), 400, "bad_request"),
        (r#"{"type":"threads.explode","params":{}}"#.into(), 400, "unknown_type"),
        (r#"{"type":"threads.get_by_id"}"#.into(), 400, "bad_request"),
        (r#"{"type":"threads.get_by_id","params":[]}"#.into(), 400, "bad_request"),
        (r#"{"type":"threads.get_by_id","params":{"thread_id":42}}"#.into(), 400, "bad_request"),
        (json!({"type": "threads.create", "params": {"input": {"content": []}}}).to_string(), 400, "bad_request"),
        (json!({"type": "threads.create", "params": {"input": {"content": [{"type": "input_audio"}], "attachments": [], "inference_options": {}}}}).to_string(), 400, "bad_request"),
        (msg(t, json!({"content": [{"type": "input_text", "text": "x"}], "attachments": ["att_1"], "inference_options": {}})).to_string(), 400, "bad_request"),
        (msg(t, input(&"y".repeat(101))).to_string(), 413, "too_large"),
        (json!({"type": "threads.create", "params": {"input": input(&"z".repeat(101))}}).to_string(), 413, "too_large"),
        (msg("thr_missing", input("hi")).to_string(), 404, "not_found"),
        (json!({"type": "threads.retry_after_item", "params": {"thread_id": "thr_missing", "item_id": user}}).to_string(), 404, "not_found"),
        (json!({"type": "threads.retry_after_item", "params": {"thread_id": t, "item_id": "itm_missing"}}).to_string(), 404, "not_found"),
        (json!({"type": "threads.retry_after_item", "params": {"thread_id": t, "item_id": reply}}).to_string(), 400, "bad_request"),
        (json!({"type": "threads.custom_action", "params": {"thread_id": "thr_missing", "action": {"type": "x"}}}).to_string(), 404, "not_found"),
        (json!({"type": "threads.get_by_id", "params": {"thread_id": "thr_missing"}}).to_string(), 404, "not_found"),
        (json!({"type": "items.list", "params": {"thread_id": "thr_missing"}}).to_string(), 404, "not_found"),
        (json!({"type": "items.list", "params": {"thread_id": t, "limit": -1}}).to_string(), 400, "bad_request"),
        (json!({"type": "items.list", "params": {"thread_id": t, "order": "sideways"}}).to_string(), 400, "bad_request"),
        (json!({"type": "items.list", "params": {"thread_id": t, "after": "itm_missing"}}).to_string(), 400, "bad_request"),
        (json!({"type": "threads.list", "params": {"after": "thr_missing"}}).to_string(), 400, "bad_request"),
        (json!({"type": "threads.update", "params": {"thread_id": t, "title": "t".repeat(201)}}).to_string(), 413, "too_large"),
        (json!({"type": "threads.update", "params": {"thread_id": "thr_missing", "title": "x"}}).to_string(), 404, "not_found"),
        (json!({"type": "threads.delete", "params": {"thread_id": "thr_missing"}}).to_string(), 404, "not_found"),
        (json!({"type": "items.feedback", "params": {"thread_id": t, "item_ids": [reply], "kind": "meh"}}).to_string(), 400, "bad_request"),
        (json!({"type": "items.feedback", "params": {"thread_id": t, "item_ids": [reply, "itm_missing"], "kind": "negative"}}).to_string(), 404, "not_found"),
        (json!({"type": "attachments.create", "params": {"name": "a", "size": 1, "mime_type": "text/plain"}}).to_string(), 400, "unsupported"),
        (json!({"type": "attachments.delete", "params": {"attachment_id": "a"}}).to_string(), 400, "unsupported"),
        (json!({"type": "input.transcribe", "params": {"audio_base64": "AA==", "mime_type": "audio/webm"}}).to_string(), 400, "unsupported"),
        (json!({"type": "threads.sync_custom_action", "params": {"thread_id": t, "action": {"type": "x"}}}).to_string(), 400, "unsupported"),
    ];
    for (body, status, code) in &table {
        let r = ck.post(body.clone()).await;
        let got = r.status().as_u16();
        let ctype = r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap_or("").to_owned())
            .unwrap_or_default();
        let v: Value = serde_json::from_str(&r.text().await.expect("body")).unwrap_or(Value::Null);
        assert_eq!(
            (got, v["error"]["code"].as_str()),
            (*status, Some(*code)),
            "{body} -> {got} {v}"
        );
        assert!(
            ctype.starts_with("application/json"),
            "{body}: content-type {ctype}"
        );
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{v}"
        );
    }
    assert_eq!(
        state(&ck, &thread).await,
        before,
        "a rejected request changed something"
    );
    let who = Principal::anonymous();
    assert_eq!(
        hub.hub
            .feedback(who.caller(), &thread, &reply)
            .expect("feedback"),
        None,
        "partial feedback stored"
    );
}

/// Everything a bad request could have touched: the threads and this thread's items.
async fn state(ck: &Ck, thread: &str) -> (Value, Value) {
    let (_, threads) = ck
        .json(json!({"type": "threads.list", "params": {"limit": 100}}))
        .await;
    (threads, ck.items(thread, 100).await)
}

#[tokio::test]
async fn feedback_is_stored() {
    let hub = TestHub::start().await;
    let ck = Ck::new(&hub);
    let (thread, events) = ck.create("rate me").await;
    let reply = events.last().expect("done")["item"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let (status, body) = ck.json(json!({"type": "items.feedback", "params": {"thread_id": thread, "item_ids": [reply], "kind": "negative"}})).await;
    assert_eq!((status, body), (200, json!({})));
    let who = Principal::anonymous();
    assert_eq!(
        hub.hub
            .feedback(who.caller(), &thread, &reply)
            .expect("feedback")
            .as_deref(),
        Some("negative")
    );
}

#[tokio::test]
async fn retry_while_a_run_streams_is_busy() {
    let hub = TestHub::start_with(|c| c.scripted_delay_ms = 200).await;
    let ck = Ck::new(&hub);
    let mut stream = ck
        .stream(json!({"type": "threads.create", "params": {"input": input("slow")}}))
        .await;
    let first = stream.until(|e| e["type"] == "thread.item.done").await;
    let thread = first[0]["thread"]["id"]
        .as_str()
        .expect("thread")
        .to_owned();
    let user = first[1]["item"]["id"].clone();
    let (status, body) = ck.json(json!({"type": "threads.retry_after_item", "params": {"thread_id": thread, "item_id": user}})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("busy")),
        "{body}"
    );
}

#[tokio::test]
async fn cors_preflight_allows_the_chatkit_headers_for_configured_origins() {
    let hub = TestHub::start_with(|c| c.cors_origins = vec!["http://app.example".into()]).await;
    let preflight = |origin: &'static str| {
        http()
            .request(reqwest::Method::OPTIONS, hub.url("/chatkit"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type,authorization,chatkit-frame-instance-id",
            )
            .send()
    };
    let ok = preflight("http://app.example").await.expect("preflight");
    assert!(ok.status().is_success(), "{}", ok.status());
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "http://app.example"
    );
    let allowed = ok.headers()["access-control-allow-headers"]
        .to_str()
        .expect("ascii")
        .to_ascii_lowercase();
    for h in ["content-type", "authorization", "chatkit-frame-instance-id"] {
        assert!(allowed.contains(h), "{h} not allowed: {allowed}");
    }
    let other = preflight("http://evil.example").await.expect("preflight");
    assert!(
        other.headers().get("access-control-allow-origin").is_none(),
        "unlisted origin allowed"
    );
}
