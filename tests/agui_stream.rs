//! `POST /agui` against the real hub: an AG-UI run is an ordinary hub run (WebSocket tabs see
//! it live, listings show it), closing the stream cancels what it started and keeps the partial
//! text, keep-alives flow while the model is silent, and the busy policy holds.

#[path = "agui/support.rs"]
mod agui;
mod support;

use std::sync::Arc;

use serde_json::{json, Value};
use sessionhub::agent::scripted::scripted_reply;
use sessionhub::config::BusyPolicy;
use support::{http, TestHub, TrackingAgent, WsClient};

use agui::{input, text, types, user, AguiStream, Frame};

/// `input` with `protocolVersion`, as a 1.0 client sends it.
fn input_v1(thread: &str, run: &str, messages: Value) -> Value {
    let mut v = input(thread, run, messages);
    v["protocolVersion"] = json!("1.0");
    v
}

/// A hub with a tracking scripted agent of `deltas` deltas every `delay_ms`.
async fn tracked(
    deltas: u32,
    delay_ms: u64,
    edit: impl FnOnce(&mut sessionhub::config::Config),
) -> (TestHub, Arc<TrackingAgent>) {
    let agent = TrackingAgent::new(deltas, delay_ms);
    let hub = TestHub::start_with_agent(edit, agent.clone()).await;
    (hub, agent)
}

