//! The test MCP server (tests/mcp/server.py, official Python SDK) as a child process on
//! 127.0.0.1, and bounded waits on its state and on the hub's tools.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How long any wait in these tests may take before it fails.
pub(crate) const WAIT: Duration = Duration::from_secs(20);

/// A running `server.py`; killed when dropped.
pub(crate) struct PyServer {
    child: Child,
    pub(crate) port: u16,
}

impl PyServer {
    /// Start the server on `port` (0: a free one), requiring `token` if given; returns once
    /// it accepts connections.
    pub(crate) async fn start(port: u16, token: Option<&str>) -> Self {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/mcp");
        let py = dir.join(".venv/bin/python");
        assert!(
            py.exists(),
            "the MCP test venv is missing ({}): run tests/mcp/setup.sh",
            py.display()
        );
        let mut cmd = Command::new(&py);
        cmd.arg(dir.join("server.py"))
            .args(["--port", &port.to_string()])
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        if let Some(token) = token {
            cmd.args(["--token", token]);
        }
        let mut child = cmd.spawn().expect("start tests/mcp/server.py");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let port = tokio::time::timeout(WAIT, async {
            while let Some(line) = lines.next_line().await.expect("server stdout") {
                if let Some(port) = line.strip_prefix("listening on ") {
                    return port.trim().parse::<u16>().expect("a port");
                }
            }
            panic!("tests/mcp/server.py exited before listening");
        })
        .await
        .expect("tests/mcp/server.py did not start in time");
        PyServer { child, port }
    }

    /// Kill the server and wait until it is gone.
    pub(crate) async fn stop(mut self) {
        self.child.kill().await.expect("kill tests/mcp/server.py");
    }

    /// The MCP endpoint.
    pub(crate) fn url(&self) -> String {
        url(self.port)
    }

    /// The server's record (`GET /state`): `started`, `cancelled`, `authorized`,
    /// `unauthorized`.
    pub(crate) async fn state(&self) -> Value {
        reqwest::get(format!("http://127.0.0.1:{}/state", self.port))
            .await
            .expect("GET /state")
            .json()
            .await
            .expect("state JSON")
    }

    /// Poll the server's state until `pred` holds (at most [`WAIT`]).
    pub(crate) async fn wait_state(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            let state = self.state().await;
            if pred(&state) {
                return state;
            }
            assert!(
                start.elapsed() < WAIT,
                "waited {WAIT:?} for {what}: {state}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The MCP endpoint of a server on `port`.
pub(crate) fn url(port: u16) -> String {
    format!("http://127.0.0.1:{port}/mcp")
}

/// A port nothing listens on now (bound, then released).
pub(crate) fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// Poll `cond` until it holds (at most [`WAIT`]); returns how long it took.
pub(crate) async fn eventually(what: &str, cond: impl Fn() -> bool) -> Duration {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < WAIT, "waited {WAIT:?} for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    start.elapsed()
}
