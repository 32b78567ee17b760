//! `POST /chatkit` as one more way into the hub's sessions: ChatKit and WebSocket clients see
//! the same runs, closing a ChatKit stream is its stop button, pages span several requests,
//! and bad requests get a 4xx JSON error that changes nothing.

use crate::ck;
use crate::support;

use ck::{delta_text, is_delta, kinds, Ck};
use serde_json::{json, Value};
use support::TestHub;

/// Slow enough that a test reads a few deltas while the run is surely still streaming.
async fn slow_hub() -> TestHub {
    TestHub::start_with(|c| {
        c.scripted_deltas = 40;
        c.scripted_delay_ms = 25;
    })
    .await
}

/// The scripted agent's full reply (tests/chatkit/reference_server.py has the same rule).
fn scripted(text: &str, deltas: usize) -> String {
    sessionhub::agent::scripted::scripted_reply(text, deltas as u32)
}

#[tokio::test]
async fn chatkit_and_websocket_clients_see_the_same_run() {
    let hub = TestHub::start().await;
    let ck = Ck::new(&hub);
    let (thread, first) = ck.create("hello from chatkit").await;
    assert_eq!(
        kinds(&first)[..5],
        [
            "thread.created",
            "thread.item.done",
            "stream_options",
            "thread.item.added",
            "thread.updated"
        ]
    );

    let mut tab = hub.ws().await;
    tab.join(&thread).await;
    let events = ck.add(&thread, "second turn").await.all().await;
    let done = events.last().expect("events")["item"].clone();
    assert_eq!(done["type"], "assistant_message");

    // The tab sees the same message, run and text, under the same ids.
    let user_id = events[0]["item"]["id"].as_str().expect("user item id");
    let msg = tab
        .recv_until(|v| v["type"] == "message")
        .await
        .pop()
        .expect("message");
    assert_eq!(msg["item"]["id"], user_id);
    assert_eq!(msg["item"]["text"], "second turn");
    let started = tab
        .recv_until(|v| v["type"] == "run.started")
        .await
        .pop()
        .expect("run.started");
    assert_eq!(started["item_id"], done["id"]);
    let run_id = started["run_id"].as_str().expect("run id").to_owned();
    let end = tab.until_run_end(&run_id).await;
    assert_eq!(end["type"], "run.completed");
    assert_eq!(end["item"]["text"], done["content"][0]["text"]);
    assert_eq!(
        end["item"]["text"].as_str(),
        Some(delta_text(&events).as_str())
    );
    let tab_deltas: String = tab
        .events
        .iter()
        .filter(|v| v["type"] == "run.delta" && v["run_id"] == run_id)
        .filter_map(|v| v["text"].as_str())
        .collect();
    assert_eq!(tab_deltas, delta_text(&events));

    // A message sent from the tab shows up in ChatKit's views, with its reply.
    let ack = tab.say(&thread, "ws-1", "from the websocket tab").await;
    assert_eq!(ack["type"], "ack", "{ack}");
    tab.until_run_end(ack["run_id"].as_str().expect("run id"))
        .await;
    let items = ck.items(&thread, 50).await["data"]
        .as_array()
        .expect("data")
        .clone();
    assert_eq!(items.len(), 6, "{items:?}");
    assert_eq!(items[4]["content"][0]["text"], "from the websocket tab");
    assert_eq!(
        items[5]["content"][0]["text"],
        scripted("from the websocket tab", 8).as_str()
    );
    let (status, t) = ck
        .json(json!({"type": "threads.get_by_id", "params": {"thread_id": thread}}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(t["items"]["data"], json!(items));
    assert_eq!(t["title"], "hello from chatkit");
}

#[tokio::test]
async fn closing_the_stream_cancels_the_run_and_keeps_the_partial_text() {
    let hub = slow_hub().await;
    let ck = Ck::new(&hub);
    let (thread, _) = ck.create("first").await;
    let mut tab = hub.ws().await;
    tab.join(&thread).await;

    let mut stream = ck.add(&thread, "please stop me").await;
    let mut seen = Vec::new();
    while seen.iter().filter(|e| is_delta(e)).count() < 3 {
        seen.push(stream.next().await.expect("event"));
    }
    let item_id = seen
        .iter()
        .find(|e| e["type"] == "thread.item.added")
        .expect("added")["item"]["id"]
        .clone();
    drop(stream); // the stop button

    let started = tab
        .recv_until(|v| v["type"] == "run.started")
        .await
        .pop()
        .expect("run.started");
    let end = tab
        .until_run_end(started["run_id"].as_str().expect("run id"))
        .await;
    assert_eq!(end["type"], "run.cancelled", "{end}");
    let partial = end["item"]["text"]
        .as_str()
        .expect("partial text")
        .to_owned();
    let full = scripted("please stop me", 40);
    assert!(
        partial.starts_with(&delta_text(&seen)),
        "{partial:?} vs seen {:?}",
        delta_text(&seen)
    );
    assert!(
        full.starts_with(&partial) && partial.len() < full.len(),
        "{partial:?} is not a partial of {full:?}"
    );

    // Stored as cancelled for the hub, shown as a plain assistant message to ChatKit; the
    // "stopped" marker is the item status, which ChatKit never sees.
    let rest = hub.items(&thread).await;
    let stored = rest
        .iter()
        .find(|i| i["id"] == item_id)
        .expect("stored partial");
    assert_eq!(stored["status"], "cancelled");
    assert_eq!(stored["text"], partial.as_str());
    let listed = ck.items(&thread, 50).await;
    let last = listed["data"]
        .as_array()
        .expect("data")
        .last()
        .expect("items")
        .clone();
    assert_eq!(last["id"], item_id);
    assert_eq!(last["content"][0]["text"], partial.as_str());
    assert!(
        !listed.to_string().contains("cancelled"),
        "status leaked to ChatKit: {listed}"
    );
}

#[tokio::test]
async fn closing_a_chatkit_stream_never_cancels_a_websocket_run() {
    let hub = slow_hub().await;
    let ck = Ck::new(&hub);
    let (thread, _) = ck.create("first").await;
    let mut tab = hub.ws().await;
    tab.join(&thread).await;
    let ack = tab.say(&thread, "ws-run", "a websocket run").await;
    let ws_run = ack["run_id"].as_str().expect("run id").to_owned();
    tab.recv_until(|v| v["type"] == "run.delta" && v["run_id"] == ws_run)
        .await;

    // A ChatKit message queues behind the tab's run; closing its stream cancels only its own.
    let mut stream = ck.add(&thread, "queued from chatkit").await;
    stream.until(|e| e["type"] == "stream_options").await;
    drop(stream);
    let queued = tab
        .recv_until(|v| v["type"] == "run.cancelled")
        .await
        .pop()
        .expect("run.cancelled");
    assert_ne!(queued["run_id"], ws_run.as_str());
    assert_eq!(
        queued["item"],
        Value::Null,
        "the queued run is dropped: {queued}"
    );
    let end = tab.until_run_end(&ws_run).await;
    assert_eq!(end["type"], "run.completed", "{end}");
    assert_eq!(
        end["item"]["text"],
        scripted("a websocket run", 40).as_str()
    );
}

#[tokio::test]
async fn items_and_threads_page_across_several_requests() {
    let hub = TestHub::start_with(|c| {
        c.scripted_deltas = 2;
        c.scripted_delay_ms = 1;
    })
    .await;
    let ck = Ck::new(&hub);
    let (thread, _) = ck.create("turn 0").await;
    for i in 1..12 {
        ck.add(&thread, &format!("turn {i}")).await.all().await;
    }
    // 24 items: a default page (20) then the rest, in both orders, cursors chaining.
    let mut pages = Vec::new();
    for order in ["asc", "desc"] {
        let (mut ids, mut after) = (Vec::<String>::new(), Value::Null);
        loop {
            let mut params = json!({"thread_id": thread, "order": order});
            if !after.is_null() {
                params["after"] = after.clone();
            }
            let (status, page) = ck
                .json(json!({"type": "items.list", "params": params}))
                .await;
            assert_eq!(status, 200, "{page}");
            let data = page["data"].as_array().expect("data");
            ids.extend(
                data.iter()
                    .map(|i| i["id"].as_str().expect("id").to_owned()),
            );
            assert_eq!(page["after"], data.last().expect("non-empty page")["id"]);
            pages.push(data.len());
            if page["has_more"] == false {
                break;
            }
            after = page["after"].clone();
        }
        if order == "desc" {
            ids.reverse();
        }
        assert_eq!(ids.len(), 24);
        let texts: Vec<String> = hub
            .items(&thread)
            .await
            .iter()
            .map(|i| i["id"].as_str().expect("id").to_owned())
            .collect();
        assert_eq!(ids, texts, "{order} pages do not list the items in order");
    }
    assert_eq!(pages, [20, 4, 20, 4]);
    let (_, t) = ck
        .json(json!({"type": "threads.get_by_id", "params": {"thread_id": thread}}))
        .await;
    assert_eq!(t["items"]["data"].as_array().expect("data").len(), 20);
    assert_eq!(t["items"]["has_more"], true);
    assert_eq!(t["items"]["data"][0]["content"][0]["text"], "turn 0");

    // Threads: newest first, two per page.
    let (t2, _) = ck.create("second thread").await;
    let (t3, _) = ck.create("third thread").await;
    let (_, p1) = ck
        .json(json!({"type": "threads.list", "params": {"limit": 2}}))
        .await;
    let ids: Vec<&Value> = p1["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|t| &t["id"])
        .collect();
    assert_eq!(ids, [&json!(t3), &json!(t2)]);
    assert_eq!(p1["has_more"], true);
    let (_, p2) = ck
        .json(json!({"type": "threads.list", "params": {"limit": 2, "after": p1["after"]}}))
        .await;
    assert_eq!(p2["data"][0]["id"], thread.as_str());
    assert_eq!(p2["has_more"], false);
    let (_, asc) = ck
        .json(json!({"type": "threads.list", "params": {"limit": 2, "order": "asc"}}))
        .await;
    assert_eq!(asc["data"][0]["id"], thread.as_str());
    assert_eq!(asc["has_more"], true);
}
