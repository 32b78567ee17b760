//! AG-UI tool input (PROTOCOL 1.1 on `POST /agui`): a malformed `tools` array, a tool message
//! or `resume` entry naming a call the thread never had or answering a call the wrong way each
//! get a clear 4xx error and change nothing (no item, no session, the call still waits); the
//! good answer alone then continues the run. A tool message with `error` fails its call.

use crate::agui;
use crate::support;

use serde_json::{json, Value};
use support::{http, TestHub};

use agui::{client_tool, input_v1, text, user, AguiStream};

/// The scripted agent's reply length; nothing here depends on it.
const DELTAS: u32 = 8;

/// One refused request: what it is, its status and code, and a piece of its message.
struct Row {
    name: &'static str,
    body: Value,
    status: u16,
    code: &'static str,
    says: &'static str,
}

fn row(name: &'static str, body: Value, says: &'static str) -> Row {
    Row {
        name,
        body,
        status: 400,
        code: "bad_request",
        says,
    }
}

/// A run on `thread` that ends with the client call `get_page` waiting: its call id, and the
/// messages the client holds then.
async fn waiting_call(client: &reqwest::Client, url: &str, thread: &str) -> (String, Value) {
    let ask = "/tool get_page {}";
    let mut body = input_v1(thread, "r1", json!([user("u1", ask)]));
    body["tools"] = json!([client_tool("get_page")]);
    let events = AguiStream::open(client, url, &body).await.rest().await;
    let finished = events.last().expect("RUN_FINISHED");
    let call_id = finished["outcome"]["pendingToolCallIds"][0]
        .as_str()
        .unwrap_or_else(|| panic!("a pending call: {finished}"))
        .to_owned();
    let history = json!([
        user("u1", ask),
        {"id": events[1]["messageId"], "role": "assistant", "content": "",
         "toolCalls": [{"id": call_id, "type": "function", "function": {"name": "get_page", "arguments": "{}"}}]}
    ]);
    (call_id, history)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_message_with_an_error_fails_the_call() {
    let hub = TestHub::start_with(|c| c.scripted_deltas = DELTAS).await;
    let client = http();
    let url = hub.url("/agui");
    let (call_id, history) = waiting_call(&client, &url, "t-err").await;
    let mut messages = history.as_array().expect("history").clone();
    messages.push(json!({"id": "t1", "role": "tool", "toolCallId": call_id, "content": "", "error": "no GPS"}));
    let events = AguiStream::open(
        &client,
        &url,
        &input_v1("t-err", "r2", Value::Array(messages)),
    )
    .await
    .rest()
    .await;
    assert_eq!(
        events.last().expect("last")["type"],
        "RUN_FINISHED",
        "{events:?}"
    );
    assert!(
        text(&events).contains("Tool get_page failed: no GPS"),
        "{events:?}"
    );
    let items = hub.items("t-err").await;
    assert_eq!(
        (items[2]["status"].as_str(), items[2]["output"].as_str()),
        (Some("failed"), Some("no GPS"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tool_input_gets_a_clear_error_and_loses_nothing() {
    let hub = TestHub::start_with(|c| c.scripted_deltas = DELTAS).await;
    let client = http();
    let url = hub.url("/agui");
    let (call_id, history) = waiting_call(&client, &url, "t-tools").await;
    let answer = json!({"id": "t1", "role": "tool", "toolCallId": call_id, "content": "{\"title\":\"Pricing\"}"});
    let with = |extra: Value, edit: &dyn Fn(&mut Value)| {
        let mut messages = history.as_array().expect("history").clone();
        messages.extend(extra.as_array().expect("messages").iter().cloned());
        let mut v = input_v1("t-tools", "r2", Value::Array(messages));
        v["tools"] = json!([client_tool("get_page")]);
        edit(&mut v);
        v
    };
    let no_edit = |_: &mut Value| {};
    let unknown = json!({"id": "t9", "role": "tool", "toolCallId": "call_nope", "content": "x"});
    let many: Vec<Value> = (0..65).map(|i| client_tool(&format!("t{i}"))).collect();
    let rows = vec![
        row(
            "a tool message for an unknown call",
            with(json!([unknown]), &no_edit),
            "names no tool call of this thread: `call_nope`",
        ),
        row(
            "a good answer next to an unknown call",
            with(json!([answer.clone(), unknown]), &no_edit),
            "`messages[3].toolCallId` names no tool call",
        ),
        row(
            "resume for the client's call",
            with(
                json!([]),
                &|v| v["resume"] = json!([{"interruptId": call_id, "status": "resolved", "payload": {"approved": true}}]),
            ),
            "waits for the client's result",
        ),
        row(
            "resume for an unknown call",
            with(json!([answer.clone()]), &|v| {
                v["resume"] = json!([{"interruptId": "call_nope", "status": "cancelled"}])
            }),
            "`resume[0].interruptId` names no tool call",
        ),
        row(
            "resume without a decision",
            with(json!([answer.clone()]), &|v| {
                v["resume"] = json!([{"interruptId": "call_nope", "status": "resolved"}])
            }),
            "`resume[0].payload.approved` must be a boolean",
        ),
        row(
            "a tool name with a space",
            with(json!([answer.clone(), user("u2", "next")]), &|v| {
                v["tools"] = json!([client_tool("get page")])
            }),
            "tool name `get page` must be 1 to 64 of A-Z a-z 0-9 _ -",
        ),
        row(
            "a bad tool name on a request without a user message",
            {
                let mut v = input_v1("t-tools", "r2", json!([history[1].clone(), answer.clone()]));
                v["tools"] = json!([client_tool("x".repeat(65).as_str())]);
                v
            },
            "must be 1 to 64 of",
        ),
        row(
            "tools that are not an array",
            with(json!([answer.clone()]), &|v| {
                v["tools"] = json!({"name": "a"})
            }),
            "`tools` must be an array",
        ),
        row(
            "a tool that is not an object",
            with(json!([answer.clone()]), &|v| v["tools"] = json!(["a"])),
            "`tools[0]` must be an object",
        ),
        row(
            "a tool without a name",
            with(json!([answer.clone()]), &|v| {
                v["tools"] = json!([{"description": "x"}])
            }),
            "missing `tools[0].name`",
        ),
        row(
            "a tool message without content",
            with(
                json!([{"id": "t1", "role": "tool", "toolCallId": call_id}]),
                &no_edit,
            ),
            "missing `messages[2].content`",
        ),
        row(
            "a tool declared twice",
            with(json!([answer.clone()]), &|v| {
                v["tools"] = json!([client_tool("a"), client_tool("a")])
            }),
            "tool `a` is declared twice",
        ),
        row(
            "parameters that are not a schema object",
            with(json!([answer.clone()]), &|v| {
                v["tools"] = json!([{"name": "a", "description": "", "parameters": [1]}])
            }),
            "must be a JSON Schema object",
        ),
        Row {
            name: "too many tools",
            body: with(json!([answer.clone(), user("u2", "next")]), &|v| {
                v["tools"] = json!(many)
            }),
            status: 413,
            code: "too_large",
            says: "at most 64 tools per message",
        },
        row(
            "a tool message on a new thread",
            input_v1("t-fresh", "r1", json!([user("m1", "hi"), unknown])),
            "names no tool call of this thread",
        ),
    ];

    let items_before = hub.items("t-tools").await;
    let (_, sessions_before) = hub.get_json("/v1/sessions").await;
    let mut failures = Vec::new();
    for r in &rows {
        let resp = client
            .post(&url)
            .json(&r.body)
            .send()
            .await
            .expect("POST /agui");
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        let ok = status == r.status
            && body["error"]["code"] == r.code
            && body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(r.says));
        if !ok {
            failures.push(format!(
                "{}: expected {} {} ({:?}), got {status} {body}",
                r.name, r.status, r.code, r.says
            ));
        }
        if hub.items("t-tools").await != items_before {
            failures.push(format!("{}: the thread changed", r.name));
        }
        if hub.get_json("/v1/sessions").await.1 != sessions_before {
            failures.push(format!("{}: the sessions changed", r.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
    assert_eq!(items_before[2]["status"], "pending", "{items_before:?}");

    // The call still waits: the good answer alone continues the run.
    let events = AguiStream::open(&client, &url, &with(json!([answer]), &no_edit))
        .await
        .rest()
        .await;
    assert_eq!(
        events.last().expect("last")["type"],
        "RUN_FINISHED",
        "{events:?}"
    );
    assert!(
        text(&events).contains("Tool get_page returned: {\"title\":\"Pricing\"}"),
        "{events:?}"
    );
    let items = hub.items("t-tools").await;
    assert_eq!(items[2]["status"], "complete");
    assert_eq!(items[2]["output"], "{\"title\":\"Pricing\"}");
}
