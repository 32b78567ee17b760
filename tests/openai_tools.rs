//! The OpenAI agent's tool calls, one model turn at a time: `Agent::stream` driven directly with
//! hand-made requests against the scripted OpenAI-compatible upstream of `tests/upstream` on
//! 127.0.0.1. Checks the chunks a turn yields for the shapes servers stream tool calls in, the
//! `tools` the request offers, and the messages a follow-up request sends for a history with
//! tool items and context.

use crate::upstream;

use std::time::Duration;

use futures::StreamExt;
use serde_json::json;
use sessionhub::agent::openai::{
    OpenAiAgent, OpenAiSettings, CONTEXT_PREFIX, DENIED_NOTE, TOOL_STOPPED_NOTE,
};
use sessionhub::agent::{Agent, AgentChunk, AgentError, AgentRequest, FinishReason};
use sessionhub::domain::{Executor, Item, ItemStatus, Role, ToolCall, ToolSpec};
use upstream::{CallPart, Ev, Reply, Upstream};

const WAIT: Duration = Duration::from_secs(10);

fn settings(up: &Upstream) -> OpenAiSettings {
    let ms = Duration::from_millis;
    OpenAiSettings {
        api_key: Some("sk-scripted".into()),
        base_url: up.base_url.clone(),
        model: upstream::MODEL.into(),
        max_output_tokens: None,
        system_prompt: Some(upstream::SYSTEM_PROMPT.into()),
        history_chars: 100_000,
        connect_timeout: ms(2_000),
        first_token_timeout: ms(5_000),
        chunk_timeout: ms(5_000),
        max_attempts: 3,
        initial_backoff: ms(20),
        max_backoff: ms(100),
        retry_after_cap: ms(200),
        retry_budget: ms(5_000),
    }
}

fn agent(up: &Upstream) -> OpenAiAgent {
    OpenAiAgent::new(settings(up)).expect("agent")
}

fn item(id: &str, role: Role, status: ItemStatus, text: &str) -> Item {
    Item::new(
        id.into(),
        role,
        text.into(),
        status,
        "2026-11-21T10:00:00.000Z".into(),
    )
}

fn question(text: &str) -> Item {
    item("u1", Role::User, ItemStatus::Complete, text)
}

fn tool_item(parent: &str, call_id: &str, name: &str, args: &str, status: ItemStatus) -> Item {
    Item {
        call: Some(ToolCall {
            parent_id: parent.into(),
            call_id: call_id.into(),
            name: name.into(),
            arguments: args.into(),
            executor: Executor::Server,
            output: None,
        }),
        ..item(&format!("t-{call_id}"), Role::Tool, status, "")
    }
}

fn with_output(mut item: Item, output: &str) -> Item {
    if let Some(call) = &mut item.call {
        call.output = Some(output.into());
    }
    item
}

fn weather_tool() -> ToolSpec {
    ToolSpec {
        name: "get_weather".into(),
        description: Some("Current weather for a city".into()),
        parameters: json!({"type": "object", "properties": {"city": {"type": "string"}},
                           "required": ["city"]}),
    }
}

fn request(history: Vec<Item>, tools: Vec<ToolSpec>) -> AgentRequest {
    AgentRequest {
        session_id: "s-tools".into(),
        run_id: "r-tools".into(),
        history,
        tools,
        model: None,
    }
}

/// Every output of one turn, in order.
async fn turn(agent: &OpenAiAgent, request: AgentRequest) -> Vec<Result<AgentChunk, AgentError>> {
    tokio::time::timeout(WAIT, agent.stream(request).collect::<Vec<_>>())
        .await
        .expect("the turn ends in time")
}

/// The chunks of a turn that succeeded.
fn ok(outputs: Vec<Result<AgentChunk, AgentError>>) -> Vec<AgentChunk> {
    outputs.into_iter().map(|o| o.expect("no error")).collect()
}

