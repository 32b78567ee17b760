//! Shared helpers for integration tests: the real server on 127.0.0.1:0 with a fresh data dir,
//! a WebSocket client that speaks the hub's frames, an HTTP client, and the real binary for
//! crash and restart tests. Every wait is bounded; nothing sleeps to wait for an event.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::sync::Arc;

use sessionhub::agent::Agent;
use sessionhub::config::Config;
use sessionhub::session::Hub;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long any single expected frame may take before a test fails.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(10);

/// The hub served in-process by `sessionhub::serve` on 127.0.0.1:0.
pub struct TestHub {
    pub addr: SocketAddr,
    pub hub: Hub,
    pub dir: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    _tmp: Option<tempfile::TempDir>,
}

impl TestHub {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Start with test defaults (fast scripted agent) changed by `edit`.
    pub async fn start_with(edit: impl FnOnce(&mut Config)) -> Self {
        let tmp = tempfile::tempdir().expect("temp dir");
        let mut hub = Self::start_in(tmp.path(), edit).await;
        hub._tmp = Some(tmp);
        hub
    }

    /// Start on an existing data dir (restart tests).
    pub async fn start_in(dir: &Path, edit: impl FnOnce(&mut Config)) -> Self {
        Self::start_full(dir, edit, None).await
    }

    /// Start with a custom agent instead of the configured one.
    pub async fn start_with_agent(edit: impl FnOnce(&mut Config), agent: Arc<dyn Agent>) -> Self {
        let tmp = tempfile::tempdir().expect("temp dir");
        let mut hub = Self::start_full(tmp.path(), edit, Some(agent)).await;
        hub._tmp = Some(tmp);
        hub
    }

    async fn start_full(
        dir: &Path,
        edit: impl FnOnce(&mut Config),
        agent: Option<Arc<dyn Agent>>,
    ) -> Self {
        let mut cfg = Config::for_tests(dir);
        cfg.scripted_deltas = 8;
        cfg.scripted_delay_ms = 5;
        edit(&mut cfg);
        let listener = sessionhub::bind(cfg.addr).expect("bind");
        let addr = listener.local_addr().expect("addr");
        let hub = match agent {
            Some(a) => sessionhub::build_hub_with_agent(cfg, a),
            None => sessionhub::build_hub(cfg),
        }
        .expect("build hub");
        let (tx, rx) = oneshot::channel::<()>();
        let h2 = hub.clone();
        let task = tokio::spawn(async move {
            sessionhub::serve(listener, h2, async {
                let _ = rx.await;
            })
            .await
            .expect("serve");
        });
        TestHub {
            addr,
            hub,
            dir: dir.to_path_buf(),
            stop: Some(tx),
            task: Some(task),
            _tmp: None,
        }
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/v1/ws", self.addr)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Graceful shutdown, waiting for it to finish.
    pub async fn stop(mut self) {
        self.stop_in_place().await;
    }

    pub async fn stop_in_place(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(30), task)
                .await
                .expect("shutdown in time")
                .expect("serve task");
        }
    }

    pub async fn ws(&self) -> WsClient {
        WsClient::connect(&self.ws_url()).await
    }

    /// Create a session over REST; returns its id.
    pub async fn create_session(&self) -> String {
        let r = http()
            .post(self.url("/v1/sessions"))
            .json(&json!({}))
            .send()
            .await
            .expect("POST /v1/sessions");
        assert_eq!(r.status(), 201);
        r.json::<Value>().await.expect("json")["id"]
            .as_str()
            .expect("id")
            .to_owned()
    }

    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let r = http().get(self.url(path)).send().await.expect("GET");
        let status = r.status().as_u16();
        (status, r.json::<Value>().await.unwrap_or(Value::Null))
    }

    /// All items of a session, oldest first.
    pub async fn items(&self, session: &str) -> Vec<Value> {
        let (status, body) = self
            .get_json(&format!("/v1/sessions/{session}/items?limit=200"))
            .await;
        assert_eq!(status, 200, "items: {body}");
        body["items"].as_array().expect("items").clone()
    }

    /// A number from the Prometheus text at /metrics (sum of all series of that name).
    pub async fn metric(&self, name: &str) -> f64 {
        let text = http()
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        metric_value(&text, name)
    }
}

