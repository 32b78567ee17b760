//! Shared state on the native transports (PROTOCOL 1.2), with the built-in scripted agent:
//! `state_set` / `state_patch` and the `state__patch` tool tell three tabs one story, a resume
//! replays the state events, a new subscriber's snapshot carries the document, a stale version
//! and bad input are refused and change nothing, the SSE fallback's route, and the document
//! surviving `kill -9`.

// Shared with the SSE tests; this file uses only part of it.
#[allow(unused_imports)]
use crate::sse_support;
use crate::support;

use serde_json::{json, Value};
use support::{http, BinHub, TestHub, WsClient};

/// Send a frame and read this tab's reply to it (`ack` or `error`).
async fn state_frame(t: &mut WsClient, frame: Value) -> Value {
    read_reply(t, frame).await.last().cloned().expect("a reply")
}

/// Send a frame; every frame read up to its reply (`ack` or `error`), the reply last.
async fn read_reply(t: &mut WsClient, frame: Value) -> Vec<Value> {
    t.send(frame).await;
    t.recv_until(|v| v["type"] == "ack" || v["type"] == "error")
        .await
}

fn set(s: &str, state: Value, version: u64) -> Value {
    json!({"type": "state_set", "session": s, "ref": "set", "state": state, "version": version})
}

fn patch(s: &str, patch: Value, version: u64) -> Value {
    json!({"type": "state_patch", "session": s, "ref": "patch", "patch": patch, "version": version})
}

/// The sequenced events among `frames`.
fn events(frames: &[Value]) -> Vec<Value> {
    frames
        .iter()
        .filter(|f| f.get("ts").is_some())
        .cloned()
        .collect()
}

fn state_events(frames: &[Value]) -> Vec<Value> {
    events(frames)
        .into_iter()
        .filter(|f| f["type"].as_str().unwrap().starts_with("state."))
        .collect()
}

/// The document a client gets by applying the state events to what it had, as a client would
/// (RFC 6902 by the same crate the hub uses: this checks the events, not the patching).
fn apply(mut doc: Value, events: &[Value]) -> Value {
    for e in events {
        match e["type"].as_str().unwrap() {
            "state.snapshot" => doc = e["state"].clone(),
            "state.delta" => {
                let p: json_patch::Patch = serde_json::from_value(e["patch"].clone()).unwrap();
                json_patch::patch(&mut doc, &p).unwrap();
            }
            _ => {}
        }
    }
    doc
}

const TOOL_PATCH: &str = r#"/tool state__patch {"patch":[{"op":"add","path":"/todo/-","value":"eggs"},{"op":"replace","path":"/title","value":"Shopping"}]}"#;

