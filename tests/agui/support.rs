//! AG-UI test helpers: a streaming `POST /agui` client that checks the framing of every frame
//! it reads (`data: <json>\n\n`, LF only, no `null`, integer timestamps), the Node driver
//! runner, and the hub set-ups the AG-UI tests share. Included by the `tests/agui_*.rs` targets
//! with `#[path]`, next to `mod support`.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};

use crate::support::{TestHub, TrackingAgent, WsClient};

/// How long any single expected frame may take.
pub(crate) const FRAME_TIMEOUT: Duration = Duration::from_secs(10);

/// A `RunAgentInput` as a 0.0.59 client sends it (no `protocolVersion`).
pub(crate) fn input(thread: &str, run: &str, messages: Value) -> Value {
    json!({"threadId": thread, "runId": run, "state": {}, "messages": messages, "tools": [], "context": [], "forwardedProps": {}})
}

pub(crate) fn user(id: &str, text: &str) -> Value {
    json!({"id": id, "role": "user", "content": text})
}

/// `input` with `protocolVersion`, as a 1.0 client sends it.
pub(crate) fn input_v1(thread: &str, run: &str, messages: Value) -> Value {
    let mut v = input(thread, run, messages);
    v["protocolVersion"] = json!("1.0");
    v
}

/// A hub with a tracking scripted agent of `deltas` deltas every `delay_ms`.
pub(crate) async fn tracked(
    deltas: u32,
    delay_ms: u64,
    edit: impl FnOnce(&mut sessionhub::config::Config),
) -> (TestHub, Arc<TrackingAgent>) {
    let agent = TrackingAgent::new(deltas, delay_ms);
    let hub = TestHub::start_with_agent(edit, agent.clone()).await;
    (hub, agent)
}

/// A session on `hub` and a WebSocket tab joined to it before any run.
pub(crate) async fn watched(hub: &TestHub) -> (String, WsClient) {
    let session = hub.create_session().await;
    let mut ws = hub.ws().await;
    ws.join(&session).await;
    (session, ws)
}

/// The run id of the next `run.started` a WebSocket tab sees.
pub(crate) async fn next_run_id(ws: &mut WsClient) -> String {
    let started = ws.recv_until(|v| v["type"] == "run.started").await;
    started
        .last()
        .and_then(|v| v["run_id"].as_str())
        .expect("run_id")
        .to_owned()
}

/// One frame of the response body.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Frame {
    Event(Value),
    /// A `:` comment line (keep-alive).
    Comment(String),
}

/// An open `POST /agui` response, read frame by frame. Dropping it closes the connection.
pub(crate) struct AguiStream {
    pub(crate) status: u16,
    body: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buf: Vec<u8>,
    /// Every event read so far.
    pub(crate) events: Vec<Value>,
}

/// No `null` anywhere: both client lines reject a null optional field.
fn assert_no_null(v: &Value, path: &str) {
    match v {
        Value::Null => panic!("null at {path}"),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, x)| assert_no_null(x, &format!("{path}[{i}]"))),
        Value::Object(m) => m
            .iter()
            .for_each(|(k, x)| assert_no_null(x, &format!("{path}.{k}"))),
        _ => {}
    }
}

impl AguiStream {
    /// POST the body; panics unless the answer is a 200 event stream.
    pub(crate) async fn open(client: &reqwest::Client, url: &str, body: &Value) -> Self {
        let resp = client
            .post(url)
            .header("accept", "text/event-stream")
            .json(body)
            .send()
            .await
            .expect("POST /agui");
        let status = resp.status().as_u16();
        let ctype = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        if status != 200 {
            let text = resp.text().await.unwrap_or_default();
            panic!("POST /agui answered {status}: {text}");
        }
        assert!(
            ctype.starts_with("text/event-stream"),
            "content-type {ctype}"
        );
        AguiStream {
            status,
            body: resp.bytes_stream().boxed(),
            buf: Vec::new(),
            events: Vec::new(),
        }
    }

