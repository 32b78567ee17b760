//! The hub served in-process by `sessionhub::serve` on 127.0.0.1:0, with a fresh data dir per
//! test, and the REST shortcuts tests use against it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use sessionhub::agent::Agent;
use sessionhub::config::Config;
use sessionhub::session::Hub;
use tokio::sync::oneshot;

use super::http::{http, metric_value};
use super::ws::WsClient;

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

    /// Start with accepted sockets whose kernel send buffer is fixed at `bytes` (inherited
    /// from the listener; it also turns off the kernel's autotuning, which may grow it to
    /// megabytes): what a slow reader can absorb is then the hub's own queues.
    pub async fn start_with_send_buffer(bytes: u32, edit: impl FnOnce(&mut Config)) -> Self {
        let tmp = tempfile::tempdir().expect("temp dir");
        let sock = tokio::net::TcpSocket::new_v4().expect("socket");
        sock.set_reuseaddr(true).expect("reuseaddr");
        sock.set_send_buffer_size(bytes).expect("SO_SNDBUF");
        // As `sessionhub::bind` does: without it Nagle's algorithm holds small writes back.
        sock.set_nodelay(true).expect("TCP_NODELAY");
        sock.bind("127.0.0.1:0".parse().expect("addr"))
            .expect("bind");
        let listener = sock.listen(1024).expect("listen");
        let mut hub = Self::start_full_on(Some(listener), tmp.path(), edit, None).await;
        hub._tmp = Some(tmp);
        hub
    }

    async fn start_full(
        dir: &Path,
        edit: impl FnOnce(&mut Config),
        agent: Option<Arc<dyn Agent>>,
    ) -> Self {
        Self::start_full_on(None, dir, edit, agent).await
    }

    async fn start_full_on(
        listener: Option<tokio::net::TcpListener>,
        dir: &Path,
        edit: impl FnOnce(&mut Config),
        agent: Option<Arc<dyn Agent>>,
    ) -> Self {
        let mut cfg = Config::for_tests(dir);
        cfg.scripted_deltas = 8;
        cfg.scripted_delay_ms = 5;
        edit(&mut cfg);
        let listener = listener.unwrap_or_else(|| sessionhub::bind(cfg.addr).expect("bind"));
        let addr = listener.local_addr().expect("addr");
        let hub = match agent {
            Some(a) => sessionhub::build_hub_with_agent(cfg, a),
            None => sessionhub::build_hub(cfg),
        }
        .expect("build hub");
        hub.tools_ready().await;
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

    /// POST `body` as JSON; the status and the JSON answer (null when it is not JSON).
    pub async fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        let r = http()
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("POST");
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

impl Drop for TestHub {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}
