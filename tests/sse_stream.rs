//! The native SSE fallback against the real server: the same events as WebSocket tabs, resume
//! by `Last-Event-ID` and `?since=` without gap or duplicate, snapshots where a replay is not
//! possible, keep-alive comments, cancel, and the end of the stream.

use crate::sse_support;
use crate::support;

use serde_json::{json, Value};
use sse_support::{ends_run, events_url, open, SseItem};
use support::{http, TestHub};

fn base(hub: &TestHub) -> String {
    format!("http://{}", hub.addr)
}

async fn post(hub: &TestHub, path: &str, body: Value) -> (u16, Value) {
    let r = http()
        .post(hub.url(path))
        .json(&body)
        .send()
        .await
        .expect("POST");
    let status = r.status().as_u16();
    (status, r.json::<Value>().await.unwrap_or(Value::Null))
}

async fn say(hub: &TestHub, session: &str, cmid: &str, text: &str) -> Value {
    let (status, ack) = post(
        hub,
        &format!("/v1/sessions/{session}/messages"),
        json!({"client_msg_id": cmid, "text": text}),
    )
    .await;
    assert_eq!(status, 200, "ack: {ack}");
    ack
}

#[tokio::test]
async fn sse_and_websocket_tabs_see_identical_events() {
    let hub = TestHub::start().await;
    let s = hub.create_session().await;
    let mut ws = hub.ws().await;
    let ws_snap = ws.join(&s).await;
    let mut sse = open(&events_url(&base(&hub), &s), None).await;
    assert_eq!(sse.header("sessionhub-resume"), "snapshot");
    assert_eq!(sse.header("sessionhub-head-seq"), "0");
    let epoch = ws_snap["epoch"].as_str().expect("epoch").to_owned();
    assert_eq!(sse.header("sessionhub-epoch"), epoch);

    // The first event is the snapshot, with the same content as the WebSocket's.
    let first = sse.next_event().await;
    assert_eq!(first.event, "snapshot");
    assert_eq!(first.id.as_deref(), Some(format!("{epoch}:0").as_str()));
    assert_eq!(first.json(), ws_snap);

    // A message sent on the WebSocket, then one posted over HTTP: both tabs see every event.
    let ack = ws.say(&s, "c-ws", "hello from the websocket").await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let run1 = ws
        .until_run_end(ack["run_id"].as_str().expect("run_id"))
        .await;
    assert_eq!(run1["type"], "run.completed");
    let ack2 = say(&hub, &s, "c-sse", "hello from sse").await;
    assert_eq!(ack2["type"], "ack");
    assert_eq!(ack2["duplicate"], false);
    let run2 = ack2["run_id"].as_str().expect("run_id").to_owned();
    ws.until_run_end(&run2).await;
    let got = sse.until(|v| ends_run(v, &run2)).await;

    assert_eq!(
        sse.events, ws.events,
        "SSE and WebSocket saw different events"
    );
    assert!(
        sse.events.len() > 10,
        "expected two full runs, got {}",
        sse.events.len()
    );
    for e in &got {
        let v = e.json();
        assert_eq!(
            e.event,
            v["type"].as_str().expect("type"),
            "event name is the type"
        );
        assert_eq!(
            e.id.clone().expect("id"),
            format!("{}:{}", v["epoch"].as_str().expect("epoch"), v["seq"])
        );
    }
    // The posted message's ack names the `message` event it produced.
    let msg = sse
        .events
        .iter()
        .find(|v| v["type"] == "message" && v["item"]["client_msg_id"] == "c-sse")
        .expect("message event");
    assert_eq!(msg["seq"], ack2["seq"]);
    assert_eq!(msg["item"]["id"], ack2["item_id"]);
    let seqs: Vec<u64> = sse
        .events
        .iter()
        .map(|v| v["seq"].as_u64().expect("seq"))
        .collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "seq rises by exactly 1"
    );
}

