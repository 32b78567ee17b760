//! Starting and stopping the servers under test as child processes: the hub's release binary
//! and the ceiling. Each gets a fresh port in 19000-19999 and (the hub) a fresh data dir.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// Which server, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Kind {
    /// The hub with its durability barrier (flush + fsync) on or off.
    Hub {
        durable: bool,
    },
    Ceiling,
    /// The official ChatKit Python server (`openai-chatkit` over uvicorn), for the ChatKit
    /// side by side only.
    ChatkitPy,
}

impl Kind {
    pub fn label(&self) -> &'static str {
        match self {
            Kind::Hub { durable: true } => "hub",
            Kind::Hub { durable: false } => "hub (durability off)",
            Kind::Ceiling => "ceiling",
            Kind::ChatkitPy => "chatkit-python",
        }
    }
}

/// What the scripted agent produces per run.
#[derive(Debug, Clone, Copy)]
pub struct Script {
    pub deltas: usize,
    pub delay: Duration,
    /// Stamp deltas with their production time (off for the ChatKit comparison, so both
    /// servers send the same text).
    pub stamp: bool,
}

/// The checkout that holds the test venvs (`run.sh` builds from an export without them).
pub fn repo_dir() -> PathBuf {
    std::env::var_os("LOADTEST_REPO")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
}

/// The ChatKit peer's interpreter: the venv tests/chatkit/setup.sh installs.
pub fn chatkit_python() -> PathBuf {
    repo_dir().join("tests/chatkit/.venv/bin/python")
}

/// A running server. Killed on drop.
pub struct Server {
    child: Child,
    pub pid: u32,
    pub addr: SocketAddr,
    pub kind: Kind,
    data_dir: Option<PathBuf>,
}

/// Where the binaries are: `target/release` next to this crate's workspace.
pub fn bin_dir() -> PathBuf {
    std::env::var_os("LOADTEST_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join("target")
                .join("release")
        })
}

/// The hub's flag for the delay between deltas: whole milliseconds unless the hub has the
/// microsecond flag (then rates above 500/s per session are exact).
fn hub_delay_args(bin: &Path, delay: Duration) -> Vec<String> {
    let help = Command::new(bin)
        .arg("--help")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .unwrap_or_default();
    if help.contains("--scripted-delay-us") {
        vec!["--scripted-delay-us".into(), delay.as_micros().to_string()]
    } else {
        vec![
            "--scripted-delay-ms".into(),
            delay.as_millis().max(1).to_string(),
        ]
    }
}

impl Server {
    pub fn start(kind: Kind, port: u16, script: Script, scratch: &Path) -> Result<Server> {
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
        let dir = bin_dir();
        let (mut cmd, data_dir) = match kind {
            Kind::Hub { durable } => {
                let bin = dir.join("sessionhub");
                let data = scratch.join(format!("hub-data-{port}"));
                let _ = std::fs::remove_dir_all(&data);
                let mut c = Command::new(&bin);
                c.args(["--addr", &addr.to_string()])
                    .arg("--data-dir")
                    .arg(&data)
                    .args(["--scripted-deltas", &script.deltas.to_string()])
                    .args(hub_delay_args(&bin, script.delay))
                    .args(["--durability", if durable { "on" } else { "off" }])
                    // Per-event logs would measure the logger; warnings still show.
                    .env("RUST_LOG", "warn");
                if script.stamp {
                    c.arg("--scripted-stamp");
                }
                (c, Some(data))
            }
            Kind::Ceiling => {
                let mut c = Command::new(dir.join("ceiling"));
                c.args(["--listen", &addr.to_string()])
                    .args(["--scripted-deltas", &script.deltas.to_string()])
                    .args(["--scripted-delay-us", &script.delay.as_micros().to_string()]);
                (c, None)
            }
            Kind::ChatkitPy => {
                let mut c = Command::new(chatkit_python());
                c.arg(repo_dir().join("loadtest/peers/chatkit_peer.py"))
                    .args(["--port", &port.to_string()])
                    .args(["--deltas", &script.deltas.to_string()])
                    .args(["--delay-ms", &script.delay.as_millis().to_string()]);
                (c, None)
            }
        };
        let log = std::fs::File::create(
            scratch.join(format!("{}-{port}.log", kind.label().replace(' ', "_"))),
        )?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| {
                format!(
                    "starting {} (build it with cargo build --release)",
                    kind.label()
                )
            })?;
        let mut s = Server {
            pid: child.id(),
            child,
            addr,
            kind,
            data_dir,
        };
        s.wait_ready()?;
        Ok(s)
    }

    /// Bounded: the server must accept a TCP connection within 20 s.
    fn wait_ready(&mut self) -> Result<()> {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            if let Ok(Some(status)) = self.child.try_wait() {
                bail!("{} exited at start: {status}", self.kind.label());
            }
            if std::net::TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok()
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!(
            "{} did not listen on {} within 20 s",
            self.kind.label(),
            self.addr
        )
    }

    pub fn rss_kb(&self) -> u64 {
        crate::procfs::rss_kb(self.pid).unwrap_or(0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // SIGKILL: a benchmark server's data is scratch, and a graceful drain of long runs
        // would only add seconds between measurements.
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(d) = &self.data_dir {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}
