//! Issue 2, test 6: bad input gets its error code (or 1009), the connection stays usable and
//! the store does not change.

use crate::support;

use serde_json::{json, Value};
use support::TestHub;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn bad_frames_get_stable_errors_and_change_nothing() {
    let hub = TestHub::start_with(|c| c.max_text_chars = 100).await;
    let s = hub.create_session().await;
    let other = hub.create_session().await;
    let before_sessions = hub.get_json("/v1/sessions").await;
    let mut t = hub.ws().await;
    t.join(&s).await;
    let long_text = "x".repeat(101);
    // (frame, expected code, expected ref)
    let cases: Vec<(String, &str, Value)> = vec![
        ("{not json".into(), "bad_request", Value::Null),
        ("[1,2]".into(), "bad_request", Value::Null),
        ("\"str\"".into(), "bad_request", Value::Null),
        (json!({"ref": 1}).to_string(), "bad_request", json!(1)),
        (json!({"type": 5, "ref": "a"}).to_string(), "bad_request", json!("a")),
        (json!({"type": "nope", "ref": "b"}).to_string(), "unknown_type", json!("b")),
        (json!({"type": "ping", "ref": {"x": 1}}).to_string(), "bad_request", Value::Null),
        (json!({"type": "subscribe", "ref": 3}).to_string(), "bad_request", json!(3)),
        (json!({"type": "subscribe", "session": 7}).to_string(), "bad_request", Value::Null),
        (json!({"type": "subscribe", "session": s, "since": {"epoch": 1}}).to_string(), "bad_request", Value::Null),
        (json!({"type": "subscribe", "session": s, "since": {"epoch": "e", "seq": -1}}).to_string(), "bad_request", Value::Null),
        (json!({"type": "subscribe", "session": "ses_unknown"}).to_string(), "not_found", Value::Null),
        (json!({"type": "send", "session": s, "text": "hi"}).to_string(), "bad_request", Value::Null),
        (json!({"type": "send", "session": s, "client_msg_id": "", "text": "hi"}).to_string(), "bad_request", Value::Null),
        (json!({"type": "send", "session": s, "client_msg_id": "m", "text": 5}).to_string(), "bad_request", Value::Null),
        (json!({"type": "send", "session": s, "client_msg_id": "m", "text": "hi", "on_busy": "later"}).to_string(), "bad_request", Value::Null),
        (json!({"type": "send", "session": s, "client_msg_id": "m", "text": long_text}).to_string(), "too_large", Value::Null),
        (json!({"type": "send", "session": "ses_unknown", "client_msg_id": "m", "text": "hi"}).to_string(), "not_found", Value::Null),
        (json!({"type": "send", "session": other, "client_msg_id": "m", "text": "hi"}).to_string(), "not_subscribed", Value::Null),
        (json!({"type": "cancel", "session": other}).to_string(), "not_subscribed", Value::Null),
        (json!({"type": "cancel", "session": s, "run_id": 5}).to_string(), "bad_request", Value::Null),
        (json!({"type": "cancel", "session": s, "ref": "c"}).to_string(), "no_active_run", json!("c")),
        (json!({"type": "unsubscribe", "session": other}).to_string(), "not_subscribed", Value::Null),
        (json!({"type": "unsubscribe", "session": "ses_unknown"}).to_string(), "not_found", Value::Null),
    ];
    for (frame, code, reply_ref) in &cases {
        t.send_raw(Message::Text(frame.clone().into())).await;
        let err = t.recv().await;
        assert_eq!(err["type"], "error", "{frame} -> {err}");
        assert_eq!(err["code"], *code, "{frame} -> {err}");
        assert_eq!(
            err.get("ref").cloned().unwrap_or(Value::Null),
            *reply_ref,
            "{frame} -> {err}"
        );
        assert!(err["message"].as_str().is_some_and(|m| !m.is_empty()));
        let parsed: Option<Value> = serde_json::from_str(frame).ok();
        if let Some(sess) = parsed
            .as_ref()
            .and_then(|p| p.get("session"))
            .and_then(Value::as_str)
        {
            assert_eq!(err["session"], sess, "errors echo the session");
        }
        // The connection stays usable.
        t.send(json!({"type": "ping", "ref": "alive"})).await;
        assert_eq!(t.recv().await["type"], "pong");
    }
    t.send_raw(Message::Binary(vec![1u8, 2, 3].into())).await;
    assert_eq!(t.recv().await["code"], "bad_request");
    assert!(hub.items(&s).await.is_empty());
    assert!(hub.items(&other).await.is_empty());
    assert_eq!(hub.get_json("/v1/sessions").await, before_sessions);
    assert!(t.events.is_empty(), "no event was emitted: {:?}", t.events);
}

#[tokio::test]
async fn a_frame_over_64k_closes_with_1009_and_others_are_unaffected() {
    let hub = TestHub::start().await;
    let s = hub.create_session().await;
    let mut bystander = hub.ws().await;
    bystander.join(&s).await;
    let mut t = hub.ws().await;
    t.join(&s).await;
    let huge =
        json!({"type": "send", "session": s, "client_msg_id": "big", "text": "y".repeat(70_000)})
            .to_string();
    t.send_raw(Message::Text(huge.into())).await;
    assert_eq!(t.until_close().await, Some(1009));
    assert!(hub.items(&s).await.is_empty());
    let ack = bystander.say(&s, "ok", "still fine").await;
    assert_eq!(ack["type"], "ack");
}

#[tokio::test]
async fn rest_bad_input_gets_json_errors() {
    let hub = TestHub::start().await;
    let c = support::http();
    let r = c
        .post(hub.url("/v1/sessions"))
        .body("{oops")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "bad_request"
    );
    let r = c
        .post(hub.url("/v1/sessions"))
        .json(&json!({"title": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let (st, body) = hub.get_json("/v1/sessions/ses_nope").await;
    assert_eq!(st, 404);
    assert_eq!(body["error"]["code"], "not_found");
    let s = hub.create_session().await;
    let (st, body) = hub
        .get_json(&format!("/v1/sessions/{s}/items?limit=0"))
        .await;
    assert_eq!(
        (st, body["error"]["code"].as_str()),
        (400, Some("bad_request"))
    );
    let (st, _) = hub
        .get_json(&format!("/v1/sessions/{s}/items?before=itm_nope"))
        .await;
    assert_eq!(st, 400);
    let (st, body) = hub.get_json("/v1/sessions?limit=abc").await;
    assert_eq!(
        (st, body["error"]["code"].as_str()),
        (400, Some("bad_request"))
    );
    let r = c
        .patch(hub.url(&format!("/v1/sessions/{s}")))
        .json(&json!({"title": "Renamed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["title"], "Renamed");
    let (_, list) = hub.get_json("/v1/sessions").await;
    assert_eq!(list["sessions"].as_array().unwrap().len(), 1);
}
