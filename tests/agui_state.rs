//! Shared state on `POST /agui` (PROTOCOL 1.2): the official `@ag-ui/client` 1.0.0 and 0.0.59
//! accept `STATE_SNAPSHOT` and `STATE_DELTA`, and their own state after the run (computed by
//! applying those events) is the expected document; a native tab sees the same changes as
//! sequenced events; bad `state` input is refused before anything is stored.

use crate::agui;
use crate::support;

use serde_json::{json, Value};
use support::{http, TestHub};

use agui::{input_v1, types, user, AguiStream};

const DELTAS: u32 = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_client_versions_apply_the_state_snapshot_and_delta() {
    agui::require_clients();
    let hub = TestHub::start_with(|c| c.scripted_deltas = DELTAS).await;
    let base = hub.url("");
    agui::both_clients_pass(&base, DELTAS, &["state"], &["state"]).await;
}

#[tokio::test]
async fn the_run_input_state_is_adopted_and_tabs_see_it_as_events() {
    let hub = TestHub::start_with(|c| c.scripted_deltas = DELTAS).await;
    let (session, mut tab) = agui::watched(&hub).await;
    let client = http();
    let url = hub.url("/agui");
    let mut body = input_v1(&session, "r1", json!([user("u1", "hello")]));
    body["state"] = json!({"step": 1});
    let events = AguiStream::open(&client, &url, &body).await.rest().await;
    let kinds = types(&events);
    assert_eq!(&kinds[..2], &["RUN_STARTED", "STATE_SNAPSHOT"], "{kinds:?}");
    assert_eq!(events[1]["snapshot"], json!({"step": 1}));
    assert_eq!(
        kinds.iter().filter(|k| k.starts_with("STATE_")).count(),
        1,
        "{kinds:?}"
    );
    // The adoption is a sequenced change before the message.
    let frames = tab.recv_until(|v| v["type"] == "message").await;
    let adopted = frames
        .iter()
        .find(|f| f["type"] == "state.snapshot")
        .expect("state.snapshot");
    assert_eq!(
        (adopted["state"].clone(), adopted["version"].clone()),
        (json!({"step": 1}), json!(1))
    );
    // `{}` (what clients send before any state) leaves the document as it is, and the stream
    // still opens with it.
    let body = input_v1(
        &session,
        "r2",
        json!([user("u1", "hello"), user("u2", "again")]),
    );
    let events = AguiStream::open(&client, &url, &body).await.rest().await;
    assert_eq!(&types(&events)[..2], &["RUN_STARTED", "STATE_SNAPSHOT"]);
    let got = hub.get_json(&format!("/v1/sessions/{session}/state")).await;
    assert_eq!(got, (200, json!({"state": {"step": 1}, "version": 1})));
}

#[tokio::test]
async fn bad_state_input_is_refused_and_stores_nothing() {
    let hub = TestHub::start_with(|c| c.state_max_bytes = 512).await;
    let client = http();
    let url = hub.url("/agui");
    for (i, (state, status, code)) in [
        (json!([1, 2]), 400, "bad_request"),
        (json!("text"), 400, "bad_request"),
        (json!({"big": "x".repeat(1000)}), 413, "too_large"),
    ]
    .into_iter()
    .enumerate()
    {
        let thread = format!("t-bad-{i}");
        let mut body = input_v1(&thread, "r1", json!([user("u1", "hello")]));
        body["state"] = state.clone();
        let r = client.post(&url).json(&body).send().await.unwrap();
        let got = r.status().as_u16();
        let e: Value = r.json().await.unwrap();
        assert_eq!(
            (got, e["error"]["code"].as_str()),
            (status, Some(code)),
            "{state} -> {e}"
        );
        // Nothing stored: the thread does not exist.
        let (status, _) = hub.get_json(&format!("/v1/sessions/{thread}/state")).await;
        assert_eq!(status, 404, "{thread}");
    }
}

#[tokio::test]
async fn a_change_from_a_native_tab_waits_for_the_open_message_to_end() {
    let hub = TestHub::start_with(|c| {
        c.scripted_deltas = 40;
        c.scripted_delay_ms = 20;
    })
    .await;
    let (session, mut tab) = agui::watched(&hub).await;
    let mut body = input_v1(&session, "r1", json!([user("u1", "hello")]));
    body["state"] = json!({"a": 1});
    let mut stream = AguiStream::open(&http(), &hub.url("/agui"), &body).await;
    let mut events = stream.until("TEXT_MESSAGE_CONTENT").await;
    // The message is open now (40 deltas, 20 ms apart): another client changes the state.
    tab.send(json!({"type": "state_set", "session": session, "state": {"a": 2}, "version": 1}))
        .await;
    let acked = tab
        .recv_until(|v| v["type"] == "ack" || v["type"] == "error")
        .await;
    assert_eq!(acked.last().unwrap()["state_version"], 2, "{acked:?}");
    events.extend(stream.rest().await);
    let kinds = types(&events);
    let end = kinds
        .iter()
        .position(|k| *k == "TEXT_MESSAGE_END")
        .expect("TEXT_MESSAGE_END");
    let snapshots: Vec<usize> = (0..kinds.len())
        .filter(|i| kinds[*i] == "STATE_SNAPSHOT")
        .collect();
    assert_eq!(snapshots.len(), 2, "{kinds:?}");
    // Held until the message ended, then sent before the run's end.
    assert_eq!(snapshots[1], end + 1, "{kinds:?}");
    assert_eq!(events[snapshots[1]]["snapshot"], json!({"a": 2}));
    assert_eq!(kinds.last(), Some(&"RUN_FINISHED"), "{kinds:?}");
}
