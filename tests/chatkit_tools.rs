//! Tool calls on `POST /chatkit` (issue 12): client tools from `--chatkit-client-tools`, the
//! pending `client_tool_call` item, `threads.add_client_tool_output`, approval widgets resolved
//! through `threads.custom_action`, and server tool activity. Judged by the openai-chatkit
//! models and the reference `ChatKitServer` (tests/chatkit/tools.py), with the real MCP test
//! server (tests/mcp/server.py) for the server tools; and a WebSocket tab watching the same
//! thread.

use crate::ck;
#[allow(dead_code)]
use crate::harness;
use crate::support;

use std::path::Path;

use ck::Ck;
use serde_json::{json, Value};
use support::TestHub;

const TOOLS_FILE: &str = r#"[{"name": "get_location", "description": "Where the user is",
  "parameters": {"type": "object", "properties": {"precise": {"type": "boolean"}}}}]"#;

/// A hub whose ChatKit runs offer `get_location`, with the MCP server's tools and `py__echo`
/// gated by an approval.
async fn hub(server: &harness::PyServer, dir: &Path) -> TestHub {
    let file = dir.join("chatkit-tools.json");
    std::fs::write(&file, TOOLS_FILE).expect("write the tools file");
    let url = server.url();
    TestHub::start_with(move |c| {
        c.tools.mcp_servers = vec![format!("py={url}")];
        c.tools.tool_approval = vec!["py__echo".into()];
        c.tools.chatkit_client_tools = Some(file);
    })
    .await
}

#[tokio::test]
async fn tool_calls_conform_to_chatkit_types_and_match_the_reference() {
    let server = harness::PyServer::start(0, None).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let hub = hub(&server, dir.path()).await;
    let out = ck::python(
        "tools.py",
        &[
            &hub.url("/chatkit"),
            "--approve-tool",
            "py__echo",
            "--server-tool",
            "py__add",
        ],
    )
    .await;
    assert!(out.contains("tools: all 10 checks passed"), "{out}");
}

#[tokio::test]
async fn a_chatkit_client_call_is_the_same_call_on_a_websocket_tab() {
    let server = harness::PyServer::start(0, None).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let hub = hub(&server, dir.path()).await;
    let ck = Ck::new(&hub);
    let (thread, events) = ck.create("/tool get_location {\"precise\": true}").await;
    let call = &events
        .iter()
        .rfind(|e| e["type"] == "thread.item.done")
        .expect("an item done")["item"];
    assert_eq!(
        (call["type"].as_str(), call["status"].as_str()),
        (Some("client_tool_call"), Some("pending")),
        "{events:?}"
    );

    let mut tab = hub.ws().await;
    let joined = tab.join(&thread).await;
    assert!(
        joined
            .to_string()
            .contains(call["call_id"].as_str().unwrap()),
        "the tab's snapshot lists the pending call: {joined}"
    );
    let stream = ck
        .stream(json!({"type": "threads.add_client_tool_output",
                        "params": {"thread_id": thread, "result": "Paris"}}))
        .await
        .all()
        .await;
    assert_eq!(
        ck::delta_text(&stream),
        "Tool get_location returned: Paris ",
        "{stream:?}"
    );
    let frames = tab.recv_until(|v| v["type"] == "run.completed").await;
    let result = frames
        .iter()
        .find(|f| f["type"] == "tool.result")
        .expect("tool.result");
    assert_eq!(
        (&result["item"]["call_id"], &result["item"]["output"]),
        (&call["call_id"], &json!("Paris"))
    );
    let started = frames
        .iter()
        .find(|f| f["type"] == "run.started")
        .expect("the continuation");
    assert_eq!(started["continues"], result["run_id"], "{started}");
    let done: &Value = frames.last().unwrap();
    assert_eq!(
        done["item"]["text"], "Tool get_location returned: Paris ",
        "{done}"
    );
}

#[tokio::test]
async fn a_bad_tools_file_stops_the_start_with_a_clear_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (text, why) in [
        ("not json", "not a JSON list"),
        (
            r#"[{"name": "bad name", "parameters": {}}]"#,
            "tool name `bad name`",
        ),
    ] {
        let file = dir.path().join("tools.json");
        std::fs::write(&file, text).expect("write");
        let mut cfg = sessionhub::config::Config::for_tests(dir.path().join("data"));
        cfg.tools.chatkit_client_tools = Some(file.clone());
        let err = match sessionhub::build_hub(cfg) {
            Ok(_) => panic!("{text}: the hub started with a bad tools file"),
            Err(e) => format!("{e:#}"),
        };
        assert!(
            err.contains("--chatkit-client-tools")
                && err.contains(&*file.to_string_lossy())
                && err.contains(why),
            "{text}: {err}"
        );
    }
}

#[tokio::test]
async fn closing_the_tool_output_stream_cancels_the_continuation_it_started() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("chatkit-tools.json");
    std::fs::write(&file, TOOLS_FILE).expect("write the tools file");
    // Slow deltas, so the continuation is still streaming when the stream closes.
    let hub = TestHub::start_with(move |c| {
        c.scripted_delay_ms = 300;
        c.tools.chatkit_client_tools = Some(file);
    })
    .await;
    let ck = Ck::new(&hub);
    let (thread, _) = ck.create("/tool get_location").await;
    let mut tab = hub.ws().await;
    tab.join(&thread).await;
    let mut stream = ck
        .stream(json!({"type": "threads.add_client_tool_output",
                        "params": {"thread_id": thread, "result": "Paris"}}))
        .await;
    stream.until(ck::is_delta).await;
    drop(stream);
    let frames = tab
        .recv_until(|v| v["type"] == "run.cancelled" || v["type"] == "run.completed")
        .await;
    let end = frames.last().unwrap();
    assert_eq!(end["type"], "run.cancelled", "{frames:?}");
    let started = frames
        .iter()
        .find(|f| f["type"] == "run.started")
        .expect("the continuation started");
    assert_eq!(end["run_id"], started["run_id"], "{frames:?}");
    assert!(
        started["continues"].is_string(),
        "a continuation: {started}"
    );
    let partial = end["item"]["text"]
        .as_str()
        .expect("the partial reply is kept");
    let full = "Tool get_location returned: Paris ";
    assert!(
        partial.starts_with("Tool ") && full.starts_with(partial) && partial != full,
        "{partial:?}"
    );
}
