//! Connection and process lifecycle: graceful shutdown (drain, 1012, clean epoch), heartbeats
//! (4001), the close handshake, and idle eviction with reload.

use crate::support;

use serde_json::json;
use support::{TestHub, WsClient};

/// Shutdown while a run streams and another is queued: the queued run is dropped with
/// `run.cancelled` (item null), the active one ends `interrupted` after the drain timeout, then
/// sockets close with 1012. A clean restart keeps the epoch.
#[tokio::test]
async fn graceful_shutdown_interrupts_drops_queue_closes_1012_and_keeps_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let mut hub = TestHub::start_in(dir.path(), |c| {
        c.scripted_deltas = 1000;
        c.scripted_delay_ms = 10;
        c.drain_secs = 1;
    })
    .await;
    let s = hub.create_session().await;
    let mut t = hub.ws().await;
    t.join(&s).await;
    let a1 = t.say(&s, "g1", "long one").await;
    let a2 = t.say(&s, "g2", "queued one").await;
    t.recv_until(|v| v["type"] == "run.delta").await;
    let stop = tokio::spawn(async move {
        hub.stop_in_place().await;
        hub
    });
    let cancelled = t
        .recv_until(|v| v["type"] == "run.cancelled")
        .await
        .pop()
        .unwrap();
    assert_eq!(cancelled["run_id"], a2["run_id"]);
    assert!(cancelled["item"].is_null());
    let failed = t.until_run_end(a1["run_id"].as_str().unwrap()).await;
    assert_eq!(failed["type"], "run.failed");
    assert_eq!(failed["error"]["code"], "interrupted");
    assert_eq!(failed["error"]["retryable"], true);
    assert_eq!(failed["item"]["status"], "interrupted");
    assert_eq!(t.until_close().await, Some(1012));
    let head = t.events.last().unwrap()["seq"].as_u64().unwrap();
    let epoch = t.events.last().unwrap()["epoch"]
        .as_str()
        .unwrap()
        .to_owned();
    drop(stop.await.unwrap());

    let hub = TestHub::start_in(dir.path(), |_| {}).await;
    let items = hub.items(&s).await;
    assert_eq!(items.len(), 3);
    assert_eq!(items[1]["status"], "interrupted");
    assert_eq!(items[1]["text"], failed["item"]["text"]);
    let mut c = WsClient::connect(&hub.ws_url()).await;
    let sub = c.subscribe(&s, Some((&epoch, head))).await;
    assert_eq!(
        sub["epoch"],
        epoch.as_str(),
        "a clean restart keeps the epoch"
    );
    assert_eq!(sub["head_seq"], head);
    assert_eq!(sub["resume"], "replay");
    // The next event continues the same sequence.
    let a3 = c.say(&s, "g3", "after restart").await;
    assert_eq!(a3["seq"], head + 1);
    assert_eq!(a3["epoch"], epoch.as_str());
}

/// A run that finishes within the drain timeout completes before the 1012 close.
#[tokio::test]
async fn shutdown_lets_short_runs_finish() {
    let mut hub = TestHub::start_with(|c| {
        c.scripted_deltas = 20;
        c.scripted_delay_ms = 20;
        c.drain_secs = 10;
    })
    .await;
    let s = hub.create_session().await;
    let mut t = hub.ws().await;
    t.join(&s).await;
    let a = t.say(&s, "x", "finish me").await;
    t.recv_until(|v| v["type"] == "run.delta").await;
    let stop = tokio::spawn(async move { hub.stop_in_place().await });
    let end = t.until_run_end(a["run_id"].as_str().unwrap()).await;
    assert_eq!(end["type"], "run.completed");
    assert_eq!(t.until_close().await, Some(1012));
    stop.await.unwrap();
}

/// A client that never answers pings is closed with 4001.
#[tokio::test]
async fn missed_heartbeats_close_with_4001() {
    let hub = TestHub::start_with(|c| {
        c.heartbeat_secs = 1;
        c.heartbeat_timeout_secs = 2;
    })
    .await;
    let mut raw = support::raw_ws(hub.addr).await;
    let code = tokio::time::timeout(
        std::time::Duration::from_secs(15),
        support::raw_until_close(&mut raw),
    )
    .await
    .expect("closed in time");
    assert_eq!(code, 4001);
}

