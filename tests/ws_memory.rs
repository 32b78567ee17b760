//! Memory bounds (issue 15): a quiet session's packed replay tail replays the very events the
//! tabs saw live; over the sessions budget, or over its own tail budget, an idle session is
//! unloaded early and its tabs resume from a snapshot (PROTOCOL.md allows it after an idle
//! eviction), while a resume at the head still replays zero events.

use crate::support;

use serde_json::Value;
use support::{TestHub, WsClient, FRAME_TIMEOUT};

/// Run one scripted reply in a new session; returns the session, the events seen live, and
/// the tab (still subscribed).
async fn one_reply(hub: &TestHub) -> (String, Vec<Value>, WsClient) {
    let s = hub.create_session().await;
    let mut t = hub.ws().await;
    t.join(&s).await;
    let ack = t.say(&s, "m1", "hello").await;
    let run = ack["run_id"].as_str().unwrap().to_owned();
    t.until_run_end(&run).await;
    let events = t
        .events
        .iter()
        .filter(|e| e["session"] == s.as_str() && e["seq"].is_u64())
        .cloned()
        .collect();
    (s, events, t)
}

/// Wait on the hub's own state, not on time: bounded, no sleep.
async fn until(hub: &TestHub, what: &str, done: impl Fn(&TestHub) -> bool) {
    tokio::time::timeout(FRAME_TIMEOUT, async {
        while !done(hub) {
            tokio::task::yield_now().await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{what} in time"));
}

fn place(events: &[Value]) -> (String, u64) {
    let last = events.last().expect("events");
    (
        last["epoch"].as_str().unwrap().to_owned(),
        last["seq"].as_u64().unwrap(),
    )
}

#[tokio::test]
async fn a_packed_tail_replays_the_events_the_tabs_saw_live() {
    let hub = TestHub::start().await;
    let (s, live, _tab) = one_reply(&hub).await;
    // The tab stays: the session stays loaded, and turns quiet (its tail packed).
    until(&hub, "the session turned quiet", |h| {
        h.hub.metrics().sessions_quiet.get() == 1
    })
    .await;
    let (epoch, head) = place(&live);
    let mut c = WsClient::connect(&hub.ws_url()).await;
    let sub = c.subscribe(&s, Some((&epoch, 0))).await;
    assert_eq!(sub["resume"], "replay");
    let mut replayed = Vec::new();
    for _ in 0..head {
        replayed.push(c.recv().await);
    }
    assert_eq!(
        replayed, live,
        "the replay is the live stream, byte for byte in JSON"
    );
    // The subscribe brought the tail back: the session is busy until it is quiet again.
    assert_eq!(hub.hub.metrics().sessions_quiet.get(), 0);
}

#[tokio::test]
async fn over_the_sessions_budget_idle_sessions_are_unloaded_and_resume_from_a_snapshot() {
    let hub = TestHub::start_with(|c| {
        c.idle_evict_secs = 3600;
        c.sessions_memory_mb = 0;
    })
    .await;
    let (s1, live1, t1) = one_reply(&hub).await;
    let (_s2, _, t2) = one_reply(&hub).await;
    drop((t1, t2));
    until(&hub, "both sessions unloaded", |h| {
        h.hub.live_sessions() == 0
    })
    .await;
    let (epoch, head) = place(&live1);
    let mut c = WsClient::connect(&hub.ws_url()).await;
    let sub = c.subscribe(&s1, Some((&epoch, head - 1))).await;
    assert_eq!(
        (sub["epoch"].as_str(), sub["head_seq"].as_u64()),
        (Some(epoch.as_str()), Some(head))
    );
    assert_eq!(sub["resume"], "snapshot", "the tail left with the session");
    let snap = c.recv().await;
    assert_eq!(snap["items"].as_array().unwrap().len(), 2);
    let sub = c.subscribe(&s1, Some((&epoch, head))).await;
    assert_eq!(sub["resume"], "replay");
}

#[tokio::test]
async fn a_quiet_session_whose_tail_is_over_its_budget_is_unloaded() {
    let hub = TestHub::start_with(|c| {
        c.idle_evict_secs = 3600;
        c.replay_tail_bytes = 16;
    })
    .await;
    let (s, live, t) = one_reply(&hub).await;
    drop(t);
    until(&hub, "the session unloaded", |h| h.hub.live_sessions() == 0).await;
    let (epoch, head) = place(&live);
    let mut c = WsClient::connect(&hub.ws_url()).await;
    let sub = c.subscribe(&s, Some((&epoch, 1))).await;
    assert_eq!(sub["resume"], "snapshot");
    assert_eq!(sub["head_seq"], head);
}