#[tokio::test]
async fn sse_resume_by_last_event_id_has_no_gap_or_duplicate() {
    let hub = TestHub::start_with(|c| {
        c.scripted_deltas = 30;
        c.scripted_delay_ms = 15;
    })
    .await;
    let s = hub.create_session().await;
    let mut reference = hub.ws().await;
    reference.join(&s).await;
    let url = events_url(&base(&hub), &s);
    let mut first = open(&url, None).await;
    assert_eq!(first.next_event().await.event, "snapshot");

    let ack = say(&hub, &s, "c-1", "resume me without losing a word").await;
    let run = ack["run_id"].as_str().expect("run_id").to_owned();
    // Drop the stream after a few deltas, mid-run.
    let before = first
        .until(|v| v["type"] == "run.delta" && v["text"] == "resume ")
        .await;
    let last_id = before.last().and_then(|e| e.id.clone()).expect("id");
    let head_before: u64 = last_id
        .rsplit(':')
        .next()
        .expect("seq")
        .parse()
        .expect("number");
    drop(first);

    let mut second = open(&url, Some(&last_id)).await;
    assert_eq!(second.header("sessionhub-resume"), "replay");
    let after = second.until(|v| ends_run(v, &run)).await;
    assert_eq!(
        after[0].json()["seq"].as_u64(),
        Some(head_before + 1),
        "the replay starts right after Last-Event-ID"
    );
    reference.until_run_end(&run).await;

    let mut joined: Vec<Value> = before
        .iter()
        .map(|e| e.json())
        .filter(|v| v.get("seq").is_some() && v["type"] != "snapshot")
        .collect();
    joined.extend(after.iter().map(|e| e.json()));
    assert_eq!(
        joined, reference.events,
        "dropped + resumed stream differs from an uninterrupted tab"
    );
    let text: String = joined
        .iter()
        .filter(|v| v["type"] == "run.delta")
        .map(|v| v["text"].as_str().expect("text"))
        .collect();
    let done = joined.last().expect("terminal");
    assert_eq!(done["type"], "run.completed");
    assert_eq!(
        done["item"]["text"].as_str(),
        Some(text.as_str()),
        "final text is the concatenation of the deltas"
    );
}

#[tokio::test]
async fn sse_resume_by_since_and_the_header_wins() {
    let hub = TestHub::start().await;
    let s = hub.create_session().await;
    let ack = say(&hub, &s, "c-1", "one two three").await;
    let epoch = ack["epoch"].as_str().expect("epoch").to_owned();
    let run = ack["run_id"].as_str().expect("run_id").to_owned();
    let mut tab = open(&events_url(&base(&hub), &s), Some(&format!("{epoch}:0"))).await;
    let all = tab.until(|v| ends_run(v, &run)).await;
    let head = all.last().expect("terminal").json()["seq"]
        .as_u64()
        .expect("seq");
    drop(tab);

    // ?since= replays exactly what follows it.
    let mut q = open(
        &format!("{}?since={epoch}:3", events_url(&base(&hub), &s)),
        None,
    )
    .await;
    assert_eq!(q.header("sessionhub-resume"), "replay");
    assert_eq!(q.header("sessionhub-head-seq"), head.to_string());
    let replay = q.until(|v| v["seq"].as_u64() == Some(head)).await;
    let seqs: Vec<u64> = replay
        .iter()
        .map(|e| e.json()["seq"].as_u64().expect("seq"))
        .collect();
    assert_eq!(seqs, (4..=head).collect::<Vec<_>>());
    drop(q);

    // A reconnecting EventSource keeps its URL (with an old ?since=) and sends the newer
    // Last-Event-ID: the header wins, so nothing is replayed twice. `since` at the head is a
    // replay of zero events: the next event is the next live one.
    let url = format!("{}?since={epoch}:3", events_url(&base(&hub), &s));
    let mut h = open(&url, Some(&format!("{epoch}:{head}"))).await;
    assert_eq!(h.header("sessionhub-resume"), "replay");
    say(&hub, &s, "c-2", "next").await;
    let next = h.next_event().await.json();
    assert_eq!(next["seq"].as_u64(), Some(head + 1), "{next}");
    assert_eq!(next["type"], "message");
}

#[tokio::test]
async fn sse_resume_that_cannot_replay_gets_a_snapshot() {
    let hub = TestHub::start().await;
    let s = hub.create_session().await;
    let ack = say(&hub, &s, "c-1", "hello").await;
    let epoch = ack["epoch"].as_str().expect("epoch").to_owned();
    let run = ack["run_id"].as_str().expect("run_id").to_owned();
    let mut tab = open(&events_url(&base(&hub), &s), Some(&format!("{epoch}:0"))).await;
    let head = tab
        .until(|v| ends_run(v, &run))
        .await
        .last()
        .expect("end")
        .json()["seq"]
        .as_u64()
        .expect("seq");
    drop(tab);

    for since in [
        "another-epoch:3".to_owned(),
        format!("{epoch}:{}", head + 50),
    ] {
        let mut t = open(&events_url(&base(&hub), &s), Some(&since)).await;
        assert_eq!(t.header("sessionhub-resume"), "snapshot", "since {since}");
        let snap = t.next_event().await;
        assert_eq!(snap.event, "snapshot");
        let v = snap.json();
        assert_eq!(v["seq"].as_u64(), Some(head), "snapshot.seq == head_seq");
        assert_eq!(snap.id, Some(format!("{epoch}:{head}")));
        assert_eq!(v["items"].as_array().map(Vec::len), Some(2), "{v}");
        assert!(v["active_run"].is_null());
    }
}