/// A client-initiated close is answered with a Close frame (a clean handshake).
#[tokio::test]
async fn client_close_is_answered() {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;
    use tokio_tungstenite::tungstenite::Message;
    let hub = TestHub::start().await;
    let mut c = hub.ws().await;
    c.send(json!({"type": "ping"})).await;
    assert_eq!(c.recv().await["type"], "pong");
    c.ws.send(Message::Close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "bye".into(),
    })))
    .await
    .unwrap();
    let reply = tokio::time::timeout(support::FRAME_TIMEOUT, c.ws.next())
        .await
        .expect("close reply in time");
    match reply {
        Some(Ok(Message::Close(Some(f)))) => assert_eq!(f.code, CloseCode::Normal),
        other => panic!("expected the Close reply, got {other:?}"),
    }
    assert!(tokio::time::timeout(support::FRAME_TIMEOUT, c.ws.next())
        .await
        .expect("end in time")
        .is_none());
}

/// An idle actor is evicted and reloaded on demand with its epoch; its replay tail is gone, so
/// an older position gets a snapshot.
#[tokio::test]
async fn idle_actor_is_evicted_and_reloaded_with_its_epoch() {
    let hub = TestHub::start_with(|c| c.idle_evict_secs = 0).await;
    let s = hub.create_session().await;
    let mut t = hub.ws().await;
    t.join(&s).await;
    let a = t.say(&s, "e", "evict me").await;
    let end = t.until_run_end(a["run_id"].as_str().unwrap()).await;
    let (epoch, head) = (
        end["epoch"].as_str().unwrap().to_owned(),
        end["seq"].as_u64().unwrap(),
    );
    drop(t);
    // Waiting on the hub's own state, not on time: bounded, no sleep.
    tokio::time::timeout(support::FRAME_TIMEOUT, async {
        while hub.hub.live_sessions() > 0 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("evicted in time");
    let mut c = WsClient::connect(&hub.ws_url()).await;
    let sub = c.subscribe(&s, Some((&epoch, head - 1))).await;
    assert_eq!(sub["epoch"], epoch.as_str());
    assert_eq!(sub["head_seq"], head);
    assert_eq!(
        sub["resume"], "snapshot",
        "the tail did not survive eviction"
    );
    let snap = c.recv().await;
    assert_eq!(snap["items"].as_array().unwrap().len(), 2);
    let sub = c.subscribe(&s, Some((&epoch, head))).await;
    assert_eq!(sub["resume"], "replay");
}

/// Deleting a session mid-run ends its runs (queued, then active, each `run.cancelled`), tells
/// its subscribers and drops their subscriptions.
#[tokio::test]
async fn deleting_a_session_ends_its_runs_notifies_and_unsubscribes() {
    let hub = TestHub::start_with(|c| {
        c.scripted_deltas = 500;
        c.scripted_delay_ms = 10;
    })
    .await;
    let s = hub.create_session().await;
    let mut t = hub.ws().await;
    t.join(&s).await;
    let a1 = t.say(&s, "d1", "streaming").await;
    let a2 = t.say(&s, "d2", "queued").await;
    t.recv_until(|v| v["type"] == "run.delta").await;
    let r = support::http()
        .delete(hub.url(&format!("/v1/sessions/{s}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let frames = t.recv_until(|v| v["type"] == "session.deleted").await;
    let ends: Vec<(&str, bool)> = frames
        .iter()
        .filter(|f| f["type"] == "run.cancelled")
        .map(|f| (f["run_id"].as_str().unwrap(), f["item"].is_object()))
        .collect();
    assert_eq!(
        ends,
        [
            (a2["run_id"].as_str().unwrap(), false),
            (a1["run_id"].as_str().unwrap(), true)
        ]
    );
    t.send(json!({"type": "send", "session": s, "client_msg_id": "z", "text": "hi"}))
        .await;
    assert_eq!(t.recv().await["code"], "not_found");
    let (st, _) = hub.get_json(&format!("/v1/sessions/{s}")).await;
    assert_eq!(st, 404);
}
