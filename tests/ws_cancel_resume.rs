//! Cancel (guarantee 3) and resume (guarantee 2) over the native WebSocket protocol.

use crate::support;

use std::sync::atomic::Ordering;

use serde_json::json;
use support::{TestHub, TrackingAgent, WsClient};

/// Issue 2, test 2: cancel from tab B while a run streams.
#[tokio::test]
async fn cancel_from_another_tab_stops_the_agent_and_keeps_partial_text() {
    let agent = TrackingAgent::new(400, 10);
    let hub = TestHub::start_with_agent(|_| {}, agent.clone()).await;
    let s = hub.create_session().await;
    let mut a = hub.ws().await;
    let mut b = hub.ws().await;
    a.join(&s).await;
    b.join(&s).await;
    let ack = a.say(&s, "c1", "please stream a long answer").await;
    let run_id = ack["run_id"].as_str().unwrap().to_owned();
    // Wait until B has seen some text, then cancel from B.
    b.recv_until(|v| v["type"] == "run.delta").await;
    b.recv_until(|v| v["type"] == "run.delta").await;
    let asked = std::time::Instant::now();
    b.send(json!({"type": "cancel", "session": s, "run_id": run_id}))
        .await;
    let end_b = b.until_run_end(&run_id).await;
    let end_a = a.until_run_end(&run_id).await;
    let took = asked.elapsed();
    agent.wait_dropped(1).await;
    assert_eq!(end_a, end_b);
    assert_eq!(end_a["type"], "run.cancelled");
    let item = &end_a["item"];
    assert_eq!(item["status"], "cancelled");
    let partial = item["text"].as_str().unwrap();
    assert!(!partial.is_empty());
    let deltas: String = a
        .events
        .iter()
        .filter(|e| e["type"] == "run.delta")
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    assert_eq!(partial, deltas, "partial text equals the deltas fanned out");
    eprintln!("cancel frame to run.cancelled on both tabs: {took:?}");
    assert!(
        took < std::time::Duration::from_secs(2),
        "cancel reached every tab in {took:?}"
    );
    let items = hub.items(&s).await;
    assert_eq!(items[1]["status"], "cancelled");
    assert_eq!(items[1]["text"], partial);
    // No delta of the cancelled run arrives after its terminal event; the next message runs.
    let ack2 = a.say(&s, "c2", "next one").await;
    let frames = a.recv_until(|v| v["type"] == "run.started").await;
    assert!(
        frames.iter().all(|f| f["run_id"] != run_id),
        "stray frames of the cancelled run: {frames:?}"
    );
    let run2 = ack2["run_id"].as_str().unwrap().to_owned();
    b.send(json!({"type": "cancel", "session": s})).await;
    let end2 = a.until_run_end(&run2).await;
    assert_eq!(end2["type"], "run.cancelled");
    assert_eq!(agent.started.load(Ordering::SeqCst), 2);
    agent.wait_dropped(2).await;
    // Cancelling again: nothing active.
    b.send(json!({"type": "cancel", "session": s, "ref": "x"}))
        .await;
    let err = b.recv_until(|v| v["type"] == "error").await.pop().unwrap();
    assert_eq!(err["code"], "no_active_run");
    assert_eq!(err["ref"], "x");
}

