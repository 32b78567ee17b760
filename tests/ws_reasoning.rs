//! Reasoning on the native transports (PROTOCOL 1.2), with the scripted agent's `/think`: two
//! WebSocket tabs and an SSE stream see the same `item.started` / `reasoning.delta` /
//! `item.completed` events in order, the reply's `run.delta`s hold none of the reasoning, a
//! resume (WebSocket `since`, SSE `Last-Event-ID`) replays them, listings and snapshots show
//! the item, and a `kill -9` mid-reasoning brings it back `interrupted` with its checkpointed
//! text.

use crate::sse_support;
use crate::support;

use serde_json::Value;
use sessionhub::agent::scripted::{scripted_reasoning, scripted_reply};
use support::{BinHub, TestHub, WsClient};

const DELTAS: u32 = 8;

/// The events of `run`, from its `run.started` to its end.
fn run_events(events: &[Value], run: &str) -> Vec<Value> {
    events
        .iter()
        .filter(|e| e["run_id"] == run)
        .cloned()
        .collect()
}

fn texts(events: &[Value], kind: &str) -> String {
    events
        .iter()
        .filter(|e| e["type"] == kind)
        .map(|e| e["text"].as_str().expect("text"))
        .collect()
}

#[tokio::test]
async fn every_tab_sees_the_same_reasoning_events_and_a_resume_replays_them() {
    let hub = TestHub::start_with(|c| {
        c.scripted_deltas = DELTAS;
        c.scripted_delay_ms = 5;
    })
    .await;
    let s = hub.create_session().await;
    let mut a = hub.ws().await;
    let mut b = hub.ws().await;
    a.join(&s).await;
    let subscribed = b.subscribe(&s, None).await;
    b.recv().await;
    let (epoch, head) = (
        subscribed["epoch"].as_str().unwrap().to_owned(),
        subscribed["head_seq"].as_u64().unwrap(),
    );
    let mut sse = sse_support::open(
        &sse_support::events_url(&hub.url(""), &s),
        Some(&format!("{epoch}:{head}")),
    )
    .await;
    let text = "/think about tabs";
    let ack = a.say(&s, "c1", text).await;
    let run = ack["run_id"].as_str().expect("run id").to_owned();
    a.until_run_end(&run).await;
    b.until_run_end(&run).await;
    sse.until(|v| sse_support::ends_run(v, &run)).await;

    let mine = run_events(&a.events, &run);
    assert_eq!(mine, run_events(&b.events, &run), "both tabs, same events");
    assert_eq!(mine, run_events(&sse.events, &run), "SSE, same events");
    let kinds: Vec<&str> = mine.iter().map(|e| e["type"].as_str().unwrap()).collect();
    let n = DELTAS as usize;
    let mut want = vec!["run.started", "item.started"];
    want.extend(std::iter::repeat_n("reasoning.delta", n));
    want.push("item.completed");
    want.extend(std::iter::repeat_n("run.delta", n));
    want.push("run.completed");
    assert_eq!(kinds, want);
    let thought = scripted_reasoning(text, DELTAS).unwrap();
    let reply = scripted_reply(text, DELTAS);
    assert_eq!(texts(&mine, "reasoning.delta"), thought);
    assert_eq!(
        texts(&mine, "run.delta"),
        reply,
        "no reasoning in the reply"
    );
    let started = &mine[1]["item"];
    let answer = mine[0]["item_id"].as_str().unwrap();
    assert_eq!(started["role"], "reasoning");
    assert_eq!(started["status"], "streaming");
    assert_eq!(started["answer_id"], answer);
    assert_eq!(started["reply_to"], ack["item_id"]);
    assert!(mine[2..2 + n].iter().all(|e| e["item_id"] == started["id"]));
    let done = &mine[2 + n]["item"];
    assert_eq!(
        (done["id"].clone(), done["status"].clone()),
        (started["id"].clone(), "complete".into())
    );
    assert_eq!(done["text"], thought.as_str());
    assert_eq!(mine.last().unwrap()["item"]["text"], reply.as_str());

    // Listed (and kept) as an item of its own, after the reply it preceded.
    let items = hub.items(&s).await;
    let roles: Vec<&str> = items.iter().map(|i| i["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["user", "assistant", "reasoning"]);
    assert_eq!(&items[2], done);

    // A resume from before the run replays the same events; a snapshot lists the item.
    let mut c = hub.ws().await;
    let sub = c.subscribe(&s, Some((&epoch, head))).await;
    assert_eq!(sub["resume"], "replay");
    c.recv_until(|v| sse_support::ends_run(v, &run)).await;
    assert_eq!(
        run_events(&c.events, &run),
        mine,
        "the replay is the same events"
    );
    let mut again = sse_support::open(
        &sse_support::events_url(&hub.url(""), &s),
        Some(&format!("{epoch}:{head}")),
    )
    .await;
    again.until(|v| sse_support::ends_run(v, &run)).await;
    assert_eq!(run_events(&again.events, &run), mine, "the SSE replay too");
    let mut d = hub.ws().await;
    let snap = d.join(&s).await;
    assert!(snap["items"].as_array().unwrap().contains(done), "{snap}");
}

#[tokio::test]
async fn a_snapshot_mid_reasoning_shows_the_streaming_item() {
    let hub = TestHub::start_with(|c| {
        c.scripted_deltas = 200;
        c.scripted_delay_ms = 20;
    })
    .await;
    let s = hub.create_session().await;
    let mut a = hub.ws().await;
    a.join(&s).await;
    let ack = a.say(&s, "c1", "/think slowly").await;
    a.recv_until(|v| v["type"] == "reasoning.delta").await;
    let mut late = hub.ws().await;
    let snap = late.join(&s).await;
    let live = &snap["active_run"]["reasoning"];
    assert_eq!(live["role"], "reasoning", "{snap}");
    assert_eq!(live["status"], "streaming");
    let seq = snap["seq"].as_u64().unwrap();
    // The snapshot's text plus the deltas after it is the whole thought so far.
    a.send(serde_json::json!({"type": "cancel", "session": s}))
        .await;
    let end = late.until_run_end(ack["run_id"].as_str().unwrap()).await;
    assert_eq!(end["type"], "run.cancelled");
    let after: String = late
        .events
        .iter()
        .filter(|e| e["type"] == "reasoning.delta" && e["seq"].as_u64() > Some(seq))
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    let done = late
        .events
        .iter()
        .find(|e| e["type"] == "item.completed" && e["item"]["role"] == "reasoning")
        .expect("the reasoning item ends before the run");
    assert_eq!(done["item"]["status"], "cancelled");
    assert_eq!(
        done["item"]["text"].as_str().unwrap(),
        format!("{}{after}", live["text"].as_str().unwrap())
    );
    assert!(
        late.events.iter().all(|e| e["type"] != "run.delta"),
        "cancelled before any reply text"
    );
}

/// kill -9 while the model reasons: after the restart the reasoning item is `interrupted`
/// with a non-empty prefix of the thought (its checkpoints), and the reply item too.
#[tokio::test]
async fn kill9_mid_reasoning_comes_back_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--scripted-deltas",
        "400",
        "--scripted-delay-ms",
        "10",
        "--checkpoint-ms",
        "50",
    ];
    let hub = BinHub::start(dir.path(), &args).await;
    let s = support::create_session(&hub.url("/v1/sessions")).await;
    let mut t = WsClient::connect(&hub.ws_url()).await;
    t.join(&s).await;
    let text = "/think before the crash";
    t.say(&s, "k1", text).await;
    // About 1.5 s of reasoning: many 50 ms checkpoints, some flushed by sled before the kill.
    let mut streamed = String::new();
    while streamed.split(' ').count() < 150 {
        let f = t.recv().await;
        if f["type"] == "reasoning.delta" {
            streamed.push_str(f["text"].as_str().unwrap());
        }
    }
    hub.kill9().await;

    let hub = BinHub::start(dir.path(), &[]).await;
    let items = support::http()
        .get(hub.url(&format!("/v1/sessions/{s}/items")))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["items"]
        .as_array()
        .unwrap()
        .clone();
    let summary: Vec<(&str, &str)> = items
        .iter()
        .map(|i| (i["role"].as_str().unwrap(), i["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        summary,
        [
            ("user", "complete"),
            ("assistant", "interrupted"),
            ("reasoning", "interrupted")
        ]
    );
    let persisted = items[2]["text"].as_str().unwrap();
    let full = scripted_reasoning(text, 400).unwrap();
    assert!(full.starts_with(persisted), "a prefix of the thought");
    assert!(!persisted.is_empty(), "the checkpointed thought survived");
    assert_eq!(items[2]["answer_id"], items[1]["id"]);
    assert_eq!(items[1]["text"], "", "no reply text was streamed");
    hub.kill9().await;
}