pub fn metric_value(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.split([' ', '{']).next() == Some(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

impl Drop for TestHub {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

/// A WebSocket tab speaking the hub's JSON frames.
pub struct WsClient {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Every sequenced event received, in order.
    pub events: Vec<Value>,
    /// Keep received events in `events` (off for memory measurements).
    pub keep: bool,
}

/// True for hub frames that are sequenced events (they carry `seq` and are not snapshots).
pub fn is_event(v: &Value) -> bool {
    v.get("seq").is_some() && !matches!(v["type"].as_str(), Some("snapshot" | "ack" | "subscribed"))
}

impl WsClient {
    pub async fn connect(url: &str) -> Self {
        let (ws, _) = tokio::time::timeout(FRAME_TIMEOUT, tokio_tungstenite::connect_async(url))
            .await
            .expect("connect in time")
            .expect("connect");
        WsClient {
            ws,
            events: Vec::new(),
            keep: true,
        }
    }

    pub async fn send(&mut self, v: Value) {
        self.ws
            .send(Message::Text(v.to_string().into()))
            .await
            .expect("send frame");
    }

    pub async fn send_raw(&mut self, m: Message) {
        self.ws.send(m).await.expect("send raw");
    }

    /// The next JSON frame (pings and pongs are skipped). Panics on timeout or close.
    pub async fn recv(&mut self) -> Value {
        match self.next_frame().await {
            Frame::Json(v) => v,
            Frame::Closed(c) => panic!("connection closed: {c:?}"),
        }
    }

    pub async fn next_frame(&mut self) -> Frame {
        loop {
            let m = tokio::time::timeout(FRAME_TIMEOUT, self.ws.next())
                .await
                .expect("frame in time");
            match m {
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(t.as_str()).expect("hub sends JSON");
                    if self.keep && is_event(&v) {
                        self.events.push(v.clone());
                    }
                    return Frame::Json(v);
                }
                Some(Ok(Message::Close(c))) => return Frame::Closed(c),
                Some(Ok(_)) => continue,
                Some(Err(e)) => {
                    return Frame::Closed(Some(CloseFrame {
                        code: 1006.into(),
                        reason: e.to_string().into(),
                    }))
                }
                None => return Frame::Closed(None),
            }
        }
    }

    /// Frames until (and including) the first that matches.
    pub async fn recv_until(&mut self, pred: impl Fn(&Value) -> bool) -> Vec<Value> {
        let mut out = Vec::new();
        loop {
            let v = self.recv().await;
            let done = pred(&v);
            out.push(v);
            if done {
                return out;
            }
        }
    }

    /// Subscribe and return the `subscribed` reply (replay/snapshot frames follow).
    pub async fn subscribe(&mut self, session: &str, since: Option<(&str, u64)>) -> Value {
        let mut f = json!({"type": "subscribe", "session": session, "ref": "sub"});
        if let Some((epoch, seq)) = since {
            f["since"] = json!({"epoch": epoch, "seq": seq});
        }
        self.send(f).await;
        let v = self.recv().await;
        assert_eq!(v["type"], "subscribed", "subscribe reply: {v}");
        v
    }

    /// Subscribe without `since` and read the snapshot.
    pub async fn join(&mut self, session: &str) -> Value {
        self.subscribe(session, None).await;
        let snap = self.recv().await;
        assert_eq!(snap["type"], "snapshot");
        snap
    }

    /// Send a message and return its ack.
    pub async fn say(&mut self, session: &str, cmid: &str, text: &str) -> Value {
        self.send(json!({"type": "send", "session": session, "client_msg_id": cmid, "text": text, "ref": cmid})).await;
        let frames = self
            .recv_until(|v| v["type"] == "ack" || v["type"] == "error")
            .await;
        frames.last().cloned().expect("a reply")
    }

    /// Read until a run ends (`run.completed`, `run.cancelled` with an item, or `run.failed`).
    pub async fn until_run_end(&mut self, run_id: &str) -> Value {
        let frames = self
            .recv_until(|v| {
                v["run_id"] == run_id
                    && matches!(
                        v["type"].as_str(),
                        Some("run.completed" | "run.cancelled" | "run.failed")
                    )
            })
            .await;
        frames.last().cloned().expect("terminal event")
    }

    /// Read until the close frame, then finish the close handshake (polling on flushes our
    /// Close reply); returns the hub's close code.
    pub async fn until_close(&mut self) -> Option<u16> {
        let code = loop {
            match self.next_frame().await {
                Frame::Json(_) => continue,
                Frame::Closed(c) => break c.map(|c| u16::from(c.code)),
            }
        };
        let _ = tokio::time::timeout(FRAME_TIMEOUT, async {
            while self.ws.next().await.is_some() {}
        })
        .await;
        code
    }
}

pub enum Frame {
    Json(Value),
    Closed(Option<CloseFrame>),
}

/// The real binary, for crash and restart tests.
pub struct BinHub {
    pub child: tokio::process::Child,
    pub addr: SocketAddr,
}

impl BinHub {
    /// Start `sessionhub` on 127.0.0.1 (port 0 unless `--addr` is in `args`) and wait for its
    /// "listening" log line.
    pub async fn start(data_dir: &Path, args: &[&str]) -> Self {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_sessionhub"));
        cmd.arg("--data-dir")
            .arg(data_dir)
            .args(["--log-format", "json"]);
        if !args.contains(&"--addr") {
            cmd.args(["--addr", "127.0.0.1:0"]);
        }
        cmd.args(args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("spawn sessionhub");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let addr = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.expect("read log") {
                let Ok(v) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                if v["fields"]["message"] == "sessionhub listening" {
                    return v["fields"]["addr"]
                        .as_str()
                        .expect("addr")
                        .parse::<SocketAddr>()
                        .expect("socket addr");
                }
            }
            panic!("sessionhub exited before listening");
        })
        .await
        .expect("hub started in time");
        // Keep draining the log so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        BinHub { child, addr }
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/v1/ws", self.addr)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// SIGKILL, and wait for the process to be gone.
    pub async fn kill9(mut self) {
        self.child.start_kill().expect("kill");
        self.child.wait().await.expect("wait");
    }
}

/// An agent that streams like the scripted one and counts streams started and dropped, so
/// tests can see that a cancel really stopped the upstream work.
pub struct TrackingAgent {
    pub inner: sessionhub::agent::scripted::ScriptedAgent,
    pub started: Arc<std::sync::atomic::AtomicUsize>,
    pub dropped: Arc<std::sync::atomic::AtomicUsize>,
    pub dropped_notify: Arc<tokio::sync::Notify>,
}

impl TrackingAgent {
    pub fn new(deltas: u32, delay_ms: u64) -> Arc<Self> {
        Arc::new(TrackingAgent {
            inner: sessionhub::agent::scripted::ScriptedAgent {
                deltas,
                delay: Duration::from_millis(delay_ms),
                stamp: false,
            },
            started: Default::default(),
            dropped: Default::default(),
            dropped_notify: Default::default(),
        })
    }

    /// Wait (bounded) until `n` streams have been dropped.
    pub async fn wait_dropped(&self, n: usize) {
        tokio::time::timeout(FRAME_TIMEOUT, async {
            loop {
                let notified = self.dropped_notify.notified();
                if self.dropped.load(std::sync::atomic::Ordering::SeqCst) >= n {
                    return;
                }
                notified.await;
            }
        })
        .await
        .expect("agent stream dropped in time");
    }
}

struct DropGuard(
    Arc<std::sync::atomic::AtomicUsize>,
    Arc<tokio::sync::Notify>,
);

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.1.notify_waiters();
    }
}

