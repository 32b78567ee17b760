//! `POST /agui` against the real hub: an AG-UI run is an ordinary hub run (WebSocket tabs see
//! it live, listings show it), the busy policy holds, and a thread's first requests make one
//! session. Cancellation and the other endings are in `agui_endings.rs`.

use crate::agui;
use crate::support;

use serde_json::{json, Value};
use sessionhub::agent::scripted::scripted_reply;
use sessionhub::config::BusyPolicy;
use support::{http, TestHub};

use agui::{input, next_run_id, text, tracked, types, user, watched, AguiStream};

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
async fn busy_policy_reject_answers_run_error_busy_and_stores_nothing() {
    let (hub, _agent) = tracked(20, 50, |c| c.busy_policy = BusyPolicy::Reject).await;
    let (session, mut ws) = watched(&hub).await;
    assert_eq!(
        ws.say(&session, "w1", "keep the thread busy").await["type"],
        "ack"
    );
    let tab_run = next_run_id(&mut ws).await;

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
