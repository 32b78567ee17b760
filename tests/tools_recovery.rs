//! Tool calls across a crash (PROTOCOL 1.1, "Durability and recovery") with the real binary and
//! a real MCP server (tests/mcp/server.py, the official Python SDK): `kill -9` while a server
//! call runs, then a restart on the same data dir. The call comes back `interrupted` and is not
//! run again, its run is over, every acknowledged message is still there, and the session goes
//! on. (A pending client call surviving `kill -9`: tests/ws_tools.rs.)

// Shared with tests/mcp_tools.rs; this file uses only part of it.
#[allow(dead_code)]
use crate::harness;
use crate::support;

use serde_json::{json, Value};
use sessionhub::agent::scripted::scripted_reply;
use support::{http, BinHub, WsClient};

const DELTAS: u32 = 4;

async fn start_hub(dir: &std::path::Path, mcp: &str) -> BinHub {
    let deltas = DELTAS.to_string();
    let args = [
        "--scripted-delay-ms",
        "5",
        "--scripted-deltas",
        &deltas,
        "--mcp-server",
        mcp,
    ];
    BinHub::start(dir, &args).await
}

async fn items(hub: &BinHub, s: &str) -> Vec<Value> {
    let r = http()
        .get(hub.url(&format!("/v1/sessions/{s}/items?limit=200")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.unwrap()["items"]
        .as_array()
        .unwrap()
        .clone()
}

/// `(role, status)` of each item, oldest first.
fn summary(items: &[Value]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|i| {
            (
                i["role"].as_str().unwrap().to_owned(),
                i["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[tokio::test]
async fn a_server_call_cut_by_kill_9_comes_back_interrupted_and_the_session_goes_on() {
    let server = harness::PyServer::start(0, None).await;
    let mcp = format!("py={}", server.url());
    let dir = tempfile::tempdir().unwrap();
    let hub = start_hub(dir.path(), &mcp).await;
    let s = support::create_session(&hub.url("/v1/sessions")).await;
    let mut t = WsClient::connect(&hub.ws_url()).await;
    t.join(&s).await;
    // A finished exchange first.
    let a1 = t.say(&s, "m1", "hello there").await;
    let end1 = t.until_run_end(a1["run_id"].as_str().unwrap()).await;
    assert_eq!(end1["type"], "run.completed", "{end1}");
    // The server call: running once `tool.called` says so and the MCP server has started it.
    let a2 = t.say(&s, "m2", "/tool py__sleep {\"seconds\": 300}").await;
    assert_eq!(a2["type"], "ack", "{a2}");
    let run2 = a2["run_id"].as_str().unwrap().to_owned();
    let called = t
        .recv_until(|v| v["type"] == "tool.called")
        .await
        .pop()
        .unwrap();
    assert_eq!(
        (
            called["item"]["status"].as_str(),
            called["item"]["executor"].as_str()
        ),
        (Some("running"), Some("server")),
        "{called}"
    );
    let call_id = called["item"]["call_id"].as_str().unwrap().to_owned();
    server
        .wait_state("the sleep call started", |st| {
            st["started"].as_array().is_some_and(|a| a.len() == 1)
        })
        .await;
    // A message while the call runs: acknowledged, so durable; its run waits in the queue.
    let a3 = t.say(&s, "m3", "still there?").await;
    assert_eq!(a3["type"], "ack", "{a3}");
    let queued = t
        .recv_until(|v| v["type"] == "run.queued")
        .await
        .pop()
        .unwrap();
    assert_eq!(queued["reply_to"], a3["item_id"]);
    assert!(
        !t.events
            .iter()
            .any(|e| e["run_id"] == run2.as_str() && e["type"] == "tool.result"),
        "the call was still running at the kill"
    );
    let old_epoch = queued["epoch"].as_str().unwrap().to_owned();
    let old_seq = queued["seq"].as_u64().unwrap();
    hub.kill9().await;

    let hub = start_hub(dir.path(), &mcp).await;
    // REST: every acknowledged message, the finished items, the call `interrupted` as it was
    // called; the queued run was dropped, its message stays.
    let listed = items(&hub, &s).await;
    assert_eq!(
        summary(&listed),
        pairs(&[
            ("user", "complete"),
            ("assistant", "complete"),
            ("user", "complete"),
            ("assistant", "complete"),
            ("tool", "interrupted"),
            ("user", "complete"),
        ]),
        "{listed:?}"
    );
    assert_eq!(
        [&listed[0]["id"], &listed[2]["id"], &listed[5]["id"]],
        [&a1["item_id"], &a2["item_id"], &a3["item_id"]]
    );
    assert_eq!(listed[1]["text"], end1["item"]["text"]);
    let tool = &listed[4];
    assert_eq!(
        (
            tool["call_id"].as_str(),
            tool["name"].as_str(),
            tool["arguments"].as_str(),
            tool["executor"].as_str(),
            tool["run_id"].as_str(),
            tool["parent_id"].as_str(),
        ),
        (
            Some(call_id.as_str()),
            Some("py__sleep"),
            Some("{\"seconds\": 300}"),
            Some("server"),
            Some(run2.as_str()),
            listed[3]["id"].as_str(),
        ),
        "{tool}"
    );
    assert!(tool.get("output").is_none_or(Value::is_null), "{tool}");

    // Resume from the old position: a snapshot under a new epoch, with the call interrupted,
    // no run active or queued and nothing waiting.
    let mut c = WsClient::connect(&hub.ws_url()).await;
    let sub = c.subscribe(&s, Some((&old_epoch, old_seq))).await;
    assert_eq!(sub["resume"], "snapshot", "{sub}");
    assert_ne!(sub["epoch"], old_epoch.as_str());
    let snap = c.recv().await;
    assert_eq!(snap["type"], "snapshot");
    assert!(snap["active_run"].is_null(), "{snap}");
    assert_eq!(snap["queued"], json!([]), "{snap}");
    assert_eq!(snap["pending_tool_calls"], json!([]), "{snap}");
    assert_eq!(
        snap["items"].as_array().unwrap(),
        &listed,
        "the snapshot and the listing agree"
    );
    // An acknowledged message is still known by its client id.
    let dup = c.say(&s, "m3", "still there?").await;
    assert_eq!(
        (dup["duplicate"].as_bool(), &dup["item_id"]),
        (Some(true), &a3["item_id"]),
        "{dup}"
    );
    // The session is not busy (a rejecting send is accepted) and the next run completes.
    c.send(
        json!({"type": "send", "session": s, "client_msg_id": "m4", "ref": "m4",
        "text": "after the crash", "on_busy": "reject"}),
    )
    .await;
    let a4 = c
        .recv_until(|v| v["type"] == "ack" || v["type"] == "error")
        .await
        .pop()
        .unwrap();
    assert_eq!(a4["type"], "ack", "{a4}");
    let end4 = c.until_run_end(a4["run_id"].as_str().unwrap()).await;
    assert_eq!(end4["type"], "run.completed", "{end4}");
    assert_eq!(
        end4["item"]["text"],
        scripted_reply("after the crash", DELTAS)
    );
    let after = items(&hub, &s).await;
    assert_eq!(
        &after[..6],
        &listed[..],
        "the history before the crash is kept"
    );
    assert_eq!(
        summary(&after[6..]),
        pairs(&[("user", "complete"), ("assistant", "complete")])
    );
    // The interrupted call was not run again.
    let st = server.state().await;
    assert_eq!(st["started"].as_array().map(Vec::len), Some(1), "{st}");
    hub.kill9().await;
}