/// Issue 2, test 3: a tab that drops mid-run resumes with exactly the missed events; with a
/// too-old seq or a foreign epoch it gets a snapshot; either way its state matches.
#[tokio::test]
async fn resume_replays_exactly_the_missed_events_or_sends_a_snapshot() {
    let hub = TestHub::start_with(|c| {
        c.scripted_deltas = 60;
        c.scripted_delay_ms = 5;
        c.replay_tail = 1024;
    })
    .await;
    let s = hub.create_session().await;
    let mut stay = hub.ws().await;
    let mut state_stay = Vec::new();
    support::apply_frame(&mut state_stay, &stay.join(&s).await);
    let mut leaver = hub.ws().await;
    let mut state_leaver = Vec::new();
    support::apply_frame(&mut state_leaver, &leaver.join(&s).await);
    let ack = stay.say(&s, "r1", "resume me please").await;
    let run_id = ack["run_id"].as_str().unwrap().to_owned();
    // The leaver reads a few deltas, then drops.
    let seen = leaver.recv_until(|v| v["type"] == "run.delta").await;
    for f in seen.iter().filter(|f| support::is_event(f)) {
        support::apply_frame(&mut state_leaver, f);
    }
    let last = leaver.events.last().unwrap().clone();
    let (epoch, seq) = (
        last["epoch"].as_str().unwrap().to_owned(),
        last["seq"].as_u64().unwrap(),
    );
    drop(leaver);
    // Let the run go on, then resume.
    stay.recv_until(|v| v["type"] == "run.delta" && v["seq"].as_u64().unwrap() > seq + 10)
        .await;
    let mut back = WsClient::connect(&hub.ws_url()).await;
    let sub = back.subscribe(&s, Some((&epoch, seq))).await;
    assert_eq!(sub["resume"], "replay");
    let end = back.until_run_end(&run_id).await;
    // Exactly the missed events: contiguous from seq + 1, no duplicate.
    assert_eq!(back.events[0]["seq"].as_u64().unwrap(), seq + 1);
    for w in back.events.windows(2) {
        assert_eq!(
            w[1]["seq"].as_u64().unwrap(),
            w[0]["seq"].as_u64().unwrap() + 1
        );
    }
    for e in &back.events {
        support::apply_frame(&mut state_leaver, e);
    }
    let stay_end = stay.until_run_end(&run_id).await;
    for e in &stay.events {
        support::apply_frame(&mut state_stay, e);
    }
    assert_eq!(end, stay_end);
    assert_eq!(
        state_leaver, state_stay,
        "resumed state equals the state of a tab that never left"
    );

    // Foreign epoch and a seq beyond the head: snapshot, consistent with the same state.
    for since in [("other-epoch", 3u64), (epoch.as_str(), 1_000_000)] {
        let mut c = WsClient::connect(&hub.ws_url()).await;
        let sub = c.subscribe(&s, Some(since)).await;
        assert_eq!(sub["resume"], "snapshot");
        let snap = c.recv().await;
        assert_eq!(snap["type"], "snapshot");
        assert_eq!(snap["seq"], sub["head_seq"]);
        let mut st = Vec::new();
        support::apply_frame(&mut st, &snap);
        assert_eq!(st, state_stay);
    }
    // Since equal to the head: a replay of zero events.
    let head = stay.events.last().unwrap()["seq"].as_u64().unwrap();
    let mut c = WsClient::connect(&hub.ws_url()).await;
    let sub = c.subscribe(&s, Some((&epoch, head))).await;
    assert_eq!(sub["resume"], "replay");
    c.send(json!({"type": "ping"})).await;
    assert_eq!(c.recv().await["type"], "pong");
}

/// A seq older than the replay tail gets a snapshot.
#[tokio::test]
async fn resume_older_than_the_tail_gets_a_snapshot() {
    let hub = TestHub::start_with(|c| {
        c.scripted_deltas = 40;
        c.scripted_delay_ms = 1;
        c.replay_tail = 10;
    })
    .await;
    let s = hub.create_session().await;
    let mut t = hub.ws().await;
    t.join(&s).await;
    let ack = t.say(&s, "a", "fill the tail").await;
    let end = t.until_run_end(ack["run_id"].as_str().unwrap()).await;
    let epoch = end["epoch"].as_str().unwrap();
    let mut c = WsClient::connect(&hub.ws_url()).await;
    let sub = c.subscribe(&s, Some((epoch, 2))).await;
    assert_eq!(sub["resume"], "snapshot");
    let snap = c.recv().await;
    assert_eq!(snap["items"].as_array().unwrap().len(), 2);
    assert_eq!(snap["items"][1]["text"], end["item"]["text"]);
    assert!(snap["active_run"].is_null());
}
