//! AG-UI tools (PROTOCOL 1.1 on `POST /agui`): the official `@ag-ui/client` 1.0.0 and 0.0.59
//! run a frontend tool's round trip and answer an approval interrupt with `resume` (against
//! the test MCP server of the official Python SDK, gated by `--tool-approval`); an approval
//! given from a native WebSocket tab ends the interrupt too. Bad tool input:
//! tests/agui_tool_input.rs.

use crate::agui;
// Shared with tests/mcp_tools.rs; this file uses only part of it.
#[allow(dead_code)]
use crate::harness;
use crate::support;

use serde_json::{json, Value};
use sessionhub::agent::scripted::scripted_reply;
use support::{http, TestHub};

use agui::{client_tool, input_v1, text, types, user, AguiStream};

/// The scripted agent's reply length; the tool scenarios do not depend on it.
const DELTAS: u32 = 8;

/// The test MCP server's echo tool, gated by `--tool-approval`.
const GATED: &str = "py__echo";

/// A hub whose server tools are the test MCP server's (`py__*`), `py__echo` awaiting approval.
async fn gated_hub(server: &harness::PyServer) -> TestHub {
    let url = server.url();
    TestHub::start_with(move |c| {
        c.scripted_deltas = DELTAS;
        c.tools.mcp_servers = vec![format!("py={url}")];
        c.tools.tool_approval = vec![GATED.into()];
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_client_versions_run_a_frontend_tool_round_trip() {
    agui::require_clients();
    let hub = TestHub::start_with(|c| c.scripted_deltas = DELTAS).await;
    let base = hub.url("");
    agui::both_clients_pass(&base, DELTAS, &["tools"], &["tools"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_client_versions_answer_an_approval_interrupt_with_resume() {
    agui::require_clients();
    let server = harness::PyServer::start(0, None).await;
    let hub = gated_hub(&server).await;
    let base = hub.url("");
    agui::both_clients_pass(&base, DELTAS, &["approval"], &["approval"]).await;
}

/// The driver judges the tool scenarios too: a hub that never asks for approval (no
/// `--tool-approval`) fails the approval scenario.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_driver_rejects_a_call_that_was_not_interrupted() {
    agui::require_clients();
    let server = harness::PyServer::start(0, None).await;
    let url = server.url();
    let hub = TestHub::start_with(move |c| c.tools.mcp_servers = vec![format!("py={url}")]).await;
    let (ok, out) = agui::run_driver(&hub.url(""), "1.0.0", DELTAS, &["approval"]).await;
    assert!(
        !ok,
        "the driver accepted a run without its interrupt:\n{out}"
    );
    assert!(
        out.contains("not ok - 1.0.0 approval") && out.contains("event sequence"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_given_in_a_websocket_tab_ends_the_interrupt() {
    let server = harness::PyServer::start(0, None).await;
    let hub = gated_hub(&server).await;
    let client = http();
    let url = hub.url("/agui");
    let thread = hub.create_session().await;
    let mut tab = hub.ws().await;
    tab.join(&thread).await;

    let ask = format!("/tool {GATED} {{\"text\": \"ship it\"}}");
    let first = input_v1(&thread, "r1", json!([user("u1", &ask)]));
    let events = AguiStream::open(&client, &url, &first).await.rest().await;
    assert_eq!(
        types(&events),
        [
            "RUN_STARTED",
            "TEXT_MESSAGE_START",
            "TEXT_MESSAGE_END",
            "TOOL_CALL_START",
            "TOOL_CALL_ARGS",
            "TOOL_CALL_ARGS",
            "TOOL_CALL_END",
            "RUN_FINISHED"
        ],
        "{events:?}"
    );
    let start = &events[3];
    let finished = events.last().expect("RUN_FINISHED");
    let call_id = start["toolCallId"].as_str().expect("toolCallId").to_owned();
    assert_eq!(start["toolCallName"], GATED);
    assert_eq!(start["parentMessageId"], events[1]["messageId"]);
    let interrupt = &finished["outcome"]["interrupts"][0];
    assert_eq!(finished["outcome"]["type"], "interrupt", "{finished}");
    assert_eq!(
        (interrupt["id"].as_str(), interrupt["toolCallId"].as_str()),
        (Some(call_id.as_str()), Some(call_id.as_str()))
    );
    assert_eq!(interrupt["reason"], "tool_call");

    // A tool message is no answer to an approval: refused, and the call still waits.
    let assistant = json!({"id": events[1]["messageId"], "role": "assistant", "content": "",
        "toolCalls": [{"id": call_id, "type": "function", "function": {"name": GATED, "arguments": "{\"text\": \"ship it\"}"}}]});
    let before = hub.items(&thread).await;
    let wrong = json!([user("u1", &ask), assistant, {"id": "t1", "role": "tool", "toolCallId": call_id, "content": "done"}]);
    let resp = client
        .post(&url)
        .json(&input_v1(&thread, "r1b", wrong))
        .send()
        .await
        .expect("POST");
    assert_eq!(resp.status().as_u16(), 400);
    let body: Value = resp.json().await.expect("JSON");
    assert_eq!(body["error"]["code"], "bad_request");
    let says = body["error"]["message"].as_str().unwrap_or("");
    assert!(
        says.contains("waits for an approval, answered by a `resume` entry"),
        "{body}"
    );
    assert_eq!(hub.items(&thread).await, before);
    assert_eq!(before[2]["status"], "awaiting_approval");

    // The tab saw the same call waiting, and approves it.
    let called = tab.recv_until(|v| v["type"] == "run.completed").await;
    let completed = called.last().expect("run.completed");
    assert_eq!(completed["pending_tool_calls"], json!([call_id]));
    let tool_called = called
        .iter()
        .find(|v| v["type"] == "tool.called")
        .expect("tool.called");
    assert_eq!(tool_called["item"]["status"], "awaiting_approval");
    assert_eq!(tool_called["item"]["parent_id"], events[1]["messageId"]);
    tab.send(json!({"type": "tool_approval", "session": thread, "call_id": call_id, "approved": true, "ref": 1}))
        .await;
    let result = tab
        .recv_until(|v| v["type"] == "tool.result" || v["type"] == "error")
        .await
        .pop()
        .expect("tool.result");
    assert_eq!(
        (
            result["item"]["status"].as_str(),
            result["item"]["output"].as_str()
        ),
        (Some("complete"), Some("ship it")),
        "{result}"
    );
    let started = tab.recv().await;
    assert_eq!(started["type"], "run.started");
    let end = tab
        .until_run_end(started["run_id"].as_str().expect("run_id"))
        .await;
    let reply = format!("Tool {GATED} returned: ship it");
    assert!(
        end["item"]["text"].as_str().unwrap_or("").contains(&reply),
        "{end}"
    );

    // The AG-UI client still holds the interrupt, so its next request answers it: that resume
    // is history now, and only the new message is answered.
    let history = json!([user("u1", &ask), assistant, user("u2", "thanks a lot")]);
    let resume =
        json!([{"interruptId": call_id, "status": "resolved", "payload": {"approved": true}}]);
    let mut next = input_v1(&thread, "r2", history.clone());
    next["resume"] = resume.clone();
    let events = AguiStream::open(&client, &url, &next).await.rest().await;
    let mut want = vec!["RUN_STARTED", "TEXT_MESSAGE_START"];
    want.extend(std::iter::repeat_n("TEXT_MESSAGE_CONTENT", DELTAS as usize));
    want.extend(["TEXT_MESSAGE_END", "RUN_FINISHED"]);
    assert_eq!(types(&events), want, "{events:?}");
    assert_eq!(text(&events), scripted_reply("thanks a lot", DELTAS));
    assert!(events.last().expect("last").get("outcome").is_none());

    // The same answers with nothing new: nothing to run, said plainly.
    let mut again = input_v1(&thread, "r3", history);
    again["resume"] = resume;
    let resp = client.post(&url).json(&again).send().await.expect("POST");
    assert_eq!(resp.status().as_u16(), 400);
    let body: Value = resp.json().await.expect("JSON");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("already answered"),
        "{body}"
    );
    // A client tool may not take a server tool's name.
    let mut shadow = input_v1(&thread, "r4", json!([user("u3", "hi")]));
    shadow["tools"] = json!([client_tool(GATED)]);
    let resp = client.post(&url).json(&shadow).send().await.expect("POST");
    assert_eq!(resp.status().as_u16(), 400);
    let body: Value = resp.json().await.expect("JSON");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("has the name of a server tool"),
        "{body}"
    );
    let items = hub.items(&thread).await;
    let shape: Vec<String> = items
        .iter()
        .map(|i| {
            format!(
                "{}:{}",
                i["role"].as_str().unwrap(),
                i["status"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        shape,
        [
            "user:complete",
            "assistant:complete",
            "tool:complete",
            "assistant:complete",
            "user:complete",
            "assistant:complete"
        ]
    );
}
