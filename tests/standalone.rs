//! The binary is the whole product: copied alone into an empty folder and started there, it
//! prints the URL to open (and why anonymous mode stays on loopback), serves the page, every
//! file the page loads and `hub.js` with the right content types and caching headers, and the
//! page loads cleanly in Chromium (tests/browser/scenarios.mjs `standalone`).
//!
//! So that reading the checkout at run time cannot pass for embedding, the copy runs in a
//! mount namespace (`unshare -m`, root) in which the whole checkout is an empty tmpfs. Where
//! that is not allowed the test says so and runs the copy without it.

use crate::runner;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

/// Longest the copied binary may take to print its URL.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Deltas of a scripted reply (the browser scenario computes the expected text from it).
const DELTAS: u32 = 12;

/// The binary copied alone into an empty temporary folder, running from there.
struct CopiedHub {
    addr: SocketAddr,
    /// The log lines up to and including the one with the URL (JSON, as `--log-format json`).
    startup: Vec<Value>,
    child: tokio::process::Child,
    _folder: tempfile::TempDir,
    _data: tempfile::TempDir,
}

impl CopiedHub {
    async fn start() -> Self {
        let folder = tempfile::tempdir().expect("temp folder");
        let exe: PathBuf = folder.path().join("sessionhub");
        std::fs::copy(env!("CARGO_BIN_EXE_sessionhub"), &exe).expect("copy the binary");
        let data = tempfile::tempdir().expect("temp data dir");
        let mut cmd = if can_hide_the_checkout() {
            let mut c = tokio::process::Command::new("unshare");
            c.args(["-m", "--propagation", "private", "sh", "-c"])
                .arg(r#"mount -t tmpfs hidden-checkout "$0" && exec "$@""#)
                .arg(env!("CARGO_MANIFEST_DIR"))
                .arg(&exe);
            c
        } else {
            eprintln!(
                "unshare -m is not allowed here: the copied binary runs with the checkout visible"
            );
            tokio::process::Command::new(&exe)
        };
        // Nothing of the environment may point it back at the checkout.
        for (k, _) in std::env::vars() {
            if k.starts_with("SESSIONHUB_") {
                cmd.env_remove(k);
            }
        }
        let mut child = cmd
            .current_dir(folder.path())
            .args(["--addr", "127.0.0.1:0", "--log-format", "json"])
            .arg("--data-dir")
            .arg(data.path())
            .args(["--scripted-deltas", &DELTAS.to_string()])
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start the copied binary");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let startup = tokio::time::timeout(START_TIMEOUT, async {
            let mut seen = Vec::new();
            while let Some(line) = lines.next_line().await.expect("read the log") {
                let v: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("a log line that is not JSON ({e}): {line}"));
                let done = message(&v).starts_with("open ");
                seen.push(v);
                if done {
                    return seen;
                }
            }
            panic!("the copied binary exited before printing its URL: {seen:?}");
        })
        .await
        .expect("the copied binary printed its URL in time");
        // Keep draining the log so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let addr = startup
            .iter()
            .find(|v| message(v) == "sessionhub listening")
            .and_then(|v| v["fields"]["addr"].as_str())
            .expect("a `sessionhub listening` line with the address")
            .parse()
            .expect("socket address");
        CopiedHub {
            addr,
            startup,
            child,
            _folder: folder,
            _data: data,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn stop(mut self) {
        self.child.start_kill().expect("kill");
        self.child.wait().await.expect("wait");
    }
}

/// Whether this machine lets a test hide the checkout from the copy (root, mount namespaces).
fn can_hide_the_checkout() -> bool {
    std::process::Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c"])
        .arg(r#"mount -t tmpfs hidden-checkout "$0" && test ! -e "$0/Cargo.toml""#)
        .arg(env!("CARGO_MANIFEST_DIR"))
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn message(v: &Value) -> &str {
    v["fields"]["message"].as_str().unwrap_or_default()
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

fn expected_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("ts") => "text/plain; charset=utf-8",
        _ => "text/html; charset=utf-8",
    }
}

/// The files an HTML page or an ES module loads: `src=`/`href=` and `from './x.js'`, local only.
fn references(body: &str) -> Vec<String> {
    let mut out = Vec::new();
    for marker in ["src=\"", "href=\"", "from '", "from \""] {
        for piece in body.split(marker).skip(1) {
            let target = piece.split(['"', '\'']).next().unwrap_or_default();
            let local = !target.contains(':') && !target.starts_with('#') && !target.is_empty();
            if local {
                out.push(format!("/{}", target.trim_start_matches("./")));
            }
        }
    }
    out
}

#[tokio::test]
async fn copied_binary_prints_its_url_and_serves_the_page_with_every_file_it_loads() {
    let hub = CopiedHub::start().await;

    // The URL to open, last of the start-up lines, and why anonymous mode stays on loopback.
    let open = message(hub.startup.last().unwrap());
    assert_eq!(open, format!("open http://{}/", hub.addr));
    let anonymous = hub
        .startup
        .iter()
        .find(|v| message(v).starts_with("anonymous mode"))
        .unwrap_or_else(|| panic!("no anonymous-mode line: {:?}", hub.startup));
    assert_eq!(anonymous["level"], "WARN");
    assert!(
        message(anonymous)
            .contains("loopback only, because with no token key every client is the same user"),
        "{anonymous}"
    );

    // The page, then everything it loads, transitively.
    let client = http();
    let mut queue = vec!["/".to_owned(), "/hub.js".to_owned(), "/hub.d.ts".to_owned()];
    let mut served = BTreeSet::new();
    while let Some(path) = queue.pop() {
        if !served.insert(path.clone()) {
            continue;
        }
        let r = client.get(hub.url(&path)).send().await.expect("GET");
        assert_eq!(r.status(), 200, "GET {path}");
        let h = r.headers().clone();
        assert_eq!(h["content-type"], expected_type(&path), "GET {path}");
        assert_eq!(h["cache-control"], "no-cache", "GET {path}");
        let etag = h["etag"].to_str().expect("etag").to_owned();
        let body = r.text().await.expect("body");
        assert!(!body.is_empty(), "GET {path} is empty");
        queue.extend(references(&body));

        // Unchanged: the browser's copy is still good.
        let again = client
            .get(hub.url(&path))
            .header("if-none-match", &etag)
            .send()
            .await
            .expect("GET with If-None-Match");
        assert_eq!(again.status(), 304, "GET {path} with its ETag");
        assert_eq!(again.headers()["etag"], etag.as_str());
    }
    for f in [
        "/app.js",
        "/style.css",
        "/hub-ws.js",
        "/hub-sse.js",
        "/hub-rest.js",
        "/hub-view.js",
        "/hub-tools.js",
        "/tool-card.js",
        "/thinking.js",
    ] {
        assert!(served.contains(f), "the page did not load {f}: {served:?}");
    }

    // What is neither a route nor a file is the API's JSON error, not an empty page.
    let r = client.get(hub.url("/nope.js")).send().await.expect("GET");
    assert_eq!(r.status(), 404);
    let body: Value = r.json().await.expect("JSON");
    assert_eq!(body["error"]["code"], "not_found");
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copied_binary_page_loads_cleanly_in_chromium() {
    runner::require_setup();
    let _one_at_a_time = runner::SERIAL.lock().await;
    let hub = CopiedHub::start().await;
    let r = runner::Scenario::start("standalone", &hub.url(""), DELTAS)
        .finish()
        .await;
    assert!(r["stylesheetRules"].as_u64().is_some_and(|n| n > 0), "{r}");
    hub.stop().await;
}