impl Agent for TrackingAgent {
    fn stream(&self, request: sessionhub::agent::AgentRequest) -> sessionhub::agent::AgentStream {
        self.started
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let guard = DropGuard(self.dropped.clone(), self.dropped_notify.clone());
        let inner = self.inner.stream(request);
        Box::pin(inner.map(move |c| {
            let _keep = &guard;
            c
        }))
    }
}

/// Connect a raw TCP WebSocket that never answers pings (heartbeat tests); returns the
/// stream after the handshake.
pub async fn raw_ws(addr: SocketAddr) -> TcpStream {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = TcpStream::connect(addr).await.expect("tcp connect");
    let req = format!(
        "GET /v1/ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.expect("handshake write");
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).await.expect("handshake read");
        buf.push(byte[0]);
    }
    assert!(
        buf.starts_with(b"HTTP/1.1 101"),
        "upgrade refused: {}",
        String::from_utf8_lossy(&buf)
    );
    s
}

/// Read raw server frames until a Close frame; returns its code.
pub async fn raw_until_close(s: &mut TcpStream) -> u16 {
    use tokio::io::AsyncReadExt;
    loop {
        let mut h = [0u8; 2];
        s.read_exact(&mut h).await.expect("frame header");
        let opcode = h[0] & 0x0f;
        let mut len = (h[1] & 0x7f) as usize;
        if len == 126 {
            let mut l = [0u8; 2];
            s.read_exact(&mut l).await.expect("len");
            len = u16::from_be_bytes(l) as usize;
        } else if len == 127 {
            let mut l = [0u8; 8];
            s.read_exact(&mut l).await.expect("len");
            len = u64::from_be_bytes(l) as usize;
        }
        let mut payload = vec![0u8; len];
        s.read_exact(&mut payload).await.expect("payload");
        if opcode == 0x8 {
            return u16::from_be_bytes([payload[0], payload[1]]);
        }
    }
}

