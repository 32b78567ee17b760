//! Reasoning on `POST /chatkit` (PROTOCOL 1.2): a reasoning workflow (`workflow` item of type
//! `reasoning` with a `thought` task) judged by the strict `chatkit.types` oracle
//! (tests/chatkit/reasoning.py), in the stream and in `items.list` / `threads.get_by_id`; and
//! the stop button in the middle of the thinking keeps the partial thought, `cancelled`.

use crate::ck;
use crate::support;

use ck::Ck;
use support::TestHub;

const DELTAS: u32 = 6;

#[tokio::test]
async fn the_reasoning_workflow_conforms_to_chatkit_types() {
    let hub = TestHub::start_with(|c| {
        c.scripted_deltas = DELTAS;
        c.scripted_delay_ms = 5;
    })
    .await;
    let out = ck::python(
        "reasoning.py",
        &[&hub.url("/chatkit"), "--deltas", &DELTAS.to_string()],
    )
    .await;
    assert!(out.contains("reasoning: all 2 checks passed"), "{out}");
}

#[tokio::test]
async fn the_stop_button_mid_thought_keeps_the_partial_thought_cancelled() {
    let hub = TestHub::start_with(|c| {
        c.scripted_deltas = 40;
        c.scripted_delay_ms = 50;
    })
    .await;
    let ck = Ck::new(&hub);
    let (thread, _) = ck.create("hello").await;
    let mut tab = hub.ws().await;
    tab.join(&thread).await;
    let mut stream = ck.add(&thread, "/think hard").await;
    let seen = stream
        .until(|e| e["update"]["type"] == "workflow.task.added")
        .await;
    assert!(
        seen.iter().all(|e| e["type"] != "thread.item.added"
            || e["item"]["type"] == "workflow"
            || e["item"]["type"] == "user_message"),
        "no reply before the thought: {seen:?}"
    );
    drop(stream);
    let frames = tab.recv_until(|v| v["type"] == "run.cancelled").await;
    let ended = frames
        .iter()
        .find(|f| f["type"] == "item.completed" && f["item"]["role"] == "reasoning")
        .expect("the reasoning item ends before the run");
    let thought = ended["item"]["text"].as_str().expect("text").to_owned();
    assert_eq!(ended["item"]["status"], "cancelled", "{ended}");
    let full = sessionhub::agent::scripted::scripted_reasoning("/think hard", 40).unwrap();
    assert!(
        !thought.is_empty() && thought.len() < full.len() && full.starts_with(&thought),
        "a partial thought: {thought:?}"
    );
    let listed = ck.items(&thread, 20).await;
    let wf = listed["data"]
        .as_array()
        .expect("data")
        .iter()
        .find(|i| i["type"] == "workflow")
        .unwrap_or_else(|| panic!("the stopped thought is listed: {listed}"));
    assert_eq!(wf["workflow"]["tasks"][0]["content"], thought.as_str());
}
