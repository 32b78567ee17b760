//! The real `sessionhub` binary as a child process, for crash (SIGKILL) and restart tests.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

/// The real binary, for crash and restart tests.
pub struct BinHub {
    pub child: tokio::process::Child,
    pub addr: SocketAddr,
}

impl BinHub {
    /// Start `sessionhub` on 127.0.0.1 (port 0 unless `--addr` is in `args`) and wait for its
    /// "listening" log line.
    pub async fn start(data_dir: &Path, args: &[&str]) -> Self {
        Self::start_with_env(data_dir, args, &[]).await
    }

    /// `start` with extra environment variables.
    pub async fn start_with_env(data_dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Self {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_sessionhub"));
        cmd.envs(envs.iter().copied());
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