#[tokio::test]
async fn state_events_reach_three_tabs_in_one_order_and_resume_and_snapshots_agree() {
    let hub = TestHub::start().await;
    let s = hub.create_session().await;
    let mut tabs = Vec::new();
    for _ in 0..3 {
        let mut t = hub.ws().await;
        let snap = t.join(&s).await;
        assert_eq!(snap["state"], Value::Null, "{snap}");
        assert_eq!(snap["state_version"], 0, "{snap}");
        tabs.push(t);
    }
    let epoch = hub.get_json(&format!("/v1/sessions/{s}/state")).await;
    assert_eq!(epoch, (200, json!({"state": null, "version": 0})));

    // A client sets the document, another patches it, then the model patches it by the tool.
    let mut seen = vec![Vec::new(); 3];
    let doc = json!({"title": "List", "todo": ["milk"]});
    let frames = read_reply(&mut tabs[0], set(&s, doc, 0)).await;
    let ack = frames.last().unwrap().clone();
    seen[0].extend(frames);
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_eq!(
        (ack["ref"].clone(), ack["state_version"].clone()),
        (json!("set"), json!(1))
    );
    let ops = json!([{"op": "add", "path": "/done", "value": false}]);
    let frames = read_reply(&mut tabs[1], patch(&s, ops, 1)).await;
    let ack = frames.last().unwrap().clone();
    seen[1].extend(frames);
    assert_eq!(ack["state_version"], 2, "{ack}");
    let send = json!({"type": "send", "session": s, "client_msg_id": "m1", "text": TOOL_PATCH});
    let frames = read_reply(&mut tabs[2], send).await;
    let said = frames.last().unwrap().clone();
    seen[2].extend(frames);
    assert_eq!(said["type"], "ack", "{said}");
    let run_id = said["run_id"].as_str().unwrap().to_owned();
    for (t, seen) in tabs.iter_mut().zip(&mut seen) {
        seen.extend(t.recv_until(|v| support::ends_run(v, &run_id)).await);
        // A sender's ack comes before the event that announces its change, and names it.
        if let Some(ack) = seen
            .iter()
            .position(|f| f["type"] == "ack" && f.get("state_version").is_some())
        {
            let event = seen
                .iter()
                .position(|f| f["seq"] == seen[ack]["seq"] && f.get("ts").is_some());
            assert!(event > Some(ack), "{seen:?}");
        }
        *seen = events(seen);
    }
    // Tabs that sent a frame got its ack before the event; the events are the same everywhere.
    assert_eq!(seen[0], seen[1]);
    assert_eq!(seen[1], seen[2]);
    let states = state_events(&seen[0]);
    let kinds: Vec<&str> = states.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, vec!["state.snapshot", "state.delta", "state.delta"]);
    let versions: Vec<u64> = states
        .iter()
        .map(|e| e["version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, vec![1, 2, 3]);
    // The tool's delta comes between its `tool.called` and its (complete) `tool.result`.
    let order: Vec<&str> = seen[0]
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    let at = |k: &str| {
        order
            .iter()
            .position(|x| *x == k)
            .unwrap_or_else(|| panic!("{k}: {order:?}"))
    };
    let last_delta = order.iter().rposition(|x| *x == "state.delta").unwrap();
    assert!(
        at("tool.called") < last_delta && last_delta < at("tool.result"),
        "{order:?}"
    );
    let result = seen[0].iter().find(|e| e["type"] == "tool.result").unwrap();
    assert_eq!(result["item"]["status"], "complete", "{result}");
    assert_eq!(result["item"]["name"], "state__patch", "{result}");
    let expected = json!({"title": "Shopping", "todo": ["milk", "eggs"], "done": false});
    assert_eq!(apply(Value::Null, &states), expected);

    // Resume from before the first state event replays them, in order, the same objects.
    let first = states[0]["seq"].as_u64().unwrap();
    let epoch = states[0]["epoch"].as_str().unwrap().to_owned();
    let mut late = hub.ws().await;
    let sub = late.subscribe(&s, Some((&epoch, first - 1))).await;
    assert_eq!(sub["resume"], "replay", "{sub}");
    let head = sub["head_seq"].as_u64().unwrap();
    let replayed = late.recv_until(|v| v["seq"].as_u64() == Some(head)).await;
    assert_eq!(state_events(&replayed), states);

    // A new subscriber's snapshot and the REST route carry the current document.
    let mut fresh = hub.ws().await;
    let snap = fresh.join(&s).await;
    assert_eq!(
        (snap["state"].clone(), snap["state_version"].clone()),
        (expected.clone(), json!(3))
    );
    let got = hub.get_json(&format!("/v1/sessions/{s}/state")).await;
    assert_eq!(got, (200, json!({"state": expected, "version": 3})));
}

#[tokio::test]
async fn a_stale_version_and_bad_input_are_refused_and_change_nothing() {
    let hub = TestHub::start_with(|c| c.state_max_bytes = 1024).await;
    let s = hub.create_session().await;
    let mut a = hub.ws().await;
    let mut b = hub.ws().await;
    a.join(&s).await;
    b.join(&s).await;
    // Patching before any document exists.
    let e = state_frame(&mut a, patch(&s, json!([]), 0)).await;
    assert_eq!(e["code"], "bad_request", "{e}");
    let ack = state_frame(&mut a, set(&s, json!({"n": 1}), 0)).await;
    assert_eq!(ack["state_version"], 1, "{ack}");
    let first = b.recv_until(|v| v["type"] == "state.snapshot").await;
    let seq = first.last().unwrap()["seq"].as_u64().unwrap();

    let refused = [
        (set(&s, json!({"n": 2}), 0), "conflict"),
        (set(&s, json!({"n": 2}), 7), "conflict"),
        (
            patch(&s, json!([{"op": "replace", "path": "/n", "value": 2}]), 0),
            "conflict",
        ),
        (set(&s, json!([1, 2]), 1), "bad_request"),
        (set(&s, json!("n"), 1), "bad_request"),
        (set(&s, json!({"big": "x".repeat(2000)}), 1), "too_large"),
        (
            patch(
                &s,
                json!([{"op": "add", "path": "/big", "value": "x".repeat(2000)}]),
                1,
            ),
            "too_large",
        ),
        (
            patch(&s, json!([{"op": "remove", "path": "/missing"}]), 1),
            "bad_request",
        ),
        (
            patch(&s, json!([{"op": "jump", "path": "/n"}]), 1),
            "bad_request",
        ),
        (patch(&s, json!({"op": "add"}), 1), "bad_request"),
        (
            json!({"type": "state_set", "session": s, "state": {"n": 2}}),
            "bad_request",
        ),
        (
            json!({"type": "state_set", "session": s, "state": {"n": 2}, "version": -1}),
            "bad_request",
        ),
        (
            json!({"type": "state_set", "session": s, "version": 1}),
            "bad_request",
        ),
        (
            json!({"type": "state_set", "session": "nope", "state": {}, "version": 1}),
            "not_found",
        ),
    ];
    for (frame, code) in refused {
        let e = state_frame(&mut a, frame.clone()).await;
        assert_eq!(
            (e["type"].as_str(), e["code"].as_str()),
            (Some("error"), Some(code)),
            "{frame} -> {e}"
        );
    }
    let got = hub.get_json(&format!("/v1/sessions/{s}/state")).await;
    assert_eq!(got, (200, json!({"state": {"n": 1}, "version": 1})));
    // Nothing was emitted: the next change is the very next event on the other tab.
    let ack = state_frame(&mut a, set(&s, json!({"n": 3}), 1)).await;
    assert_eq!(ack["state_version"], 2, "{ack}");
    let next = b.recv().await;
    assert_eq!(
        (next["type"].as_str(), next["seq"].as_u64()),
        (Some("state.snapshot"), Some(seq + 1)),
        "{next}"
    );
    assert_eq!(next["state"], json!({"n": 3}));
}

#[tokio::test]
async fn the_sse_fallback_sets_and_reads_the_state() {
    let hub = TestHub::start_with(|c| c.state_max_bytes = 1024).await;
    let s = hub.create_session().await;
    let url = hub.url(&format!("/v1/sessions/{s}/state"));
    let mut stream = sse_support::open(&sse_support::events_url(&hub.url(""), &s), None).await;
    let snap = stream.next_event().await;
    assert_eq!(
        (snap.event.as_str(), snap.json()["state"].clone()),
        ("snapshot", Value::Null)
    );
    let post = |body: Value| {
        let url = url.clone();
        async move {
            let r = http().post(url).json(&body).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (status, ack) = post(json!({"state": {"a": [1]}, "version": 0})).await;
    assert_eq!(
        (status, ack["type"].clone(), ack["state_version"].clone()),
        (200, json!("ack"), json!(1)),
        "{ack}"
    );
    let (status, ack) =
        post(json!({"patch": [{"op": "add", "path": "/a/-", "value": 2}], "version": 1})).await;
    assert_eq!(
        (status, ack["state_version"].clone()),
        (200, json!(2)),
        "{ack}"
    );
    for (body, want, code) in [
        (json!({"state": {"a": 0}, "version": 1}), 409, "conflict"),
        (
            json!({"state": {"a": "x".repeat(2000)}, "version": 2}),
            413,
            "too_large",
        ),
        (
            json!({"state": {}, "patch": [], "version": 2}),
            400,
            "bad_request",
        ),
        (
            json!({"patch": [{"op": "test", "path": "/a/0", "value": 9}], "version": 2}),
            400,
            "bad_request",
        ),
    ] {
        let (status, e) = post(body.clone()).await;
        assert_eq!(
            (status, e["error"]["code"].as_str()),
            (want, Some(code)),
            "{body} -> {e}"
        );
    }
    let got = hub.get_json(&format!("/v1/sessions/{s}/state")).await;
    assert_eq!(got, (200, json!({"state": {"a": [1, 2]}, "version": 2})));
    // The stream told both changes, as sequenced events with their positions as ids.
    let events = stream.until(|v| v["version"] == 2).await;
    let told: Vec<(&str, Value)> = events
        .iter()
        .map(|e| (e.event.as_str(), e.json()["version"].clone()))
        .collect();
    assert_eq!(
        told,
        vec![("state.snapshot", json!(1)), ("state.delta", json!(2))]
    );
    assert!(events.iter().all(|e| e.id.is_some()), "{events:?}");
}

#[tokio::test]
async fn the_state_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let hub = BinHub::start(dir.path(), &["--scripted-delay-ms", "5"]).await;
    let s = support::create_session(&hub.url("/v1/sessions")).await;
    let mut t = WsClient::connect(&hub.ws_url()).await;
    t.join(&s).await;
    let ack = state_frame(
        &mut t,
        set(&s, json!({"title": "List", "todo": ["milk"]}), 0),
    )
    .await;
    assert_eq!(ack["state_version"], 1, "{ack}");
    let said = t.say(&s, "m1", TOOL_PATCH).await;
    let end = t.until_run_end(said["run_id"].as_str().unwrap()).await;
    assert_eq!(end["type"], "run.completed", "{end}");
    // The last change is acknowledged, so it is durable: the kill comes right after the ack.
    let ack = state_frame(
        &mut t,
        patch(&s, json!([{"op": "add", "path": "/n", "value": 1}]), 2),
    )
    .await;
    assert_eq!(ack["state_version"], 3, "{ack}");
    hub.kill9().await;

    let hub = BinHub::start(dir.path(), &["--scripted-delay-ms", "5"]).await;
    let expected = json!({"title": "Shopping", "todo": ["milk", "eggs"], "n": 1});
    let r = http()
        .get(hub.url(&format!("/v1/sessions/{s}/state")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"state": expected, "version": 3})
    );
    let mut t = WsClient::connect(&hub.ws_url()).await;
    let snap = t.join(&s).await;
    assert_eq!(
        (snap["state"].clone(), snap["state_version"].clone()),
        (expected, json!(3)),
        "{snap}"
    );
    // And it goes on from there: version 3 is current, 2 is stale.
    let e = state_frame(&mut t, set(&s, json!({}), 2)).await;
    assert_eq!(e["code"], "conflict", "{e}");
    let ack = state_frame(&mut t, set(&s, json!({"fresh": true}), 3)).await;
    assert_eq!(ack["state_version"], 4, "{ack}");
}
