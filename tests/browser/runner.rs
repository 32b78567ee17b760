//! Runs one Node Playwright scenario (tests/browser/scenarios.mjs) as a subprocess against a
//! hub, relays its stop/start requests, and returns the figures it measured.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// Longest a scenario may go without printing a line (its own waits are 15 s each).
const STEP_TIMEOUT: Duration = Duration::from_secs(90);

/// Browser scenarios share two cores: run them one at a time within a test binary.
pub(crate) static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub(crate) fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

pub(crate) fn artifacts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/artifacts/browser")
}

/// Fails with a clear message when `tests/browser/setup.sh` has not run.
pub(crate) fn require_setup() {
    let mut missing = Vec::new();
    if !Path::new("/usr/bin/chromium").exists() {
        missing.push("Debian's chromium (/usr/bin/chromium)");
    }
    if !browser_dir()
        .join("node_modules/playwright-core/package.json")
        .exists()
    {
        missing.push("npm playwright-core (tests/browser/node_modules)");
    }
    if std::process::Command::new("node")
        .arg("--version")
        .output()
        .map(|o| !o.status.success())
        .unwrap_or(true)
    {
        missing.push("node");
    }
    assert!(
        missing.is_empty(),
        "browser tests need {}: run `bash tests/browser/setup.sh` (tests/run.sh does it first)",
        missing.join(", ")
    );
}

pub(crate) struct Scenario {
    name: String,
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    stdin: ChildStdin,
    stderr: tokio::task::JoinHandle<String>,
    result: Option<Value>,
}

impl Scenario {
    pub(crate) fn start(name: &str, base_url: &str, deltas: u32) -> Self {
        Self::start_with_env(name, base_url, deltas, &[])
    }

    /// As `start`, with extra environment variables for the scenario (for example a token).
    pub(crate) fn start_with_env(
        name: &str,
        base_url: &str,
        deltas: u32,
        env: &[(&str, &str)],
    ) -> Self {
        require_setup();
        let mut child = Command::new("node")
            .envs(env.iter().copied())
            .arg(browser_dir().join("scenarios.mjs"))
            .args([name, base_url])
            .arg(artifacts_dir())
            .arg(deltas.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn node");
        let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let stdin = child.stdin.take().expect("stdin");
        let mut err = child.stderr.take().expect("stderr");
        let stderr = tokio::spawn(async move {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s).await;
            s
        });
        Scenario {
            name: name.to_owned(),
            child,
            lines,
            stdin,
            stderr,
            result: None,
        }
    }

    /// The next thing the script asks of the hub (`stop`, `start`), or None once it is done.
    pub(crate) async fn next_request(&mut self) -> Option<String> {
        loop {
            let line = tokio::time::timeout(STEP_TIMEOUT, self.lines.next_line())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "browser scenario {} printed nothing for {STEP_TIMEOUT:?}",
                        self.name
                    )
                })
                .expect("read scenario output")?;
            if let Some(req) = line.strip_prefix("@@") {
                return Some(req.trim().to_owned());
            }
            if let Some(json) = line.strip_prefix("RESULT ") {
                self.result = Some(serde_json::from_str(json).expect("RESULT is JSON"));
            }
            eprintln!("[{}] {line}", self.name);
        }
    }

    pub(crate) async fn answer(&mut self, ok: bool) {
        let line: &[u8] = if ok { b"ok\n" } else { b"failed\n" };
        self.stdin
            .write_all(line)
            .await
            .expect("answer the scenario");
        self.stdin.flush().await.expect("flush");
    }

    /// Waits for the script to exit; panics with its own explanation if it failed.
    pub(crate) async fn finish(mut self) -> Value {
        if let Some(req) = self.next_request().await {
            panic!(
                "browser scenario {} asked for `{req}`, which this test does not serve",
                self.name
            );
        }
        let status = tokio::time::timeout(STEP_TIMEOUT, self.child.wait())
            .await
            .expect("scenario exits")
            .expect("wait");
        let stderr = self.stderr.await.unwrap_or_default();
        assert!(
            status.success(),
            "browser scenario {} failed ({status}):\n{stderr}",
            self.name
        );
        let result = self
            .result
            .unwrap_or_else(|| panic!("browser scenario {} printed no RESULT", self.name));
        eprintln!(
            "[{}] screenshots in {}",
            self.name,
            artifacts_dir().display()
        );
        result
    }
}
