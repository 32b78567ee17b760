//! Busy policies (issue 2, test 5): queue keeps order, reject stores nothing, interrupt cancels
//! then runs; cancelling a queued run.

use crate::support;

use serde_json::json;
use support::TestHub;

fn long(c: &mut sessionhub::config::Config) {
    c.scripted_deltas = 30;
    c.scripted_delay_ms = 10;
}

#[tokio::test]
async fn queue_policy_runs_messages_in_order() {
    let hub = TestHub::start_with(long).await;
    let s = hub.create_session().await;
    let mut t = hub.ws().await;
    t.join(&s).await;
    let a1 = t.say(&s, "q1", "first").await;
    let a2 = t.say(&s, "q2", "second").await;
    let a3 = t.say(&s, "q3", "third").await;
    let (r1, r2, r3) = (
        a1["run_id"].as_str().unwrap(),
        a2["run_id"].as_str().unwrap(),
        a3["run_id"].as_str().unwrap(),
    );
    t.until_run_end(r3).await;
    let kinds: Vec<(String, String)> = t
        .events
        .iter()
        .filter(|e| e["type"] != "run.delta" && e["type"] != "session.updated")
        .map(|e| {
            (
                e["type"].as_str().unwrap().to_owned(),
                e["run_id"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let expect: Vec<(String, String)> = [
        ("message", ""),
        ("run.started", r1),
        ("message", ""),
        ("run.queued", r2),
        ("message", ""),
        ("run.queued", r3),
        ("run.completed", r1),
        ("run.started", r2),
        ("run.completed", r2),
        ("run.started", r3),
        ("run.completed", r3),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(kinds, expect);
    let items = hub.items(&s).await;
    let texts: Vec<&str> = items.iter().map(|i| i["text"].as_str().unwrap()).collect();
    // Ordered by creation: an assistant item is created when its run starts.
    assert_eq!([texts[0], texts[2], texts[3]], ["first", "second", "third"]);
    assert!(
        texts[1].contains("first") && texts[4].contains("second") && texts[5].contains("third"),
        "{texts:?}"
    );
}

#[tokio::test]
async fn reject_policy_stores_nothing() {
    let hub = TestHub::start_with(|c| {
        long(c);
        c.busy_policy = sessionhub::config::BusyPolicy::Reject;
    })
    .await;
    let s = hub.create_session().await;
    let mut t = hub.ws().await;
    t.join(&s).await;
    let a1 = t.say(&s, "r1", "first").await;
    let err = t.say(&s, "r2", "second").await;
    assert_eq!(err["type"], "error");
    assert_eq!(err["code"], "busy");
    assert_eq!(err["session"], s.as_str());
    t.until_run_end(a1["run_id"].as_str().unwrap()).await;
    assert_eq!(hub.items(&s).await.len(), 2);
    // The rejected client_msg_id was not remembered: it can be used now.
    let a2 = t.say(&s, "r2", "second").await;
    assert_eq!(a2["type"], "ack");
    assert_eq!(a2["duplicate"], false);
    // A per-message override beats the session default.
    let a3 = t.say(&s, "r3", "third").await;
    assert_eq!(a3["type"], "error");
    t.send(json!({"type":"send","session":s,"client_msg_id":"r4","text":"fourth","on_busy":"queue","ref":"r4"})).await;
    let r = t
        .recv_until(|v| v["type"] == "ack" || v["type"] == "error")
        .await
        .pop()
        .unwrap();
    assert_eq!(r["type"], "ack");
}

#[tokio::test]
async fn interrupt_policy_cancels_then_runs_and_keeps_queue_order() {
    let hub = TestHub::start_with(long).await;
    let s = hub.create_session().await;
    let mut t = hub.ws().await;
    t.join(&s).await;
    let a1 = t.say(&s, "i1", "first").await;
    let a2 = t.say(&s, "i2", "queued").await;
    t.recv_until(|v| v["type"] == "run.delta").await;
    t.send(json!({"type":"send","session":s,"client_msg_id":"i3","text":"urgent","on_busy":"interrupt","ref":"i3"})).await;
    let frames = t
        .recv_until(|v| {
            v["type"] == "run.started" && v["reply_to"].is_string() && v["run_id"] != a1["run_id"]
        })
        .await;
    let kinds: Vec<&str> = frames
        .iter()
        .filter(|f| f["type"] != "run.delta")
        .map(|f| f["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["ack", "message", "run.cancelled", "run.started"],
        "{frames:?}"
    );
    let ack3 = &frames[frames.iter().position(|f| f["type"] == "ack").unwrap()];
    let started = frames.last().unwrap();
    assert_eq!(started["run_id"], ack3["run_id"]);
    let cancelled = frames
        .iter()
        .find(|f| f["type"] == "run.cancelled")
        .unwrap();
    assert_eq!(cancelled["run_id"], a1["run_id"]);
    // The queued run still runs, after the interrupting one.
    let end3 = t.until_run_end(ack3["run_id"].as_str().unwrap()).await;
    assert_eq!(end3["type"], "run.completed");
    let next = t
        .recv_until(|v| v["type"] == "run.started")
        .await
        .pop()
        .unwrap();
    assert_eq!(next["run_id"], a2["run_id"]);
}

#[tokio::test]
async fn cancelling_a_queued_run_removes_it_and_keeps_the_message() {
    let hub = TestHub::start_with(long).await;
    let s = hub.create_session().await;
    let mut t = hub.ws().await;
    t.join(&s).await;
    let a1 = t.say(&s, "c1", "first").await;
    let a2 = t.say(&s, "c2", "second").await;
    t.send(json!({"type":"cancel","session":s,"run_id":a2["run_id"]}))
        .await;
    let c = t
        .recv_until(|v| v["type"] == "run.cancelled")
        .await
        .pop()
        .unwrap();
    assert_eq!(c["run_id"], a2["run_id"]);
    assert!(c["item"].is_null());
    assert_eq!(c["reply_to"], a2["item_id"]);
    t.until_run_end(a1["run_id"].as_str().unwrap()).await;
    let items = hub.items(&s).await;
    assert_eq!(items.len(), 3, "two messages and one reply: {items:?}");
}

/// A retry after an earlier message (ChatKit's "retry") drops the later items for every tab:
/// WebSocket subscribers get `items.removed`, then the new run.
#[tokio::test]
async fn retry_after_item_tells_every_tab_what_was_removed() {
    let hub = TestHub::start().await;
    let s = hub.create_session().await;
    let mut t = hub.ws().await;
    t.join(&s).await;
    let a1 = t.say(&s, "r1", "first").await;
    t.until_run_end(a1["run_id"].as_str().unwrap()).await;
    let a2 = t.say(&s, "r2", "second").await;
    t.until_run_end(a2["run_id"].as_str().unwrap()).await;
    let before = hub.items(&s).await;
    assert_eq!(before.len(), 4);
    let who = sessionhub::auth::Principal::anonymous();
    let run = hub
        .hub
        .retry_after(who.caller(), &s, a1["item_id"].as_str().unwrap())
        .await
        .unwrap();
    let removed = t
        .recv_until(|v| v["type"] == "items.removed")
        .await
        .pop()
        .unwrap();
    let expect: Vec<&serde_json::Value> = before[1..].iter().map(|i| &i["id"]).collect();
    let got: Vec<&serde_json::Value> = removed["item_ids"].as_array().unwrap().iter().collect();
    assert_eq!(got, expect);
    let started = t.recv().await;
    assert_eq!(started["type"], "run.started");
    assert_eq!(started["run_id"], run.as_str());
    assert_eq!(started["reply_to"], a1["item_id"]);
    t.until_run_end(&run).await;
    let mut model = Vec::new();
    let mut c = support::WsClient::connect(&hub.ws_url()).await;
    support::apply_frame(&mut model, &c.join(&s).await);
    let mut live = Vec::new();
    support::apply_frame(
        &mut live,
        &serde_json::json!({"type": "snapshot", "items": [], "active_run": null}),
    );
    for e in &t.events {
        support::apply_frame(&mut live, e);
    }
    assert_eq!(
        live, model,
        "a tab that saw every event agrees with a fresh snapshot"
    );
    assert_eq!(hub.items(&s).await.len(), 2);
}
