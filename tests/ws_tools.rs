//! Tools on the native transports (PROTOCOL 1.1), with the built-in scripted agent: a client
//! tool's round trip on three tabs, idempotent results, the bad-input table, cancel and a new
//! message while a call waits, the SSE POST route, and a pending call surviving `kill -9`.

use crate::support;

use serde_json::{json, Value};
use support::{http, BinHub, TestHub, WsClient};

const PAGE_TOOL: &str = "get_page";

fn tools() -> Value {
    json!([{"name": PAGE_TOOL, "description": "the page", "parameters": {"type": "object"}}])
}

/// Send `/tool get_page {...}` with the client tool declared; returns the ack.
async fn call_page_tool(t: &mut WsClient, s: &str, cmid: &str) -> Value {
    t.send(
        json!({"type": "send", "session": s, "client_msg_id": cmid, "ref": cmid,
        "text": format!("/tool {PAGE_TOOL} {{\"detail\": true}}"), "tools": tools(),
        "context": {"page": "/pricing"}}),
    )
    .await;
    let frames = t
        .recv_until(|v| v["type"] == "ack" || v["type"] == "error")
        .await;
    let ack = frames.last().cloned().unwrap();
    assert_eq!(ack["type"], "ack", "{ack}");
    ack
}

/// Read until the run ends pending; returns its `run.completed` and the pending call id.
async fn until_pending(t: &mut WsClient, run_id: &str) -> (Value, String) {
    let end = t.until_run_end(run_id).await;
    assert_eq!(end["type"], "run.completed", "{end}");
    let call_id = end["pending_tool_calls"][0]
        .as_str()
        .expect("a pending call")
        .to_owned();
    (end, call_id)
}

