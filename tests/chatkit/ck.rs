//! A ChatKit client for the cargo tests: JSON requests, SSE streams read frame by frame, and
//! the Python oracle run as a subprocess. Included with `#[path = "chatkit/ck.rs"] mod ck;`.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::{http, TestHub, FRAME_TIMEOUT};

/// A front end's view of `POST /chatkit`.
pub(crate) struct Ck {
    pub(crate) url: String,
    http: reqwest::Client,
}

impl Ck {
    pub(crate) fn new(hub: &TestHub) -> Self {
        Ck {
            url: hub.url("/chatkit"),
            http: http(),
        }
    }

    pub(crate) async fn post(&self, body: impl Into<reqwest::Body>) -> reqwest::Response {
        self.http
            .post(&self.url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("POST /chatkit")
    }

    /// A non-streaming request: (status, JSON body).
    pub(crate) async fn json(&self, req: Value) -> (u16, Value) {
        let r = self.post(req.to_string()).await;
        let status = r.status().as_u16();
        let text = r.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("JSON body, got {text:?}")),
        )
    }

    /// A streaming request that must answer 200 with SSE.
    pub(crate) async fn stream(&self, req: Value) -> CkStream {
        let r = self.post(req.to_string()).await;
        assert_eq!(r.status(), 200, "{req}: {:?}", r.text().await);
        let ctype = r.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .to_owned();
        assert!(
            ctype.starts_with("text/event-stream"),
            "content-type {ctype}"
        );
        CkStream {
            resp: r,
            buf: Vec::new(),
        }
    }

    /// Start a thread with a first message and read its whole stream; returns the thread id.
    pub(crate) async fn create(&self, text: &str) -> (String, Vec<Value>) {
        let events = self
            .stream(json!({"type": "threads.create", "params": {"input": input(text)}}))
            .await
            .all()
            .await;
        let id = events[0]["thread"]["id"]
            .as_str()
            .expect("thread id")
            .to_owned();
        (id, events)
    }

    pub(crate) async fn add(&self, thread: &str, text: &str) -> CkStream {
        self.stream(json!({"type": "threads.add_user_message", "params": {"thread_id": thread, "input": input(text)}}))
            .await
    }

    /// `items.list`, oldest first, one page of up to `limit`.
    pub(crate) async fn items(&self, thread: &str, limit: usize) -> Value {
        let (status, body) =
            self.json(json!({"type": "items.list", "params": {"thread_id": thread, "order": "asc", "limit": limit}})).await;
        assert_eq!(status, 200, "items.list: {body}");
        body
    }
}

/// One SSE response, read a `data:` frame at a time.
pub(crate) struct CkStream {
    resp: reqwest::Response,
    buf: Vec<u8>,
}

impl CkStream {
    /// The next event, `None` at the end of the stream. Panics on a malformed frame or timeout.
    pub(crate) async fn next(&mut self) -> Option<Value> {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let frame: Vec<u8> = self.buf.drain(..end + 2).collect();
                let text = std::str::from_utf8(&frame).expect("UTF-8 frame");
                let payload = text
                    .strip_prefix("data: ")
                    .unwrap_or_else(|| panic!("not a data frame: {text:?}"));
                return Some(serde_json::from_str(payload.trim_end()).expect("JSON event"));
            }
            let chunk = tokio::time::timeout(FRAME_TIMEOUT, self.resp.chunk())
                .await
                .expect("event in time");
            match chunk.expect("stream read") {
                Some(c) => self.buf.extend_from_slice(&c),
                None => {
                    assert!(
                        self.buf.is_empty(),
                        "stream ended inside a frame: {:?}",
                        self.buf
                    );
                    return None;
                }
            }
        }
    }

    /// Every remaining event until the stream ends.
    pub(crate) async fn all(mut self) -> Vec<Value> {
        let mut out = Vec::new();
        while let Some(e) = self.next().await {
            out.push(e);
        }
        out
    }

    /// Events up to and including the first that matches.
    pub(crate) async fn until(&mut self, pred: impl Fn(&Value) -> bool) -> Vec<Value> {
        let mut out = Vec::new();
        loop {
            let e = self
                .next()
                .await
                .expect("stream ended before the awaited event");
            let done = pred(&e);
            out.push(e);
            if done {
                return out;
            }
        }
    }
}

pub(crate) fn input(text: &str) -> Value {
    json!({"content": [{"type": "input_text", "text": text}], "attachments": [], "inference_options": {}})
}

/// The type of each event, refined by its update type (what the SDK's order is about).
pub(crate) fn kinds(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| match e["type"].as_str().expect("type") {
            "thread.item.updated" => e["update"]["type"]
                .as_str()
                .expect("update type")
                .to_owned(),
            t => t.to_owned(),
        })
        .collect()
}

/// The text deltas of a stream, concatenated.
pub(crate) fn delta_text(events: &[Value]) -> String {
    events
        .iter()
        .filter_map(|e| e["update"]["delta"].as_str())
        .collect()
}

pub(crate) fn is_delta(e: &Value) -> bool {
    e["update"]["type"] == "assistant_message.content_part.text_delta"
}

/// Run one of the Python oracle scripts (tests/chatkit/*.py) in its venv; panics with its
/// output unless it exits 0.
pub(crate) async fn python(script: &str, args: &[&str]) -> String {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/chatkit");
    let py = dir.join(".venv/bin/python");
    assert!(
        py.exists(),
        "the ChatKit oracle venv is missing ({}): run tests/chatkit/setup.sh",
        py.display()
    );
    let run = tokio::process::Command::new(&py)
        .arg(dir.join(script))
        .args(args)
        .current_dir(&dir)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("oracle finished in time")
        .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{script} {args:?} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    stdout
}
