//! The `state__patch` server tool with the OpenAI agent against the scripted upstream of
//! `tests/upstream` (PROTOCOL 1.2): the model is offered the tool only when the session has a
//! state document, its call patches the document and the model is told the outcome in its next
//! turn; a patch that does not apply fails the call, the model is told why, and nothing changes.

use crate::support;
use crate::upstream;

use std::time::Duration;

use serde_json::{json, Value};
use support::{TestHub, WsClient};
use upstream::{CallPart, Reply, Upstream};

const WAIT: Duration = Duration::from_secs(10);

/// The names of the tools a recorded request offered.
fn offered(body: &Value) -> Vec<String> {
    body["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["function"]["name"].as_str().map(str::to_owned))
        .collect()
}

/// The `content` of the tool message answering `call_id` in a recorded request.
fn tool_answer(body: &Value, call_id: &str) -> Option<String> {
    body["messages"]
        .as_array()?
        .iter()
        .find(|m| m["role"] == "tool" && m["tool_call_id"] == call_id)
        .and_then(|m| m["content"].as_str().map(str::to_owned))
}

async fn set_state(t: &mut WsClient, s: &str, state: Value, version: u64) {
    t.send(json!({"type": "state_set", "session": s, "state": state, "version": version}))
        .await;
    let frames = t
        .recv_until(|v| v["type"] == "ack" || v["type"] == "error")
        .await;
    let ack = frames.last().unwrap();
    assert_eq!(ack["state_version"], version + 1, "{ack}");
}

#[tokio::test]
async fn the_model_gets_the_state_tool_only_with_state_and_its_patch_applies() {
    let up = Upstream::start().await;
    let base = up.base_url.clone();
    let hub = TestHub::start_with(move |c| upstream::point_hub_at(c, &base)).await;
    let s = hub.create_session().await;
    let mut t = hub.ws().await;
    t.join(&s).await;

    // No document: no state tool.
    let ack = t.say(&s, "m1", "hello").await;
    t.until_run_end(ack["run_id"].as_str().unwrap()).await;
    let first = up.requests()[0].body.clone();
    assert!(
        !offered(&first).contains(&"state__patch".to_owned()),
        "{first}"
    );

    // With a document the tool is offered; the model's call patches it.
    set_state(&mut t, &s, json!({"todo": ["milk"]}), 0).await;
    let args = r#"{"patch":[{"op":"add","path":"/todo/-","value":"eggs"}]}"#;
    up.push(Reply::calls(
        vec![vec![CallPart::whole(0, "call_p", "state__patch", args)]],
        "tool_calls",
    ));
    let ack = t.say(&s, "m2", "add eggs").await;
    let frames = t
        .recv_until(|v| support::ends_run(v, ack["run_id"].as_str().unwrap()))
        .await;
    let end = frames.last().unwrap();
    assert_eq!(end["type"], "run.completed", "{end}");
    let delta = frames
        .iter()
        .find(|f| f["type"] == "state.delta")
        .expect("state.delta");
    assert_eq!(delta["version"], 2, "{delta}");
    let reqs = up
        .wait_for("the turn after the call", WAIT, |r| {
            (r.len() >= 3).then(|| r.to_vec())
        })
        .await;
    assert!(
        offered(&reqs[1].body).contains(&"state__patch".to_owned()),
        "{}",
        reqs[1].body
    );
    // The tool's description shows the model the document as it is at each turn.
    let described = |body: &Value| {
        body["tools"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| t["function"]["name"] == "state__patch")
            .and_then(|t| t["function"]["description"].as_str().map(str::to_owned))
            .unwrap_or_default()
    };
    let before = described(&reqs[1].body);
    assert!(
        before.contains(r#"(version 1) is: {"todo":["milk"]}"#),
        "{before}"
    );
    let after = described(&reqs[2].body);
    assert!(
        after.contains(r#"(version 2) is: {"todo":["milk","eggs"]}"#),
        "{after}"
    );
    let told = tool_answer(&reqs[2].body, "call_p").expect("the tool's result went back");
    assert!(told.contains("version 2"), "{told}");
    let got = hub.get_json(&format!("/v1/sessions/{s}/state")).await;
    assert_eq!(
        got,
        (
            200,
            json!({"state": {"todo": ["milk", "eggs"]}, "version": 2})
        )
    );

    // A patch that does not apply: the call fails, the model is told why, nothing changes.
    let bad = r#"{"patch":[{"op":"remove","path":"/todo/5"}]}"#;
    up.push(Reply::calls(
        vec![vec![CallPart::whole(0, "call_bad", "state__patch", bad)]],
        "tool_calls",
    ));
    let ack = t.say(&s, "m3", "remove the sixth").await;
    let frames = t
        .recv_until(|v| support::ends_run(v, ack["run_id"].as_str().unwrap()))
        .await;
    assert!(
        !frames.iter().any(|f| f["type"] == "state.delta"),
        "{frames:?}"
    );
    let result = frames
        .iter()
        .find(|f| f["type"] == "tool.result")
        .expect("tool.result");
    assert_eq!(result["item"]["status"], "failed", "{result}");
    let reqs = up
        .wait_for("the turn after the failed call", WAIT, |r| {
            (r.len() >= 5).then(|| r.to_vec())
        })
        .await;
    let told = tool_answer(&reqs[4].body, "call_bad").expect("the failure went back");
    assert!(told.contains("does not apply"), "{told}");
    let got = hub.get_json(&format!("/v1/sessions/{s}/state")).await;
    assert_eq!(
        got,
        (
            200,
            json!({"state": {"todo": ["milk", "eggs"]}, "version": 2})
        )
    );
}
