//! The messages built from histories with and without tool calls, context and budgets.

use super::*;
use crate::domain::Executor;
use serde_json::{json, Value};

fn item(role: Role, status: ItemStatus, text: &str) -> Item {
    Item::new(
        "i".into(),
        role,
        text.into(),
        status,
        "2026-11-21T10:00:00.000Z".into(),
    )
}

fn with_id(mut item: Item, id: &str) -> Item {
    item.id = id.into();
    item
}

/// An assistant item (a model turn) with this id.
fn reply(id: &str, status: ItemStatus, text: &str) -> Item {
    with_id(item(Role::Assistant, status, text), id)
}

fn tool(parent: &str, call_id: &str, status: ItemStatus, output: Option<&str>) -> Item {
    Item {
        call: Some(ToolCall {
            parent_id: parent.into(),
            call_id: call_id.into(),
            name: format!("fn_{call_id}"),
            arguments: format!("{{\"id\":\"{call_id}\"}}"),
            executor: Executor::Server,
            output: output.map(str::to_owned),
        }),
        ..with_id(item(Role::Tool, status, ""), &format!("t_{call_id}"))
    }
}

fn call(call_id: &str) -> serde_json::Value {
    json!({"id": call_id, "type": "function", "function": {
        "name": format!("fn_{call_id}"), "arguments": format!("{{\"id\":\"{call_id}\"}}")}})
}

fn wire(messages: &[Message]) -> serde_json::Value {
    serde_json::to_value(messages).unwrap()
}

#[test]
fn history_in_order_with_system_prompt_and_notes() {
    let items = [
        item(Role::User, ItemStatus::Complete, "one"),
        item(Role::Assistant, ItemStatus::Complete, "reply one"),
        item(Role::User, ItemStatus::Complete, "two"),
        item(Role::Assistant, ItemStatus::Cancelled, "half a"),
        item(Role::User, ItemStatus::Complete, "three"),
        item(Role::Assistant, ItemStatus::Interrupted, ""),
        item(Role::Assistant, ItemStatus::Streaming, "never sent"),
        item(Role::User, ItemStatus::Complete, "four"),
    ];
    let got = wire(&messages(Some("be brief"), &items, 10_000));
    let note = format!("half a\n\n{STOPPED_NOTE}");
    assert_eq!(
        got,
        json!([
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "one"},
            {"role": "assistant", "content": "reply one"},
            {"role": "user", "content": "two"},
            {"role": "assistant", "content": note},
            {"role": "user", "content": "three"},
            {"role": "assistant", "content": STOPPED_NOTE},
            {"role": "user", "content": "four"},
        ])
    );
}

#[test]
fn reasoning_is_never_sent_back() {
    let mut thought = item(Role::Reasoning, ItemStatus::Complete, "secret thoughts");
    thought.answer_id = Some("a1".into());
    let items = [
        item(Role::User, ItemStatus::Complete, "one"),
        reply("a1", ItemStatus::Complete, "reply one"),
        thought,
        item(Role::Reasoning, ItemStatus::Interrupted, "cut thoughts"),
        item(Role::User, ItemStatus::Complete, "two"),
    ];
    let got = wire(&messages(None, &items, 10_000));
    assert_eq!(
        got,
        json!([
            {"role": "user", "content": "one"},
            {"role": "assistant", "content": "reply one"},
            {"role": "user", "content": "two"},
        ])
    );
}

#[test]
fn budget_keeps_the_most_recent_items() {
    let items = [
        item(Role::User, ItemStatus::Complete, "aaaaaaaaaa"),
        item(Role::Assistant, ItemStatus::Complete, "bbbbb"),
        item(Role::User, ItemStatus::Complete, "ccccc"),
    ];
    let got = wire(&messages(None, &items, 10));
    assert_eq!(
        got,
        json!([
            {"role": "assistant", "content": "bbbbb"},
            {"role": "user", "content": "ccccc"},
        ])
    );
}

#[test]
fn newest_item_goes_even_over_budget() {
    let items = [
        item(Role::User, ItemStatus::Complete, "old"),
        item(Role::User, ItemStatus::Complete, "a long question"),
    ];
    let got = wire(&messages(Some("sys"), &items, 3));
    assert_eq!(
        got,
        json!([
            {"role": "system", "content": "sys"},
            {"role": "user", "content": "a long question"},
        ])
    );
}