/// The calls a turn's chunks describe, as (call_id, name, arguments) in the order they started.
/// Checks the order rules on the way: a delta only for a started call, ids unique, nothing
/// after `Finished`.
fn assemble(chunks: &[AgentChunk]) -> Vec<(String, String, String)> {
    let mut calls: Vec<(String, String, String)> = Vec::new();
    let mut finished = false;
    for chunk in chunks {
        assert!(!finished, "nothing follows Finished: {chunks:?}");
        match chunk {
            AgentChunk::ToolCallStarted { call_id, name } => {
                assert!(
                    calls.iter().all(|c| c.0 != *call_id),
                    "call ids are unique: {chunks:?}"
                );
                calls.push((call_id.clone(), name.clone(), String::new()));
            }
            AgentChunk::ToolCallDelta { call_id, arguments } => {
                let call = calls
                    .iter_mut()
                    .find(|c| c.0 == *call_id)
                    .unwrap_or_else(|| panic!("delta before its start: {chunks:?}"));
                call.2.push_str(arguments);
            }
            AgentChunk::Finished(_) => finished = true,
            AgentChunk::Delta(_) | AgentChunk::Reasoning(_) | AgentChunk::Usage(_) => {}
        }
    }
    assert!(finished, "the turn ends with Finished: {chunks:?}");
    calls
}

fn finish(chunks: &[AgentChunk]) -> FinishReason {
    match chunks.last() {
        Some(AgentChunk::Finished(reason)) => *reason,
        other => panic!("last chunk is not Finished: {other:?}"),
    }
}

#[tokio::test]
async fn a_streamed_call_yields_started_deltas_and_finished_tool_calls() {
    let up = Upstream::start().await;
    let agent = agent(&up);
    up.push(Reply::Stream(vec![
        Ev::Role,
        Ev::Text("Let me check. ".into()),
        Ev::Calls(vec![CallPart::open(0, "call_w1", "get_weather")]),
        Ev::Calls(vec![CallPart::args(0, "{\"ci")]),
        Ev::Calls(vec![CallPart::args(0, "ty\": \"Par")]),
        Ev::Calls(vec![CallPart::args(0, "is\"}")]),
        Ev::Finish("tool_calls"),
        Ev::Usage {
            prompt: 11,
            completion: 9,
        },
        Ev::Done,
    ]));
    let chunks = ok(turn(
        &agent,
        request(vec![question("weather in Paris?")], vec![weather_tool()]),
    )
    .await);
    let call = "call_w1".to_owned();
    let delta = |a: &str| AgentChunk::ToolCallDelta {
        call_id: call.clone(),
        arguments: a.into(),
    };
    assert_eq!(
        chunks,
        vec![
            AgentChunk::Delta("Let me check. ".into()),
            AgentChunk::ToolCallStarted {
                call_id: call.clone(),
                name: "get_weather".into()
            },
            delta("{\"ci"),
            delta("ty\": \"Par"),
            delta("is\"}"),
            AgentChunk::Usage(sessionhub::agent::Usage {
                prompt_tokens: 11,
                completion_tokens: 9,
                total_tokens: 20
            }),
            AgentChunk::Finished(FinishReason::ToolCalls),
        ]
    );
    assert_eq!(
        assemble(&chunks),
        [(call, "get_weather".into(), "{\"city\": \"Paris\"}".into())]
    );

    // The request offered the tool as a function tool.
    let log = up.requests();
    assert_eq!(
        log[0].body["tools"],
        json!([{"type": "function", "function": {
            "name": "get_weather",
            "description": "Current weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                           "required": ["city"]},
        }}])
    );

    // A turn with no tools leaves the field out, and a plain reply still ends with Stop.
    let chunks = ok(turn(&agent, request(vec![question("hello")], Vec::new())).await);
    assert_eq!(finish(&chunks), FinishReason::Stop);
    assert!(assemble(&chunks).is_empty());
    let log = up.requests();
    assert!(log[1].body.get("tools").is_none(), "{}", log[1].body);
}

