//! How an AG-UI stream ends besides success: closing it cancels what it started and keeps the
//! partial text (also while queued or while the model is silent, with keep-alives flowing), a
//! run stopped elsewhere ends in the shape each client line accepts, and failures, deleted
//! threads and shutdowns close the open message before `RUN_ERROR`.

use crate::agui;
use crate::support;

use serde_json::{json, Value};
use sessionhub::agent::scripted::scripted_reply;
use support::{http, TestHub};

use agui::{input, input_v1, next_run_id, text, tracked, types, user, watched, AguiStream, Frame};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_stream_cancels_the_run_and_keeps_the_partial_text() {
    let (hub, agent) = tracked(20, 50, |_| {}).await;
    let (session, mut ws) = watched(&hub).await;
    let prompt = "abort me in the middle";
    let mut stream = AguiStream::open(
        &http(),
        &hub.url("/agui"),
        &input(&session, "r1", json!([user("m1", prompt)])),
    )
    .await;
    let seen = stream.until("TEXT_MESSAGE_CONTENT").await;
    drop(stream);

    let run_id = next_run_id(&mut ws).await;
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
    let (session, mut ws) = watched(&hub).await;
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

    let run_id = next_run_id(&mut ws).await;
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
    let (session, mut ws) = watched(&hub).await;
    assert_eq!(
        ws.say(&session, "w1", "a tab's message").await["type"],
        "ack"
    );
    let tab_run = next_run_id(&mut ws).await;

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
    let (session, mut ws) = watched(&hub).await;
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
        let run_id = next_run_id(&mut ws).await;
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
async fn deleting_the_thread_mid_run_closes_the_message_and_ends_the_run_cancelled() {
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
    // Deleting a session ends its active run with run.cancelled before session.deleted.
    assert_eq!(tail.last().expect("last")["code"], "cancelled");
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