/// Apply a snapshot or an event to a simple client-side model: items by id with their text and
/// status, in order.
pub fn apply_frame(state: &mut Vec<(String, String, String)>, ev: &Value) {
    let upsert = |state: &mut Vec<(String, String, String)>, item: &Value| {
        let id = item["id"].as_str().unwrap().to_owned();
        let entry = (
            id.clone(),
            item["text"].as_str().unwrap().to_owned(),
            item["status"].as_str().unwrap().to_owned(),
        );
        match state.iter_mut().find(|e| e.0 == id) {
            Some(e) => *e = entry,
            None => state.push(entry),
        }
    };
    match ev["type"].as_str().unwrap() {
        "snapshot" => {
            state.clear();
            for it in ev["items"].as_array().unwrap() {
                upsert(state, it);
            }
            if let Some(ar) = ev["active_run"].as_object() {
                state.push((
                    ar["item_id"].as_str().unwrap().into(),
                    ar["text"].as_str().unwrap().into(),
                    "streaming".into(),
                ));
            }
        }
        "message" | "run.completed" | "run.cancelled" | "run.failed" if ev["item"].is_object() => {
            upsert(state, &ev["item"])
        }
        "items.removed" => {
            let gone: Vec<&str> = ev["item_ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            state.retain(|e| !gone.contains(&e.0.as_str()));
        }
        "run.started" => state.push((
            ev["item_id"].as_str().unwrap().into(),
            String::new(),
            "streaming".into(),
        )),
        "run.delta" => {
            let id = ev["item_id"].as_str().unwrap();
            let e = state
                .iter_mut()
                .find(|e| e.0 == id)
                .expect("delta for a known item");
            e.1.push_str(ev["text"].as_str().unwrap());
        }
        _ => {}
    }
}