#[tokio::test]
async fn parallel_calls_reused_indexes_and_missing_ids() {
    let up = Upstream::start().await;
    let agent = agent(&up);
    let ask = || request(vec![question("do two things")], vec![weather_tool()]);

    // OpenAI: two parallel calls at indexes 0 and 1, fragments interleaved, one chunk carrying
    // a fragment of each.
    up.push(Reply::calls(
        vec![
            vec![CallPart::open(0, "call_a", "get_weather")],
            vec![CallPart::args(0, "{\"city\":")],
            vec![CallPart::open(1, "call_b", "get_time")],
            vec![
                CallPart::args(0, "\"Oslo\"}"),
                CallPart::args(1, "{\"tz\":"),
            ],
            vec![CallPart::args(1, "\"CET\"}")],
        ],
        "tool_calls",
    ));
    let chunks = ok(turn(&agent, ask()).await);
    assert_eq!(finish(&chunks), FinishReason::ToolCalls);
    assert_eq!(
        assemble(&chunks),
        [
            (
                "call_a".into(),
                "get_weather".into(),
                "{\"city\":\"Oslo\"}".into()
            ),
            (
                "call_b".into(),
                "get_time".into(),
                "{\"tz\":\"CET\"}".into()
            ),
        ]
    );

    // Ollama: every call at index 0, told apart by id, each whole in one chunk; and the turn
    // says `stop`. A new id at a used index is a new call, and started calls end the turn as
    // ToolCalls whatever the finish says.
    up.push(Reply::calls(
        vec![
            vec![CallPart::whole(
                0,
                "call_x",
                "get_weather",
                "{\"city\":\"Rome\"}",
            )],
            vec![CallPart::whole(
                0,
                "call_y",
                "get_weather",
                "{\"city\":\"Lima\"}",
            )],
        ],
        "stop",
    ));
    let chunks = ok(turn(&agent, ask()).await);
    assert_eq!(finish(&chunks), FinishReason::ToolCalls);
    assert_eq!(
        assemble(&chunks),
        [
            (
                "call_x".into(),
                "get_weather".into(),
                "{\"city\":\"Rome\"}".into()
            ),
            (
                "call_y".into(),
                "get_weather".into(),
                "{\"city\":\"Lima\"}".into()
            ),
        ]
    );

    // A call without an id gets one made up; a server that leaves `index` out (Gemini) is
    // followed by id, and its id-less fragments continue the latest call.
    up.push(Reply::calls(
        vec![
            vec![CallPart::open(0, "-", "get_weather").without_id()],
            vec![CallPart::args(0, "{\"city\":\"Kyiv\"}")],
            vec![CallPart::open(1, "call_g", "get_time").without_index()],
            vec![CallPart::args(0, "{\"tz\":").without_index()],
            vec![CallPart::args(0, "\"EET\"}").without_index()],
        ],
        "tool_calls",
    ));
    let chunks = ok(turn(&agent, ask()).await);
    assert_eq!(finish(&chunks), FinishReason::ToolCalls);
    let calls = assemble(&chunks);
    assert_eq!(calls.len(), 2, "{chunks:?}");
    assert!(
        calls[0].0.starts_with("call_") && calls[0].0.len() > "call_".len() + 8,
        "a made-up id: {calls:?}"
    );
    assert_eq!(
        (calls[0].1.as_str(), calls[0].2.as_str()),
        ("get_weather", "{\"city\":\"Kyiv\"}")
    );
    assert_eq!(
        calls[1],
        (
            "call_g".into(),
            "get_time".into(),
            "{\"tz\":\"EET\"}".into()
        )
    );
    assert_eq!(up.requests().len(), 3, "one request per turn, no retries");
}