#[tokio::test]
async fn sse_sends_keep_alive_comments_while_idle() {
    let hub = TestHub::start_with(|c| c.heartbeat_secs = 1).await;
    let s = hub.create_session().await;
    let mut tab = open(&events_url(&base(&hub), &s), None).await;
    assert_eq!(tab.next_event().await.event, "snapshot");
    match tab.next_item().await {
        SseItem::Comment(c) => assert_eq!(c, "keep-alive"),
        other => panic!("expected a keep-alive comment, got {other:?}"),
    }
}

#[tokio::test]
async fn sse_cancel_stops_the_run_for_every_tab() {
    let hub = TestHub::start_with(|c| {
        c.scripted_deltas = 400;
        c.scripted_delay_ms = 10;
    })
    .await;
    let s = hub.create_session().await;
    let mut ws = hub.ws().await;
    ws.join(&s).await;
    let mut sse = open(&events_url(&base(&hub), &s), None).await;
    sse.next_event().await;
    let a1 = say(&hub, &s, "c-1", "a long reply").await;
    let a2 = say(&hub, &s, "c-2", "queued behind it").await;
    let (run1, run2) = (
        a1["run_id"].as_str().expect("r1").to_owned(),
        a2["run_id"].as_str().expect("r2").to_owned(),
    );
    sse.until(|v| v["type"] == "run.delta").await;

    // Cancel the queued run first: its message stays, the run ends with item null.
    let (st, _) = post(
        &hub,
        &format!("/v1/sessions/{s}/cancel"),
        json!({"run_id": run2}),
    )
    .await;
    assert_eq!(st, 204);
    let q = sse
        .until(|v| ends_run(v, &run2))
        .await
        .last()
        .expect("end")
        .json();
    assert_eq!(q["type"], "run.cancelled");
    assert!(q["item"].is_null(), "{q}");

    // Then the active run, without naming it.
    let (st, body) = post(&hub, &format!("/v1/sessions/{s}/cancel"), json!({})).await;
    assert_eq!(st, 204, "{body}");
    let c = sse
        .until(|v| ends_run(v, &run1))
        .await
        .last()
        .expect("end")
        .json();
    assert_eq!(c["type"], "run.cancelled");
    assert_eq!(c["item"]["status"], "cancelled");
    let w = ws.until_run_end(&run1).await;
    assert_eq!(w, c, "both tabs see the same cancellation");
    let partial = c["item"]["text"].as_str().expect("text");
    assert!(!partial.is_empty(), "partial text kept");

    // Nothing left to cancel.
    let (st, body) = post(&hub, &format!("/v1/sessions/{s}/cancel"), json!({})).await;
    assert_eq!(
        (st, body["error"]["code"].as_str()),
        (409, Some("no_active_run"))
    );
}

#[tokio::test]
async fn sse_stream_ends_after_session_deleted() {
    let hub = TestHub::start().await;
    let s = hub.create_session().await;
    let mut tab = open(&events_url(&base(&hub), &s), None).await;
    tab.next_event().await;
    let r = http()
        .delete(hub.url(&format!("/v1/sessions/{s}")))
        .send()
        .await
        .expect("DELETE");
    assert_eq!(r.status(), 204);
    let rest = tab.until_end().await;
    assert_eq!(rest.len(), 1, "{rest:?}");
    assert_eq!(rest[0].event, "session.deleted");
    let r = sse_support::request(&events_url(&base(&hub), &s), None).await;
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn sse_stream_ends_cleanly_at_shutdown() {
    let mut hub = TestHub::start_with(|c| {
        c.scripted_deltas = 400;
        c.scripted_delay_ms = 10;
        c.drain_secs = 0;
    })
    .await;
    let s = hub.create_session().await;
    let mut tab = open(&events_url(&base(&hub), &s), None).await;
    tab.next_event().await;
    let ack = say(&hub, &s, "c-1", "interrupted by shutdown").await;
    let run = ack["run_id"].as_str().expect("run_id").to_owned();
    tab.until(|v| v["type"] == "run.delta").await;
    let stopping = tokio::spawn(async move {
        hub.stop_in_place().await;
    });
    let rest = tab.until_end().await;
    stopping.await.expect("shutdown");
    let end = rest
        .iter()
        .map(|e| e.json())
        .find(|v| ends_run(v, &run))
        .expect("terminal event before the end");
    assert_eq!(end["type"], "run.failed", "{end}");
    assert_eq!(end["error"]["code"], "interrupted");
    assert_eq!(end["item"]["status"], "interrupted");
}
