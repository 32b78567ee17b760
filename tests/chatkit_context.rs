//! The ChatKit oracle (strict `chatkit.types`, tests/chatkit/context.py) on requests that carry
//! `metadata`, `quoted_text`, tag data and `inference_options.model`, against a hub whose models
//! point at the recording upstream: the oracle accepts every request and answer, and the model
//! server got the picked model's upstream name and the context once, before its message.

use crate::ck;
use crate::support;
use crate::upstream;

use serde_json::{json, Value};
use sessionhub::agent::openai::CONTEXT_PREFIX;
use support::TestHub;
use upstream::Upstream;

fn context_before(body: &Value, text: &str) -> Value {
    let msgs = body["messages"].as_array().expect("messages");
    let contexts = msgs
        .iter()
        .filter(|m| {
            m["content"]
                .as_str()
                .is_some_and(|c| c.starts_with(CONTEXT_PREFIX))
        })
        .count();
    let users = msgs.iter().filter(|m| m["role"] == "user").count();
    assert_eq!(
        contexts, users,
        "one context message per user message: {body}"
    );
    let at = msgs
        .iter()
        .position(|m| m["role"] == "user" && m["content"] == text)
        .unwrap_or_else(|| panic!("no user message {text:?}: {body}"));
    let content = msgs[at - 1]["content"].as_str().expect("text");
    content
        .strip_prefix(CONTEXT_PREFIX)
        .unwrap_or_else(|| panic!("no context before {text:?}: {body}"))
        .parse()
        .expect("JSON")
}

#[tokio::test]
async fn the_oracle_accepts_context_and_model_requests_and_their_answers() {
    let up = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("models.json");
    let models = json!({"models": {
        "fast": {"base_url": up.base_url, "upstream_model": "up-fast"},
        "big": {"base_url": up.base_url, "upstream_model": "up-big"},
    }});
    std::fs::write(&file, models.to_string()).unwrap();
    let hub = TestHub::start_with(|c| {
        upstream::point_hub_at(c, &up.base_url);
        c.models.models_file = Some(file);
        c.model = "fast".into();
    })
    .await;
    let out = ck::python("context.py", &[&hub.url("/chatkit"), "big"]).await;
    assert!(out.contains("context: all 5 checks passed"), "{out}");
    let thread = out
        .lines()
        .find_map(|l| l.strip_prefix("THREAD "))
        .expect("thread id");

    let log = up.requests();
    assert_eq!(log.len(), 2, "the refused message never reached the model");
    assert!(log.iter().all(|r| r.body["model"] == "up-big"));
    assert_eq!(
        context_before(&log[0].body, "Tell me about @Pro"),
        json!({"chatkit_metadata": {"tz": "Europe/Paris"}, "quoted_text": "the Pro plan costs 20",
               "tags": [{"id": "t1", "text": "@Pro", "data": {"plan_id": "pro"}}]})
    );
    assert_eq!(
        context_before(&log[1].body, "and the price?"),
        json!({"chatkit_metadata": {"page": "/pricing"}, "quoted_text": "costs 20"})
    );
    let items = hub.items(thread).await;
    assert_eq!(items.len(), 4);
    assert_eq!(items[3]["model"], "big");
}