fn kinds(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_client_tool_round_trip_tells_every_tab_the_same_story() {
    let hub = TestHub::start().await;
    let s = hub.create_session().await;
    let mut tabs = Vec::new();
    for _ in 0..3 {
        let mut t = hub.ws().await;
        t.join(&s).await;
        tabs.push(t);
    }
    let ack = call_page_tool(&mut tabs[0], &s, "m1").await;
    let run1 = ack["run_id"].as_str().unwrap().to_owned();
    let (_, call_id) = until_pending(&mut tabs[0], &run1).await;
    // Another tab resolves the call: its ack names the tool.result that follows.
    tabs[1]
        .send(
            json!({"type": "tool_result", "session": s, "call_id": call_id, "ref": 7,
        "output": "{\"title\":\"Pricing\"}"}),
        )
        .await;
    let frames = tabs[1]
        .recv_until(|v| v["type"] == "ack" || v["type"] == "error")
        .await;
    let tack = frames.last().unwrap().clone();
    assert_eq!(
        (
            tack["type"].as_str(),
            tack["ref"].as_i64(),
            tack["duplicate"].as_bool()
        ),
        (Some("ack"), Some(7), Some(false)),
        "{tack}"
    );
    assert_eq!(tack["call_id"], call_id.as_str());
    let result = tabs[1].recv().await;
    assert_eq!(result["type"], "tool.result");
    assert_eq!(result["seq"], tack["seq"]);
    assert_eq!(result["item"]["status"], "complete");
    let started = tabs[1].recv().await;
    assert_eq!(started["type"], "run.started");
    assert_eq!(started["continues"], run1.as_str());
    assert_eq!(started["reply_to"], ack["item_id"]);
    let run2 = started["run_id"].as_str().unwrap().to_owned();
    let end = tabs[1].until_run_end(&run2).await;
    assert_eq!(end["type"], "run.completed");
    assert!(
        end["item"]["text"]
            .as_str()
            .unwrap()
            .contains("Tool get_page returned: {\"title\":\"Pricing\"}"),
        "the continuation quotes the tool's output: {end}"
    );
    for (i, t) in tabs.iter_mut().enumerate() {
        if i != 1 {
            t.until_run_end(&run2).await;
        }
    }
    let expected = vec![
        "message",
        "session.updated",
        "run.started",
        "tool.started",
        "tool.delta",
        "tool.delta",
        "tool.called",
        "run.completed",
        "tool.result",
        "run.started",
    ];
    for t in &tabs {
        let k = kinds(&t.events);
        assert_eq!(&k[..expected.len()], &expected[..], "{k:?}");
        assert_eq!(t.events, tabs[0].events, "every tab sees the same events");
    }
    let called = tabs[0]
        .events
        .iter()
        .find(|e| e["type"] == "tool.called")
        .unwrap();
    assert_eq!(called["item"]["status"], "pending");
    assert_eq!(called["item"]["arguments"], "{\"detail\": true}");
    assert_eq!(called["item"]["executor"], "client");
    let deltas: String = tabs[0]
        .events
        .iter()
        .filter(|e| e["type"] == "tool.delta")
        .map(|e| e["arguments"].as_str().unwrap())
        .collect();
    assert_eq!(
        deltas, "{\"detail\": true}",
        "tool.delta fragments concatenate to the arguments"
    );
    // The same result again: the original ack; another result: bad_request.
    tabs[2].send(json!({"type": "tool_result", "session": s, "call_id": call_id, "output": "{\"title\":\"Pricing\"}"})).await;
    let dup = tabs[2]
        .recv_until(|v| v["type"] == "ack" || v["type"] == "error")
        .await
        .pop()
        .unwrap();
    assert_eq!(
        (dup["duplicate"].as_bool(), &dup["seq"]),
        (Some(true), &tack["seq"]),
        "{dup}"
    );
    tabs[2]
        .send(json!({"type": "tool_result", "session": s, "call_id": call_id, "output": "other"}))
        .await;
    let err = tabs[2]
        .recv_until(|v| v["type"] == "error")
        .await
        .pop()
        .unwrap();
    assert_eq!(err["code"], "bad_request");
    // The user item keeps its context; listings show the tool item whole.
    let items = hub.items(&s).await;
    assert_eq!(items[0]["context"], json!({"page": "/pricing"}));
    let tool = items
        .iter()
        .find(|i| i["role"] == "tool")
        .expect("tool item listed");
    assert_eq!(tool["output"], "{\"title\":\"Pricing\"}");
    assert_eq!(tool["text"], "");
}

#[tokio::test]
async fn bad_tool_frames_get_clear_errors_and_change_nothing() {
    let hub = TestHub::start().await;
    let s = hub.create_session().await;
    let mut t = hub.ws().await;
    t.join(&s).await;
    let big_context = json!({"blob": "x".repeat(17 * 1024)});
    let many: Vec<Value> = (0..65)
        .map(|i| json!({"name": format!("t{i}"), "parameters": {"type": "object"}}))
        .collect();
    let rows: Vec<(&str, Value, &str)> = vec![
        (
            "bad tool name",
            json!({"type": "send", "session": s, "client_msg_id": "b1", "text": "x", "tools": [{"name": "has space", "parameters": {}}]}),
            "bad_request",
        ),
        (
            "duplicate tool",
            json!({"type": "send", "session": s, "client_msg_id": "b2", "text": "x", "tools": [{"name": "a", "parameters": {}}, {"name": "a", "parameters": {}}]}),
            "bad_request",
        ),
        (
            "parameters not an object",
            json!({"type": "send", "session": s, "client_msg_id": "b3", "text": "x", "tools": [{"name": "a", "parameters": 3}]}),
            "bad_request",
        ),
        (
            "tools not an array",
            json!({"type": "send", "session": s, "client_msg_id": "b4", "text": "x", "tools": {}}),
            "bad_request",
        ),
        (
            "too many tools",
            json!({"type": "send", "session": s, "client_msg_id": "b5", "text": "x", "tools": many}),
            "too_large",
        ),
        (
            "context over 16 KiB",
            json!({"type": "send", "session": s, "client_msg_id": "b6", "text": "x", "context": big_context}),
            "too_large",
        ),
        (
            "context not an object",
            json!({"type": "send", "session": s, "client_msg_id": "b7", "text": "x", "context": [1]}),
            "bad_request",
        ),
        (
            "unknown call",
            json!({"type": "tool_result", "session": s, "call_id": "call_nope", "output": "x"}),
            "not_found",
        ),
        (
            "result without output",
            json!({"type": "tool_result", "session": s, "call_id": "c"}),
            "bad_request",
        ),
        (
            "approval without approved",
            json!({"type": "tool_approval", "session": s, "call_id": "c"}),
            "bad_request",
        ),
        (
            "approval with bad arguments",
            json!({"type": "tool_approval", "session": s, "call_id": "c", "approved": true, "arguments": "{nope"}),
            "bad_request",
        ),
    ];
    for (what, frame, code) in rows {
        t.send(frame).await;
        let err = t
            .recv_until(|v| v["type"] == "error" || v["type"] == "ack")
            .await
            .pop()
            .unwrap();
        assert_eq!(err["code"], code, "{what}: {err}");
    }
    assert!(hub.items(&s).await.is_empty(), "nothing was stored");
    // A pending call: an approval does not resolve it.
    let ack = call_page_tool(&mut t, &s, "m1").await;
    let (_, call_id) = until_pending(&mut t, ack["run_id"].as_str().unwrap()).await;
    t.send(json!({"type": "tool_approval", "session": s, "call_id": call_id, "approved": true}))
        .await;
    let err = t.recv_until(|v| v["type"] == "error").await.pop().unwrap();
    assert_eq!(err["code"], "bad_request", "{err}");
    // Not subscribed: another connection may not resolve it.
    let mut other = hub.ws().await;
    other
        .send(json!({"type": "tool_result", "session": s, "call_id": call_id, "output": "x"}))
        .await;
    assert_eq!(other.recv().await["code"], "not_subscribed");
}

#[tokio::test]
async fn cancel_and_a_new_message_end_a_waiting_call() {
    let hub = TestHub::start().await;
    let s = hub.create_session().await;
    let mut t = hub.ws().await;
    t.join(&s).await;
    let ack = call_page_tool(&mut t, &s, "m1").await;
    let (_, call_id) = until_pending(&mut t, ack["run_id"].as_str().unwrap()).await;
    t.send(json!({"type": "cancel", "session": s})).await;
    let result = t
        .recv_until(|v| v["type"] == "tool.result" || v["type"] == "error")
        .await
        .pop()
        .unwrap();
    assert_eq!(result["item"]["status"], "cancelled", "{result}");
    t.send(json!({"type": "tool_result", "session": s, "call_id": call_id, "output": "late"}))
        .await;
    assert_eq!(
        t.recv_until(|v| v["type"] == "error").await.pop().unwrap()["code"],
        "bad_request"
    );
    // A new message while a call waits resolves it as cancelled first.
    let ack = call_page_tool(&mut t, &s, "m2").await;
    until_pending(&mut t, ack["run_id"].as_str().unwrap()).await;
    t.send(json!({"type": "send", "session": s, "client_msg_id": "m3", "text": "never mind", "ref": "m3"})).await;
    let frames = t.recv_until(|v| v["type"] == "message").await;
    let k = kinds(&frames);
    assert_eq!(k, vec!["tool.result", "ack", "message"], "{frames:?}");
    assert_eq!(frames[0]["item"]["status"], "cancelled");
    assert_eq!(frames[1]["seq"], frames[2]["seq"]);
}

#[tokio::test]
async fn the_sse_fallback_resolves_calls_and_the_snapshot_lists_them() {
    let hub = TestHub::start().await;
    let s = hub.create_session().await;
    let mut t = hub.ws().await;
    t.join(&s).await;
    let ack = call_page_tool(&mut t, &s, "m1").await;
    let (_, call_id) = until_pending(&mut t, ack["run_id"].as_str().unwrap()).await;
    let mut late = hub.ws().await;
    let snap = late.join(&s).await;
    assert_eq!(
        snap["pending_tool_calls"][0]["call_id"],
        call_id.as_str(),
        "{snap}"
    );
    let url = hub.url(&format!("/v1/sessions/{s}/tool-results"));
    let bad = http()
        .post(&url)
        .json(&json!({"call_id": "nope", "output": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 404);
    let r = http()
        .post(&url)
        .json(&json!({"call_id": call_id, "output": "via sse"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        (
            body["type"].as_str(),
            body["call_id"].as_str(),
            body["duplicate"].as_bool()
        ),
        (Some("ack"), Some(call_id.as_str()), Some(false))
    );
    let result = t
        .recv_until(|v| v["type"] == "tool.result")
        .await
        .pop()
        .unwrap();
    assert_eq!(result["seq"], body["seq"]);
    assert_eq!(result["item"]["output"], "via sse");
}

#[tokio::test]
async fn a_pending_call_survives_kill_9_and_is_resolved_after_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    let hub = BinHub::start(dir.path(), &["--scripted-delay-ms", "5"]).await;
    let s = support::create_session(&hub.url("/v1/sessions")).await;
    let mut t = WsClient::connect(&hub.ws_url()).await;
    t.join(&s).await;
    let ack = call_page_tool(&mut t, &s, "m1").await;
    let (_, call_id) = until_pending(&mut t, ack["run_id"].as_str().unwrap()).await;
    hub.kill9().await;
    let hub = BinHub::start(dir.path(), &["--scripted-delay-ms", "5"]).await;
    let mut t = WsClient::connect(&hub.ws_url()).await;
    let snap = t.join(&s).await;
    assert_eq!(snap["pending_tool_calls"][0]["status"], "pending", "{snap}");
    t.send(json!({"type": "tool_result", "session": s, "call_id": call_id, "output": "after the crash"})).await;
    let frames = t
        .recv_until(|v| v["type"] == "run.started" || v["type"] == "error")
        .await;
    assert_eq!(
        kinds(&frames),
        vec!["ack", "tool.result", "run.started"],
        "{frames:?}"
    );
    let end = t.until_run_end(frames[2]["run_id"].as_str().unwrap()).await;
    assert!(
        end["item"]["text"]
            .as_str()
            .unwrap()
            .contains("after the crash"),
        "{end}"
    );
}
