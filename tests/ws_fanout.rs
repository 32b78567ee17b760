//! Fan-out, ack/idempotency and load sanity over the native WebSocket protocol.

use crate::support;

use serde_json::{json, Value};
use support::{TestHub, WsClient};

fn text_of_deltas(events: &[Value], run_id: &str) -> String {
    events
        .iter()
        .filter(|e| e["type"] == "run.delta" && e["run_id"] == run_id)
        .map(|e| e["text"].as_str().unwrap().to_owned())
        .collect()
}

fn assert_contiguous(events: &[Value]) {
    for w in events.windows(2) {
        assert_eq!(w[0]["epoch"], w[1]["epoch"]);
        assert_eq!(
            w[1]["seq"].as_u64().unwrap(),
            w[0]["seq"].as_u64().unwrap() + 1,
            "seqs rise by exactly 1: {} then {}",
            w[0],
            w[1]
        );
    }
}

/// Issue 2, test 1: three tabs receive identical sequenced events; final text = deltas.
#[tokio::test]
async fn three_tabs_see_identical_events() {
    let hub = TestHub::start().await;
    let s = hub.create_session().await;
    let mut tabs = [hub.ws().await, hub.ws().await, hub.ws().await];
    for t in tabs.iter_mut() {
        let snap = t.join(&s).await;
        assert_eq!(snap["seq"], 0);
    }
    let ack = tabs[0].say(&s, "c-1", "hello there world").await;
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_eq!(ack["duplicate"], false);
    assert_eq!(ack["ref"], "c-1");
    let run_id = ack["run_id"].as_str().unwrap().to_owned();
    let mut finals = Vec::new();
    for t in tabs.iter_mut() {
        let end = t.until_run_end(&run_id).await;
        assert_eq!(end["type"], "run.completed");
        finals.push(end);
    }
    let reference = tabs[0].events.clone();
    assert!(reference.len() >= 4);
    assert_contiguous(&reference);
    assert_eq!(reference[0]["seq"], 1);
    assert_eq!(reference[0]["type"], "message");
    assert_eq!(reference[0]["seq"], ack["seq"]);
    for t in &tabs[1..] {
        assert_eq!(t.events, reference, "identical event objects in every tab");
    }
    let text = finals[0]["item"]["text"].as_str().unwrap();
    assert_eq!(text, text_of_deltas(&reference, &run_id));
    assert_eq!(
        text,
        sessionhub::agent::scripted::scripted_reply("hello there world", 8)
    );
    let items = hub.items(&s).await;
    assert_eq!(items.len(), 2);
    assert_eq!(items[1]["text"], text);
    assert_eq!(items[1]["status"], "complete");
}

/// Issue 2, test 4: a repeated client_msg_id gets the original ack, one message, one run.
#[tokio::test]
async fn duplicate_send_is_idempotent() {
    let hub = TestHub::start().await;
    let s = hub.create_session().await;
    let mut tab = hub.ws().await;
    tab.join(&s).await;
    let first = tab.say(&s, "dup-1", "once").await;
    let run_id = first["run_id"].as_str().unwrap().to_owned();
    tab.until_run_end(&run_id).await;
    let again = tab.say(&s, "dup-1", "once").await;
    assert_eq!(again["duplicate"], true);
    for k in ["item_id", "epoch", "seq", "client_msg_id"] {
        assert_eq!(again[k], first[k], "{k}");
    }
    let other_text = tab.say(&s, "dup-1", "different").await;
    assert_eq!(other_text["type"], "error");
    assert_eq!(other_text["code"], "bad_request");
    let items = hub.items(&s).await;
    assert_eq!(items.len(), 2, "one message, one reply: {items:?}");
    // Nothing else was emitted after the first run ended.
    tab.send(json!({"type": "ping", "ref": 9})).await;
    let frames = tab.recv_until(|v| v["type"] == "pong").await;
    assert_eq!(frames.len(), 1, "no stray events: {frames:?}");
    assert_eq!(frames[0]["ref"], 9);
}

/// Issue 2, test 9: 200 sessions x 3 tabs with concurrent runs complete with identical text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_sanity_200_sessions_3_tabs() {
    let hub = TestHub::start().await;
    let url = hub.ws_url();
    let mut tasks = Vec::new();
    for i in 0..200 {
        let s = hub.create_session().await;
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let mut tabs = Vec::new();
            for _ in 0..3 {
                let mut t = WsClient::connect(&url).await;
                t.join(&s).await;
                tabs.push(t);
            }
            let msg = format!("load test number {i}");
            let ack = tabs[0].say(&s, &format!("m{i}"), &msg).await;
            let run_id = ack["run_id"].as_str().unwrap().to_owned();
            let mut texts = Vec::new();
            for t in tabs.iter_mut() {
                let end = t.until_run_end(&run_id).await;
                assert_eq!(end["type"], "run.completed");
                texts.push(end["item"]["text"].as_str().unwrap().to_owned());
                assert_eq!(texts.last().unwrap(), &text_of_deltas(&t.events, &run_id));
            }
            assert!(texts.iter().all(|t| *t == texts[0]));
            assert_eq!(
                texts[0],
                sessionhub::agent::scripted::scripted_reply(&msg, 8)
            );
        }));
    }
    for t in tasks {
        t.await.expect("session task");
    }
}