/// The next `run.started` a WebSocket tab sees.
async fn next_run_started(ws: &mut WsClient) -> Value {
    ws.recv_until(|v| v["type"] == "run.started")
        .await
        .pop()
        .expect("run.started")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agui_and_websocket_clients_see_the_same_run() {
    let hub = TestHub::start().await;
    let client = http();
    let url = hub.url("/agui");
    let mut first = AguiStream::open(
        &client,
        &url,
        &input("t-same", "r1", json!([user("u1", "first message")])),
    )
    .await;
    let first = first.rest().await;
    assert_eq!(types(&first).last(), Some(&"RUN_FINISHED"), "{first:?}");
    let a1 = first[1]["messageId"]
        .as_str()
        .expect("messageId")
        .to_owned();

    let mut ws = hub.ws().await;
    let snap = ws.join("t-same").await;
    assert_eq!(snap["items"].as_array().map(Vec::len), Some(2));

    // The client sends its whole history back, as HttpAgent does; only u2 is new.
    let history = json!([user("u1", "first message"), {"id": a1, "role": "assistant", "content": text(&first)}, user("u2", "second one here")]);
    let mut second = AguiStream::open(&client, &url, &input("t-same", "r2", history)).await;
    let events = second.rest().await;
    let shape: Vec<&str> = types(&events);
    assert_eq!(shape.first(), Some(&"RUN_STARTED"));
    assert_eq!(&shape[1..2], ["TEXT_MESSAGE_START"]);
    assert_eq!(
        &shape[shape.len() - 2..],
        ["TEXT_MESSAGE_END", "RUN_FINISHED"],
        "{shape:?}"
    );
    assert_eq!(events[0]["threadId"], "t-same");
    assert_eq!(events[0]["runId"], "r2");
    assert_eq!(events.last().expect("last")["runId"], "r2");
    let message_id = events[1]["messageId"].as_str().expect("messageId");

    let frames = ws.recv_until(|v| v["type"] == "run.completed").await;
    let message = frames
        .iter()
        .find(|v| v["type"] == "message")
        .expect("message event");
    assert_eq!(message["item"]["client_msg_id"], "u2");
    assert_eq!(message["item"]["text"], "second one here");
    let started = frames
        .iter()
        .find(|v| v["type"] == "run.started")
        .expect("run.started");
    assert_eq!(
        started["item_id"], message_id,
        "the AG-UI message is the hub item"
    );
    let ws_deltas: Vec<&str> = frames
        .iter()
        .filter(|v| v["type"] == "run.delta")
        .map(|v| v["text"].as_str().unwrap_or(""))
        .collect();
    let agui_deltas: Vec<&str> = events
        .iter()
        .filter(|e| e["type"] == "TEXT_MESSAGE_CONTENT")
        .map(|e| e["delta"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(agui_deltas, ws_deltas, "same deltas, same order");
    let completed = frames.last().expect("run.completed");
    assert_eq!(completed["item"]["text"], text(&events));
    assert_eq!(
        completed["item"]["text"],
        scripted_reply("second one here", 8)
    );

    // Listings: REST and ChatKit show the four items once each.
    let items = hub.items("t-same").await;
    let ids: Vec<&str> = items
        .iter()
        .map(|i| i["id"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(items.len(), 4, "{items:?}");
    assert_eq!((ids[1], ids[3]), (a1.as_str(), message_id));
    assert!(items.iter().all(|i| i["status"] == "complete"));
    let ck: Value = client
        .post(hub.url("/chatkit"))
        .json(&json!({"type": "items.list", "params": {"thread_id": "t-same"}}))
        .send()
        .await
        .expect("POST /chatkit")
        .json()
        .await
        .expect("JSON");
    let ck_ids: Vec<&str> = ck["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|i| i["id"].as_str().unwrap_or(""))
        .collect();
    assert!(
        ck_ids.contains(&a1.as_str()) && ck_ids.contains(&message_id),
        "ChatKit items: {ck}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_stream_cancels_the_run_and_keeps_the_partial_text() {
    let (hub, agent) = tracked(20, 50, |_| {}).await;
    let session = hub.create_session().await;
    let mut ws = hub.ws().await;
    ws.join(&session).await;
    let prompt = "abort me in the middle";
    let mut stream = AguiStream::open(
        &http(),
        &hub.url("/agui"),
        &input(&session, "r1", json!([user("m1", prompt)])),
    )
    .await;
    let seen = stream.until("TEXT_MESSAGE_CONTENT").await;
    drop(stream);

    let run_id = next_run_started(&mut ws).await["run_id"]
        .as_str()
        .expect("run_id")
        .to_owned();
    let end = ws.until_run_end(&run_id).await;
    assert_eq!(end["type"], "run.cancelled", "{end}");
    let partial = end["item"]["text"].as_str().expect("text");
    let full = scripted_reply(prompt, 20);
    assert_eq!(end["item"]["status"], "cancelled");
    assert!(
        partial.starts_with(&text(&seen))
            && full.starts_with(partial)
            && partial.len() < full.len(),
        "partial {partial:?}"
    );
    agent.wait_dropped(1).await;
    let items = hub.items(&session).await;
    assert_eq!(items[1]["status"], "cancelled");
    assert_eq!(items[1]["text"], partial);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_model_gets_keep_alives_and_a_gone_client_is_noticed() {
    // The first delta comes at once, the next after a minute: the stream is silent meanwhile.
    let (hub, agent) = tracked(3, 60_000, |c| c.heartbeat_secs = 1).await;
    let session = hub.create_session().await;
    let mut ws = hub.ws().await;
    ws.join(&session).await;
    let mut stream = AguiStream::open(
        &http(),
        &hub.url("/agui"),
        &input(&session, "r1", json!([user("m1", "slow")])),
    )
    .await;
    stream.until("TEXT_MESSAGE_CONTENT").await;
    assert_eq!(
        stream.next_frame().await,
        Some(Frame::Comment("keep-alive".into()))
    );
    assert_eq!(
        stream.next_frame().await,
        Some(Frame::Comment("keep-alive".into()))
    );
    drop(stream);

    let run_id = next_run_started(&mut ws).await["run_id"]
        .as_str()
        .expect("run_id")
        .to_owned();
    let end = ws.until_run_end(&run_id).await;
    assert_eq!(
        (end["type"].as_str(), end["item"]["text"].as_str()),
        (Some("run.cancelled"), Some("Echo: "))
    );
    agent.wait_dropped(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_a_queued_request_cancels_only_its_own_run() {
    let (hub, _agent) = tracked(10, 60, |_| {}).await;
    let session = hub.create_session().await;
    let mut ws = hub.ws().await;
    ws.join(&session).await;
    assert_eq!(
        ws.say(&session, "w1", "a tab's message").await["type"],
        "ack"
    );
    let tab_run = next_run_started(&mut ws).await["run_id"]
        .as_str()
        .expect("run_id")
        .to_owned();

    let mut stream = AguiStream::open(
        &http(),
        &hub.url("/agui"),
        &input(&session, "r1", json!([user("m1", "queued")])),
    )
    .await;
    assert_eq!(stream.next_event().await["type"], "RUN_STARTED");
    let queued = ws
        .recv_until(|v| v["type"] == "run.queued")
        .await
        .pop()
        .expect("run.queued");
    drop(stream);

    let frames = ws
        .recv_until(|v| v["type"] == "run.cancelled" || v["type"] == "run.completed")
        .await;
    let cancelled = frames.last().expect("frame");
    assert_eq!(
        cancelled["type"], "run.cancelled",
        "the queued run goes first: {frames:?}"
    );
    assert_eq!(cancelled["run_id"], queued["run_id"]);
    assert_eq!(cancelled["item"], Value::Null);
    assert_eq!(
        ws.until_run_end(&tab_run).await["type"],
        "run.completed",
        "the tab's run is not touched"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_cancelled_elsewhere_ends_in_the_shape_each_client_line_accepts() {
    let (hub, _agent) = tracked(20, 50, |_| {}).await;
    let session = hub.create_session().await;
    let mut ws = hub.ws().await;
    ws.join(&session).await;
    let client = http();
    for (n, v1) in [(1, true), (2, false)] {
        let messages = json!([user(&format!("m{n}"), "cancel me from a tab")]);
        let body = if v1 {
            input_v1(&session, "r", messages)
        } else {
            input(&session, "r", messages)
        };
        let mut stream = AguiStream::open(&client, &hub.url("/agui"), &body).await;
        stream.until("TEXT_MESSAGE_CONTENT").await;
        let run_id = next_run_started(&mut ws).await["run_id"]
            .as_str()
            .expect("run_id")
            .to_owned();
        ws.send(json!({"type": "cancel", "session": session, "run_id": run_id}))
            .await;
        let tail = stream.rest().await;
        let last = tail.last().expect("closing event");
        assert_eq!(types(&tail)[tail.len() - 2], "TEXT_MESSAGE_END", "{tail:?}");
        if v1 {
            // 1.0 only: 0.0.59 rejects a cancelled outcome.
            assert_eq!(
                (last["type"].as_str(), &last["outcome"]),
                (Some("RUN_FINISHED"), &json!({"type": "cancelled"}))
            );
        } else {
            assert_eq!(
                (last["type"].as_str(), last["code"].as_str()),
                (Some("RUN_ERROR"), Some("cancelled")),
                "{last}"
            );
        }
        assert_eq!(ws.until_run_end(&run_id).await["type"], "run.cancelled");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_failure_closes_the_message_then_reports_run_error() {
    let hub = TestHub::start().await;
    let mut stream = AguiStream::open(
        &http(),
        &hub.url("/agui"),
        &input("t-fail", "r1", json!([user("m1", "x [[fail]] y")])),
    )
    .await;
    let events = stream.rest().await;
    assert_eq!(
        types(&events),
        [
            "RUN_STARTED",
            "TEXT_MESSAGE_START",
            "TEXT_MESSAGE_CONTENT",
            "TEXT_MESSAGE_END",
            "RUN_ERROR"
        ]
    );
    assert_eq!(events[4]["code"], "upstream_unavailable");
    let items = hub.items("t-fail").await;
    assert_eq!(
        (items[1]["status"].as_str(), items[1]["text"].as_str()),
        (Some("failed"), Some("Echo: "))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_policy_reject_answers_run_error_busy_and_stores_nothing() {
    let (hub, _agent) = tracked(20, 50, |c| c.busy_policy = BusyPolicy::Reject).await;
    let session = hub.create_session().await;
    let mut ws = hub.ws().await;
    ws.join(&session).await;
    assert_eq!(
        ws.say(&session, "w1", "keep the thread busy").await["type"],
        "ack"
    );
    let tab_run = next_run_started(&mut ws).await["run_id"]
        .as_str()
        .expect("run_id")
        .to_owned();

    let body = input(&session, "r1", json!([user("m1", "refused while busy")]));
    let mut stream = AguiStream::open(&http(), &hub.url("/agui"), &body).await;
    let events = stream.rest().await;
    assert_eq!(types(&events), ["RUN_ERROR"], "{events:?}");
    assert_eq!(events[0]["code"], "busy");
    let items = hub.items(&session).await;
    assert!(
        items.iter().all(|i| i["client_msg_id"] != "m1"),
        "stored while busy: {items:?}"
    );

    // Refused means not even the id was kept: the same request works once the thread is idle.
    ws.until_run_end(&tab_run).await;
    let mut again = AguiStream::open(&http(), &hub.url("/agui"), &body).await;
    assert_eq!(types(&again.rest().await).last(), Some(&"RUN_FINISHED"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_first_requests_on_a_new_thread_make_one_session() {
    let hub = TestHub::start().await;
    let client = http();
    let url = hub.url("/agui");
    let (a, b) = (
        input("t-race", "ra", json!([user("ma", "one")])),
        input("t-race", "rb", json!([user("mb", "two")])),
    );
    let (mut sa, mut sb) = tokio::join!(
        AguiStream::open(&client, &url, &a),
        AguiStream::open(&client, &url, &b)
    );
    let (ea, eb) = tokio::join!(sa.rest(), sb.rest());
    assert_eq!(
        (types(&ea).last(), types(&eb).last()),
        (Some(&"RUN_FINISHED"), Some(&"RUN_FINISHED"))
    );
    let (_, list) = hub.get_json("/v1/sessions").await;
    assert_eq!(list["sessions"].as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(hub.items("t-race").await.len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_thread_mid_run_closes_the_message_then_reports_not_found() {
    let (hub, agent) = tracked(40, 50, |_| {}).await;
    let client = http();
    let mut stream = AguiStream::open(
        &client,
        &hub.url("/agui"),
        &input("t-del", "r1", json!([user("m1", "delete me")])),
    )
    .await;
    stream.until("TEXT_MESSAGE_CONTENT").await;
    let status = client
        .delete(hub.url("/v1/sessions/t-del"))
        .send()
        .await
        .expect("DELETE")
        .status();
    assert!(status.is_success(), "DELETE answered {status}");
    let tail = stream.rest().await;
    let shape = types(&tail);
    assert_eq!(
        &shape[shape.len() - 2..],
        ["TEXT_MESSAGE_END", "RUN_ERROR"],
        "{tail:?}"
    );
    assert_eq!(tail.last().expect("last")["code"], "not_found");
    agent.wait_dropped(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_mid_run_ends_the_stream_with_the_interrupted_run() {
    let (mut hub, _agent) = tracked(100, 50, |c| c.drain_secs = 0).await;
    let mut stream = AguiStream::open(
        &http(),
        &hub.url("/agui"),
        &input("t-stop", "r1", json!([user("m1", "stop the hub")])),
    )
    .await;
    stream.until("TEXT_MESSAGE_CONTENT").await;
    let ((), tail) = tokio::join!(hub.stop_in_place(), stream.rest());
    let shape = types(&tail);
    assert_eq!(
        &shape[shape.len() - 2..],
        ["TEXT_MESSAGE_END", "RUN_ERROR"],
        "{tail:?}"
    );
    assert_eq!(tail.last().expect("last")["code"], "interrupted");
}
