//! Server tools through a session (PROTOCOL 1.1) with a real MCP server (the official Python
//! SDK's, tests/mcp/server.py): the run calls the tool with the model's arguments and the
//! result goes back to the model; a tool error and a timeout fail the call and the model is
//! told; cancelling the run mid-call from any of three tabs cancels the request at the server
//! and every tab sees the same events; an approval gates a call; a client tool may not take a
//! server tool's name.

// Shared with tests/mcp_tools.rs; this file uses only part of it.
#[allow(dead_code)]
use crate::harness;
use crate::support;

use serde_json::{json, Value};
use support::{TestHub, WsClient};

async fn hub_with(
    server: &harness::PyServer,
    edit: impl FnOnce(&mut sessionhub::config::Config),
) -> TestHub {
    let url = server.url();
    TestHub::start_with(move |c| {
        c.tools.mcp_servers = vec![format!("py={url}")];
        edit(c);
    })
    .await
}

async fn ask(t: &mut WsClient, s: &str, cmid: &str, text: &str) -> Value {
    let ack = t.say(s, cmid, text).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    ack
}

/// A hub whose MCP tool `gated` needs a person's approval and whose tools may take
/// `timeout_ms`, with one session and a tab on it.
async fn gated_hub(
    server: &harness::PyServer,
    timeout_ms: u64,
    gated: &str,
) -> (TestHub, String, WsClient) {
    let hub = hub_with(server, |c| {
        c.tools.tool_timeout_ms = timeout_ms;
        c.tools.tool_approval = vec![gated.into()];
    })
    .await;
    let s = hub.create_session().await;
    let mut t = hub.ws().await;
    t.join(&s).await;
    (hub, s, t)
}

/// A `tool_approval` frame approving `call_id` as it was asked.
fn approval(s: &str, call_id: &str, reply_ref: &str) -> Value {
    json!({"type": "tool_approval", "session": s, "call_id": call_id, "approved": true,
        "ref": reply_ref})
}

/// Send `text` (a `/tool` command for a gated tool) and read its run to the end; the id of
/// the call it left awaiting approval.
async fn awaiting_approval(t: &mut WsClient, s: &str, cmid: &str, text: &str) -> String {
    let ack = ask(t, s, cmid, text).await;
    let end = t.until_run_end(ack["run_id"].as_str().unwrap()).await;
    end["pending_tool_calls"][0]
        .as_str()
        .unwrap_or_else(|| panic!("a call awaiting approval: {end}"))
        .to_owned()
}

fn event<'a>(events: &'a [Value], kind: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["type"] == kind)
        .unwrap_or_else(|| panic!("no {kind}"))
}

#[tokio::test]
async fn a_run_calls_the_mcp_tool_and_the_model_gets_the_result() {
    let server = harness::PyServer::start(0, None).await;
    let hub = hub_with(&server, |_| {}).await;
    let s = hub.create_session().await;
    let mut t = hub.ws().await;
    t.join(&s).await;
    let ack = ask(&mut t, &s, "m1", "/tool py__add {\"a\": 40, \"b\": 2}").await;
    let end = t.until_run_end(ack["run_id"].as_str().unwrap()).await;
    assert_eq!(end["type"], "run.completed", "{end}");
    assert!(
        end["item"]["text"]
            .as_str()
            .unwrap()
            .contains("Tool py__add returned: 42"),
        "{end}"
    );
    let called = event(&t.events, "tool.called");
    assert_eq!(
        (
            called["item"]["status"].as_str(),
            called["item"]["executor"].as_str()
        ),
        (Some("running"), Some("server"))
    );
    let result = event(&t.events, "tool.result");
    assert_eq!(
        (
            result["item"]["status"].as_str(),
            result["item"]["output"].as_str()
        ),
        (Some("complete"), Some("42"))
    );
    let kinds: Vec<&str> = t
        .events
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    let tail: Vec<&str> = kinds
        .iter()
        .skip_while(|k| **k != "tool.called")
        .copied()
        .collect();
    assert_eq!(
        &tail[..4],
        [
            "tool.called",
            "item.completed",
            "tool.result",
            "item.started"
        ],
        "{kinds:?}"
    );

    // A tool error: the item fails and the model is told.
    let ack = ask(
        &mut t,
        &s,
        "m2",
        "/tool py__fail {\"message\": \"disk on fire\"}",
    )
    .await;
    let end = t.until_run_end(ack["run_id"].as_str().unwrap()).await;
    let text = end["item"]["text"].as_str().unwrap();
    assert!(
        text.contains("Tool py__fail failed:") && text.contains("disk on fire"),
        "{end}"
    );

    // A client tool may not shadow a server tool.
    t.send(
        json!({"type": "send", "session": s, "client_msg_id": "m3", "text": "x",
        "tools": [{"name": "py__add", "parameters": {"type": "object"}}]}),
    )
    .await;
    let err = t.recv_until(|v| v["type"] == "error").await.pop().unwrap();
    assert_eq!(err["code"], "bad_request", "{err}");
}

