//! The hub under chaos: the real binary as a child process on a port the kernel picks, started
//! on the same data dir every time, ready when it logs "sessionhub listening", and killed with
//! SIGKILL (no drain, no flush, no clean-shutdown record).

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::ChaosPlan;

/// Longest start-up (sled recovery included) before the run fails.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running hub process.
pub(super) struct HubProc {
    child: Child,
    pub(super) addr: SocketAddr,
    /// From spawn to the "listening" line, in milliseconds.
    pub(super) ready_ms: f64,
}

impl HubProc {
    pub(super) async fn start(plan: &ChaosPlan) -> Result<HubProc> {
        let mut cmd = Command::new(&plan.bin);
        cmd.arg("--data-dir")
            .arg(&plan.data_dir)
            .args(["--addr", "127.0.0.1:0", "--log-format", "json"])
            .args(["--scripted-deltas", &plan.deltas.to_string()])
            .args(["--scripted-delay-ms", &plan.delay_ms.to_string()])
            .args(["--checkpoint-ms", &plan.checkpoint_ms.to_string()])
            // Only the start-up line is read; per-connection logs would cost the hub CPU.
            .env("RUST_LOG", "warn,sessionhub=info,tower_http=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        let started = Instant::now();
        let mut child = cmd
            .spawn()
            .with_context(|| format!("spawn {}", plan.bin.display()))?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        let mut lines = BufReader::new(stdout).lines();
        let addr = tokio::time::timeout(START_TIMEOUT, async {
            while let Some(line) = lines.next_line().await? {
                let Ok(v) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                if v["fields"]["message"] == "sessionhub listening" {
                    let addr = v["fields"]["addr"].as_str().unwrap_or_default();
                    return Ok(addr.parse::<SocketAddr>()?);
                }
            }
            bail!("the hub exited before listening")
        })
        .await
        .map_err(|_| anyhow!("the hub did not listen within {START_TIMEOUT:?}"))??;
        let ready_ms = started.elapsed().as_secs_f64() * 1000.0;
        // Keep draining the log so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(HubProc {
            child,
            addr,
            ready_ms,
        })
    }

    /// SIGKILL, and wait until the process is gone (its sockets are closed then).
    pub(super) async fn kill9(&mut self) -> Result<()> {
        self.child.start_kill()?;
        self.child.wait().await?;
        Ok(())
    }
}