#[tokio::test]
async fn follow_up_request_sends_each_turn_with_its_calls_results_and_context() {
    let up = Upstream::start().await;
    let agent = agent(&up);
    let mut asked = question("plan my trip");
    asked.context = Some(json!({"page": "/trips", "locale": "fr"}));
    let history = vec![
        asked,
        item("a1", Role::Assistant, ItemStatus::Complete, "Checking."),
        with_output(
            tool_item(
                "a1",
                "call_1",
                "get_weather",
                "{\"city\":\"Nice\"}",
                ItemStatus::Complete,
            ),
            "sunny, 24 C",
        ),
        tool_item(
            "a1",
            "call_2",
            "send_mail",
            "{\"to\":\"ops\"}",
            ItemStatus::Denied,
        ),
        item("a2", Role::Assistant, ItemStatus::Complete, ""),
        tool_item(
            "a2",
            "call_3",
            "book_hotel",
            "{\"city\":\"Nice\"}",
            ItemStatus::Cancelled,
        ),
        tool_item(
            "a2",
            "call_4",
            "get_time",
            "{\"tz\":\"CET\"}",
            ItemStatus::Interrupted,
        ),
    ];
    let chunks = ok(turn(&agent, request(history, vec![weather_tool()])).await);
    assert_eq!(finish(&chunks), FinishReason::Stop);

    let call = |id: &str, name: &str, args: &str| json!({"id": id, "type": "function", "function": {"name": name, "arguments": args}});
    let log = up.requests();
    assert_eq!(
        log[0].body["messages"],
        json!([
            {"role": "system", "content": upstream::SYSTEM_PROMPT},
            {"role": "system",
             "content": format!("{CONTEXT_PREFIX}{{\"locale\":\"fr\",\"page\":\"/trips\"}}")},
            {"role": "user", "content": "plan my trip"},
            {"role": "assistant", "content": "Checking.", "tool_calls": [
                call("call_1", "get_weather", "{\"city\":\"Nice\"}"),
                call("call_2", "send_mail", "{\"to\":\"ops\"}"),
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny, 24 C"},
            {"role": "tool", "tool_call_id": "call_2", "content": DENIED_NOTE},
            {"role": "assistant", "content": null, "tool_calls": [
                call("call_3", "book_hotel", "{\"city\":\"Nice\"}"),
                call("call_4", "get_time", "{\"tz\":\"CET\"}"),
            ]},
            {"role": "tool", "tool_call_id": "call_3", "content": TOOL_STOPPED_NOTE},
            {"role": "tool", "tool_call_id": "call_4", "content": TOOL_STOPPED_NOTE},
        ])
    );
    assert!(DENIED_NOTE.contains("denied"), "{DENIED_NOTE}");
    assert!(TOOL_STOPPED_NOTE.contains("stopped"), "{TOOL_STOPPED_NOTE}");
    // The context is never in the user's text.
    let user_text = log[0].last_user_text();
    assert_eq!(user_text, "plan my trip");
}

#[tokio::test]
async fn a_tool_call_fragment_is_a_first_token() {
    let up = Upstream::start().await;
    let mut s = settings(&up);
    // Long first-token clock, short gap clock: which one fires says whether the call counted.
    s.first_token_timeout = Duration::from_secs(20);
    s.chunk_timeout = Duration::from_millis(300);
    let agent = OpenAiAgent::new(s).expect("agent");
    up.push(Reply::Stream(vec![
        Ev::Role,
        Ev::Calls(vec![CallPart::open(0, "call_s", "get_weather")]),
        Ev::Hang,
    ]));
    let mut outputs = turn(
        &agent,
        request(vec![question("slow")], vec![weather_tool()]),
    )
    .await;
    let err = outputs
        .pop()
        .expect("an output")
        .expect_err("the turn fails");
    assert_eq!(err.code, "upstream_timeout", "{err}");
    assert!(err.message.contains("middle"), "gap clock: {err}");
    let chunks: Vec<AgentChunk> = outputs.into_iter().map(|o| o.expect("ok")).collect();
    assert_eq!(
        chunks,
        vec![AgentChunk::ToolCallStarted {
            call_id: "call_s".into(),
            name: "get_weather".into()
        }]
    );
    assert_eq!(up.requests().len(), 1, "nothing is retried after a token");
}

#[tokio::test]
async fn an_in_band_error_still_fails_the_turn() {
    let up = Upstream::start().await;
    let agent = agent(&up);
    up.push(Reply::Stream(vec![
        Ev::Role,
        Ev::Calls(vec![CallPart::open(0, "call_e", "get_weather")]),
        Ev::Raw(
            json!({"error": {"message": "model overloaded", "type": "server_error"}}).to_string(),
        ),
        Ev::Finish("tool_calls"),
        Ev::Done,
    ]));
    let mut outputs = turn(&agent, request(vec![question("q")], vec![weather_tool()])).await;
    let err = outputs.pop().expect("an output").expect_err("fails");
    assert_eq!(err.code, "upstream_error", "{err}");
    assert!(err.message.contains("model overloaded"), "{err}");
    assert!(outputs.iter().all(Result::is_ok));
}