#[test]
fn turns_carry_their_calls_and_every_result() {
    let items = [
        item(Role::User, ItemStatus::Complete, "plan my day"),
        reply("a1", ItemStatus::Complete, "Checking."),
        tool("a1", "c1", ItemStatus::Complete, Some("sunny")),
        tool("a1", "c2", ItemStatus::Denied, None),
        tool("a1", "c3", ItemStatus::Failed, Some("timed out after 5 s")),
        reply("a2", ItemStatus::Complete, ""),
        tool("a2", "c4", ItemStatus::Cancelled, None),
        tool("a2", "c5", ItemStatus::Interrupted, Some("half")),
        tool("a2", "c6", ItemStatus::Pending, None),
        reply("a3", ItemStatus::Complete, "Done."),
    ];
    let got = wire(&messages(None, &items, 10_000));
    assert_eq!(
        got,
        json!([
            {"role": "user", "content": "plan my day"},
            {"role": "assistant", "content": "Checking.",
             "tool_calls": [call("c1"), call("c2"), call("c3")]},
            {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
            {"role": "tool", "tool_call_id": "c2", "content": DENIED_NOTE},
            {"role": "tool", "tool_call_id": "c3",
             "content": "The tool call failed: timed out after 5 s"},
            {"role": "assistant", "content": null,
             "tool_calls": [call("c4"), call("c5"), call("c6")]},
            {"role": "tool", "tool_call_id": "c4", "content": TOOL_STOPPED_NOTE},
            {"role": "tool", "tool_call_id": "c5", "content": TOOL_STOPPED_NOTE},
            {"role": "tool", "tool_call_id": "c6", "content": TOOL_STOPPED_NOTE},
            {"role": "assistant", "content": "Done."},
        ])
    );
}

#[test]
fn calls_of_a_turn_not_sent_are_not_sent() {
    let mut cut = tool("a1", "c2", ItemStatus::Cancelled, None);
    if let Some(call) = &mut cut.call {
        call.arguments = "{\"to\": \"o".into();
    }
    let items = [
        item(Role::User, ItemStatus::Complete, "q"),
        // Streaming: left out, and its call with it.
        reply("a0", ItemStatus::Streaming, ""),
        tool("a0", "c0", ItemStatus::Complete, Some("x")),
        // A call whose turn is not in the history at all.
        tool("gone", "c9", ItemStatus::Complete, Some("y")),
        reply("a1", ItemStatus::Cancelled, "Sending."),
        cut,
    ];
    let got = wire(&messages(None, &items, 10_000));
    assert_eq!(
        got,
        json!([
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": "Sending.", "tool_calls": [
                {"id": "c2", "type": "function",
                 "function": {"name": "fn_c2", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c2", "content": TOOL_STOPPED_NOTE},
        ])
    );
}

#[test]
fn context_is_its_own_system_message_before_the_user_message() {
    let mut asked = item(Role::User, ItemStatus::Complete, "what plan?");
    asked.context = Some(json!({"page": "/pricing"}));
    let items = [item(Role::User, ItemStatus::Complete, "hi"), asked];
    let got = wire(&messages(Some("sys"), &items, 10_000));
    assert_eq!(
        got,
        json!([
            {"role": "system", "content": "sys"},
            {"role": "user", "content": "hi"},
            {"role": "system",
             "content": format!("{CONTEXT_PREFIX}{{\"page\":\"/pricing\"}}")},
            {"role": "user", "content": "what plan?"},
        ])
    );
}

#[test]
fn context_sources_go_in_the_same_one_system_message() {
    let mut asked = item(Role::User, ItemStatus::Complete, "what plan?");
    asked.context = Some(json!({"page": "/pricing"}));
    asked.context_sources = Some(json!({"quoted_text": "Pro plan", "identity": {"sub": "u1"}}));
    let mut bare = item(Role::User, ItemStatus::Complete, "and then?");
    bare.context_sources = Some(json!({"session_metadata": {"plan": "pro"}}));
    let got = wire(&messages(None, &[asked, bare], 10_000));
    let system: Vec<&Value> = got
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "system")
        .collect();
    assert_eq!(system.len(), 2, "{got}");
    assert_eq!(got[1], json!({"role": "user", "content": "what plan?"}));
    let text = got[0]["content"].as_str().unwrap();
    let body: Value = serde_json::from_str(text.strip_prefix(CONTEXT_PREFIX).unwrap()).unwrap();
    assert_eq!(
        body,
        json!({"context": {"page": "/pricing"}, "quoted_text": "Pro plan", "identity": {"sub": "u1"}})
    );
    let text = got[2]["content"].as_str().unwrap();
    assert_eq!(
        text,
        format!(
            "{CONTEXT_PREFIX}{}",
            json!({"session_metadata": {"plan": "pro"}})
        )
    );
    assert_eq!(got[3], json!({"role": "user", "content": "and then?"}));
}

#[test]
fn budget_keeps_or_drops_a_turn_with_its_results() {
    let mut old = item(Role::User, ItemStatus::Complete, "old");
    old.context = Some(json!({"k": "a long context value"}));
    let items = [
        old,
        reply("a0", ItemStatus::Complete, "ok"),
        item(Role::User, ItemStatus::Complete, "new"),
        reply("a1", ItemStatus::Complete, ""),
        tool("a1", "c1", ItemStatus::Complete, Some("result long enough")),
    ];
    // The current exchange (the question and the turn after it) is over budget and goes
    // whole; nothing older fits.
    let got = wire(&messages(None, &items, 5));
    assert_eq!(
        got,
        json!([
            {"role": "user", "content": "new"},
            {"role": "assistant", "content": null, "tool_calls": [call("c1")]},
            {"role": "tool", "tool_call_id": "c1", "content": "result long enough"},
        ])
    );
    // With room for the old reply but not the old question and its context, the reply
    // goes alone and the context goes with its question.
    let current = 3 + "fn_c1".len() + "{\"id\":\"c1\"}".len() + 18;
    let got = wire(&messages(None, &items, current + 2));
    assert_eq!(got[0], json!({"role": "assistant", "content": "ok"}));
    assert_eq!(got.as_array().unwrap().len(), 4);
    let got = wire(&messages(None, &items, 10_000));
    assert_eq!(got[0]["role"], "system");
    assert_eq!(got[1], json!({"role": "user", "content": "old"}));
}
