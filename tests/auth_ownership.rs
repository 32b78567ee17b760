//! Issue 8, authorization continued: another user's cancel never stops a run, on any
//! transport, and deleting a session ends its subscriptions on every stream.

use crate::auth_support;
use crate::support;

use auth_support::*;
use serde_json::{json, Value};
use support::is_event;

#[tokio::test]
async fn another_user_cannot_cancel_a_run_on_any_transport() {
    let hub = start(|c| {
        c.scripted_deltas = 30;
        c.scripted_delay_ms = 20;
    })
    .await;
    let (bob, alice) = (token("bob"), token("alice"));
    let s = create_session(&hub, &bob).await;
    let mut tab = ws_as(&hub, &bob).await;
    tab.join(&s).await;
    tab.say(&s, "b1", "long reply please").await;
    let started = tab.recv_until(|v| v["type"] == "run.started").await;
    let run_id = started.last().expect("started")["run_id"]
        .as_str()
        .expect("run id")
        .to_owned();

    let mut ws = ws_as(&hub, &alice).await;
    ws.send(json!({"type": "cancel", "session": s, "run_id": run_id, "ref": 1}))
        .await;
    assert_eq!(ws.recv().await["code"], "not_found");
    ws.send(json!({"type": "subscribe", "session": s, "ref": 2}))
        .await;
    assert_eq!(ws.recv().await["code"], "not_found");
    let (status, body) = call(
        &hub,
        "POST",
        &format!("/v1/sessions/{s}/cancel"),
        Some(&alice),
        None,
        Some(&json!({"run_id": run_id})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let (status, _) = call(
        &hub,
        "POST",
        "/chatkit",
        Some(&alice),
        None,
        Some(&json!({"type": "threads.delete", "params": {"thread_id": s}})),
    )
    .await;
    assert_eq!(status, 404);

    // Bob's run streams on to its end, untouched.
    let end = tab.until_run_end(&run_id).await;
    assert_eq!(end["type"], "run.completed", "{end}");
    let deltas = tab
        .events
        .iter()
        .filter(|e| e["type"] == "run.delta")
        .count();
    assert_eq!(deltas, 30);
}

#[tokio::test]
async fn deleting_a_session_ends_its_subscriptions_on_every_stream() {
    let hub = start(|_| {}).await;
    let bob = token("bob");
    let s = create_session(&hub, &bob).await;
    let mut tab = ws_as(&hub, &bob).await;
    tab.join(&s).await;
    let resp = support::http()
        .get(hub.url(&format!("/v1/sessions/{s}/events")))
        .bearer_auth(&bob)
        .send()
        .await
        .expect("events");
    assert_eq!(resp.status(), 200);
    let (status, _) = call(
        &hub,
        "DELETE",
        &format!("/v1/sessions/{s}"),
        Some(&bob),
        None,
        None,
    )
    .await;
    assert_eq!(status, 204);
    // The WebSocket tab gets `session.deleted`; the subscription is gone (later frames naming
    // the session get `not_found`).
    let frames = tab.recv_until(|v| v["type"] == "session.deleted").await;
    assert!(frames.iter().all(|f| f["type"] != "error"), "{frames:?}");
    tab.send(json!({"type": "send", "session": s, "client_msg_id": "late", "text": "x", "ref": 9}))
        .await;
    assert_eq!(tab.recv().await["code"], "not_found");
    // The SSE stream delivers `session.deleted` and then ends.
    let body = tokio::time::timeout(support::FRAME_TIMEOUT, resp.text())
        .await
        .expect("stream ended in time")
        .expect("body");
    assert!(body.contains("event: session.deleted"), "{body}");
    let events: Vec<&Value> = tab.events.iter().filter(|e| is_event(e)).collect();
    assert_eq!(events.last().expect("events")["type"], "session.deleted");
}