#[tokio::test]
async fn cancelling_a_run_mid_call_cancels_the_request_at_the_mcp_server() {
    let server = harness::PyServer::start(0, None).await;
    let hub = hub_with(&server, |_| {}).await;
    let s = hub.create_session().await;
    let mut tabs = Vec::new();
    for _ in 0..3 {
        let mut t = hub.ws().await;
        t.join(&s).await;
        tabs.push(t);
    }
    let ack = ask(&mut tabs[0], &s, "m1", "/tool py__sleep {\"seconds\": 30}").await;
    for t in &mut tabs {
        t.recv_until(|v| v["type"] == "item.completed").await;
    }
    server
        .wait_state("the sleep call started", |st| {
            st["started"].as_array().is_some_and(|a| a.len() == 1)
        })
        .await;
    // Another tab than the sender's cancels; every tab hears the same end.
    tabs[2].send(json!({"type": "cancel", "session": s})).await;
    for t in &mut tabs {
        let frames = t.recv_until(|v| v["type"] == "run.cancelled").await;
        let kinds: Vec<&str> = frames.iter().map(|f| f["type"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["tool.result", "run.cancelled"], "{frames:?}");
        assert_eq!(frames[0]["item"]["status"], "cancelled");
        assert_eq!(frames[1]["run_id"], ack["run_id"]);
    }
    for t in &tabs[1..] {
        assert_eq!(t.events, tabs[0].events, "every tab sees the same events");
    }
    let st = server
        .wait_state("the server recorded the cancellation", |st| {
            st["cancelled"].as_array().is_some_and(|a| !a.is_empty())
        })
        .await;
    assert_eq!(
        st["cancelled"], st["started"],
        "the started call was cancelled"
    );
}

#[tokio::test]
async fn a_slow_tool_times_out_and_a_gated_tool_waits_for_its_approval() {
    let server = harness::PyServer::start(0, None).await;
    let (hub, s, mut t) = gated_hub(&server, 300, "py__echo").await;
    let ack = ask(&mut t, &s, "m1", "/tool py__sleep {\"seconds\": 30}").await;
    let end = t.until_run_end(ack["run_id"].as_str().unwrap()).await;
    assert!(
        end["item"]["text"]
            .as_str()
            .unwrap()
            .contains("did not answer within 300 ms"),
        "{end}"
    );

    let call_id =
        awaiting_approval(&mut t, &s, "m2", "/tool py__echo {\"text\": \"ship it\"}").await;
    let mut other = hub.ws().await;
    other.join(&s).await;
    let mut approve = approval(&s, &call_id, "a");
    approve["arguments"] = json!("{\"text\": \"shipped\"}");
    other.send(approve).await;
    let frames = other
        .recv_until(|v| v["type"] == "tool.result" || v["type"] == "error")
        .await;
    let ack = frames
        .iter()
        .find(|f| f["type"] == "ack")
        .expect("the approval's ack");
    let result = frames.last().unwrap();
    assert_eq!(ack["seq"], result["seq"], "the ack names the tool.result");
    assert_eq!(
        result["item"]["output"], "shipped",
        "the approver's arguments ran"
    );
    let started = other.recv().await;
    assert_eq!(started["type"], "run.started");
    let end = other
        .until_run_end(started["run_id"].as_str().unwrap())
        .await;
    assert!(
        end["item"]["text"]
            .as_str()
            .unwrap()
            .contains("Tool py__echo returned: shipped"),
        "{end}"
    );
}

/// An approval's ack waits for the approved tool's result, but the approving connection does
/// not: it goes on reading (a ping is answered at once, a cancel is taken), and cancelling the
/// running call acknowledges the approval with the call's cancelled `tool.result`; the same
/// approval repeated meanwhile gets that ack as a duplicate.
#[tokio::test]
async fn the_approving_tab_keeps_reading_while_the_approved_tool_runs() {
    let server = harness::PyServer::start(0, None).await;
    let (_hub, s, mut t) = gated_hub(&server, 60_000, "py__sleep").await;
    let call_id = awaiting_approval(&mut t, &s, "m1", "/tool py__sleep {\"seconds\": 30}").await;
    t.send(approval(&s, &call_id, "a")).await;
    // The tool sleeps 30 s; the next frame is read and answered now (the reply comes within
    // the client's 10 s frame timeout, or the test fails).
    t.send(json!({"type": "ping", "ref": "p"})).await;
    let pong = t
        .recv_until(|v| v["type"] == "pong" || v["type"] == "error")
        .await
        .pop()
        .unwrap();
    assert_eq!(pong["type"], "pong", "{pong}");
    // The same approval again while the tool runs: taken too, answered with the same ack.
    t.send(approval(&s, &call_id, "a2")).await;
    t.send(json!({"type": "cancel", "session": s, "ref": "c"}))
        .await;
    let frames = t
        .recv_until(|v| v["type"] == "tool.result" || v["type"] == "error")
        .await;
    let result = frames.last().unwrap();
    assert_eq!(result["type"], "tool.result", "{frames:?}");
    assert_eq!(result["item"]["status"], "cancelled");
    let approval_ack = frames
        .iter()
        .find(|f| f["type"] == "ack" && f["ref"] == "a")
        .unwrap_or_else(|| panic!("the approval's ack: {frames:?}"));
    assert_eq!(approval_ack["call_id"], call_id.as_str());
    assert_eq!(
        approval_ack["seq"], result["seq"],
        "the ack names the tool.result"
    );
    assert_eq!(approval_ack["duplicate"], false);
    let repeat_ack = frames
        .iter()
        .find(|f| f["type"] == "ack" && f["ref"] == "a2")
        .unwrap_or_else(|| panic!("the repeated approval's ack: {frames:?}"));
    assert_eq!(
        (&repeat_ack["seq"], &repeat_ack["duplicate"]),
        (&result["seq"], &json!(true)),
        "the repeat gets the original ack as a duplicate"
    );
}
