//! Reasoning from an OpenAI-compatible server (PROTOCOL 1.2), with the recording upstream of
//! `tests/upstream`: `delta.reasoning_content` (DeepSeek, vLLM, llama.cpp) and `delta.reasoning`
//! (OpenRouter, Ollama) become one reasoning item beside the reply, and the next turn's request
//! carries the reply but none of the reasoning.

use crate::support;
use crate::upstream;

use serde_json::json;
use support::TestHub;
use upstream::{Ev, Reply, Upstream};

/// A raw chunk whose delta is `delta`.
fn raw(delta: serde_json::Value) -> Ev {
    Ev::Raw(
        json!({"id": "chatcmpl-r", "object": "chat.completion.chunk", "created": 1_763_700_000,
               "model": upstream::MODEL, "choices": [{"index": 0, "delta": delta, "finish_reason": null}]})
        .to_string(),
    )
}

#[tokio::test]
async fn reasoning_is_an_item_of_its_own_and_never_sent_back() {
    let up = Upstream::start().await;
    up.push(Reply::Stream(vec![
        Ev::Role,
        raw(json!({"reasoning_content": "secret plan, step one; "})),
        raw(json!({"reasoning_content": "", "reasoning": "step two."})),
        raw(json!({"content": "Visible ", "reasoning_content": null})),
        Ev::Text("answer.".into()),
        Ev::Finish("stop"),
        Ev::Done,
    ]));
    let hub = TestHub::start_with(|c| upstream::point_hub_at(c, &up.base_url)).await;
    let s = hub.create_session().await;
    let mut tab = hub.ws().await;
    tab.join(&s).await;
    let first = tab.say(&s, "c1", "plan it").await;
    let end = tab.until_run_end(first["run_id"].as_str().unwrap()).await;
    assert_eq!(end["type"], "run.completed", "{end}");
    assert_eq!(end["item"]["text"], "Visible answer.");
    let thought: String = tab
        .events
        .iter()
        .filter(|e| e["type"] == "reasoning.delta")
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    assert_eq!(thought, "secret plan, step one; step two.");
    let items = hub.items(&s).await;
    assert_eq!(items[2]["role"], "reasoning");
    assert_eq!(items[2]["text"], thought.as_str());
    assert_eq!(items[2]["status"], "complete");

    let second = tab.say(&s, "c2", "and then?").await;
    tab.until_run_end(second["run_id"].as_str().unwrap()).await;
    let log = up.requests();
    assert_eq!(log.len(), 2);
    let messages = &log[1].body["messages"];
    let roles: Vec<&str> = messages
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["system", "user", "assistant", "user"], "{messages}");
    assert_eq!(messages[2]["content"], "Visible answer.");
    let sent = log[1].body.to_string();
    assert!(
        !sent.contains("secret plan") && !sent.contains("step two"),
        "the reasoning went back to the model: {sent}"
    );
}