    /// The next frame, or `None` at the end of the body. Panics on a malformed frame or timeout.
    pub(crate) async fn next_frame(&mut self) -> Option<Frame> {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let raw: Vec<u8> = self.buf.drain(..end + 2).collect();
                let text = String::from_utf8(raw[..end].to_vec()).expect("UTF-8 frame");
                assert!(!text.contains('\r'), "CR in frame {text:?}");
                if let Some(comment) = text.strip_prefix(':') {
                    return Some(Frame::Comment(comment.trim().to_owned()));
                }
                let data = text
                    .strip_prefix("data: ")
                    .unwrap_or_else(|| panic!("frame without `data: `: {text:?}"));
                assert!(!data.contains('\n'), "one data line per frame: {text:?}");
                let v: Value = serde_json::from_str(data).expect("frame data is JSON");
                assert!(v["type"].is_string(), "event without type: {v}");
                assert_no_null(&v, "event");
                if let Some(ts) = v.get("timestamp") {
                    assert!(ts.is_i64(), "timestamp not an integer: {v}");
                }
                self.events.push(v.clone());
                return Some(Frame::Event(v));
            }
            let chunk = tokio::time::timeout(FRAME_TIMEOUT, self.body.next())
                .await
                .expect("frame in time");
            match chunk {
                Some(Ok(b)) => self.buf.extend_from_slice(&b),
                Some(Err(e)) => panic!("body error: {e}"),
                None => {
                    assert!(
                        self.buf.is_empty(),
                        "unterminated frame at the end: {:?}",
                        String::from_utf8_lossy(&self.buf)
                    );
                    return None;
                }
            }
        }
    }

    /// The next event, skipping comments; panics at the end of the body.
    pub(crate) async fn next_event(&mut self) -> Value {
        loop {
            match self.next_frame().await {
                Some(Frame::Event(v)) => return v,
                Some(Frame::Comment(_)) => continue,
                None => panic!("stream ended; events so far: {:?}", self.events),
            }
        }
    }

    /// Events until (and including) the first of type `kind`.
    pub(crate) async fn until(&mut self, kind: &str) -> Vec<Value> {
        let mut out = Vec::new();
        loop {
            let v = self.next_event().await;
            let done = v["type"] == kind;
            out.push(v);
            if done {
                return out;
            }
        }
    }

    /// Every remaining event, up to the end of the body.
    pub(crate) async fn rest(&mut self) -> Vec<Value> {
        let mut out = Vec::new();
        while let Some(f) = self.next_frame().await {
            if let Frame::Event(v) = f {
                out.push(v);
            }
        }
        out
    }
}

pub(crate) fn types(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e["type"].as_str().unwrap_or("?"))
        .collect()
}

/// The concatenated `TEXT_MESSAGE_CONTENT` deltas.
pub(crate) fn text(events: &[Value]) -> String {
    events
        .iter()
        .filter(|e| e["type"] == "TEXT_MESSAGE_CONTENT")
        .map(|e| e["delta"].as_str().unwrap_or(""))
        .collect()
}

/// `tests/agui`, where the Node driver and its installed clients live.
pub(crate) fn agui_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/agui")
}

/// Fails (never skips) when the official clients are not installed.
pub(crate) fn require_clients() {
    let dir = agui_dir();
    for pkg in ["agui-client-v1", "agui-client-v0"] {
        let found = dir
            .join("node_modules")
            .join(pkg)
            .join("package.json")
            .is_file();
        assert!(
            found,
            "the AG-UI clients are not installed ({pkg} missing): run tests/agui/setup.sh"
        );
    }
}

/// Run `scenarios` (none: the driver's defaults) with both official clients at once, on
/// separate threads of the hub at `base`, and assert that each client passed every scenario of
/// `expect`.
pub(crate) async fn both_clients_pass(
    base: &str,
    deltas: u32,
    scenarios: &[&str],
    expect: &[&str],
) {
    let (v1, v0) = tokio::join!(
        run_driver(base, "1.0.0", deltas, scenarios),
        run_driver(base, "0.0.59", deltas, scenarios)
    );
    for (version, (ok, out)) in [("1.0.0", v1), ("0.0.59", v0)] {
        assert!(ok, "@ag-ui/client {version} rejected the hub:\n{out}");
        for s in expect {
            assert!(
                out.contains(&format!("ok - {version} {s}\n")),
                "{version} {s} did not pass:\n{out}"
            );
        }
    }
}

/// Run the Node driver; returns (success, stdout + stderr).
pub(crate) async fn run_driver(
    base: &str,
    client: &str,
    deltas: u32,
    scenarios: &[&str],
) -> (bool, String) {
    require_clients();
    let mut cmd = tokio::process::Command::new("node");
    cmd.current_dir(agui_dir()).arg("driver.mjs").args([
        "--url",
        base,
        "--client",
        client,
        "--deltas",
        &deltas.to_string(),
    ]);
    for s in scenarios {
        cmd.args(["--scenario", s]);
    }
    cmd.kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(90), cmd.output())
        .await
        .expect("driver finished in time")
        .expect("run node (is Node.js installed? run tests/agui/setup.sh)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (
        out.status.success() && text.contains("VERDICT ACCEPTED"),
        text,
    )
}

/// A `RunAgentInput.tools` entry: the client tool `name`.
pub(crate) fn client_tool(name: &str) -> Value {
    json!({"name": name, "description": "a client tool", "parameters": {"type": "object"}})
}
