//! Issue 8, "what must be shown" 4: a canary prompt and a canary completion never reach the
//! logs at the default level, and a canary token (and the tickets made from it) never reach
//! them at any level. The real binary runs against a scripted OpenAI-compatible upstream and
//! every line it writes (stdout and stderr) is captured. Also the start-up rules of anonymous
//! mode, seen from the binary and the library.

use crate::auth_support;
use crate::support;
use crate::upstream;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use auth_support::*;
use futures::StreamExt;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use upstream::{Reply, Upstream};

const PROMPT_CANARY: &str = "CANARYPROMPT7f3a";
const COMPLETION_CANARY: &str = "CANARYCOMPLETION9b1c";
/// In a message's context and its session's metadata (PROTOCOL 1.2): never logged above debug.
const CONTEXT_CANARY: &str = "CANARYCONTEXT5e2d";

/// The real binary with every output line kept.
struct LoggedHub {
    child: tokio::process::Child,
    addr: SocketAddr,
    lines: Arc<Mutex<Vec<String>>>,
    /// The stdout and stderr readers; they end when the process's pipes close.
    readers: Vec<tokio::task::JoinHandle<()>>,
}

fn collect(
    out: impl AsyncRead + Unpin + Send + 'static,
    lines: Arc<Mutex<Vec<String>>>,
    listening: Option<tokio::sync::oneshot::Sender<SocketAddr>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut listening = listening;
        let mut reader = BufReader::new(out).lines();
        while let Ok(Some(line)) = reader.next_line().await {
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                if v["fields"]["message"] == "sessionhub listening" {
                    if let Some(tx) = listening.take() {
                        let _ = tx.send(
                            v["fields"]["addr"]
                                .as_str()
                                .expect("addr")
                                .parse()
                                .expect("socket addr"),
                        );
                    }
                }
            }
            lines.lock().expect("lines").push(line);
        }
    })
}

impl LoggedHub {
    /// Start with `RUST_LOG` = `level` (`None`: unset, the default level).
    async fn start(
        data_dir: &Path,
        level: Option<&str>,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> LoggedHub {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_sessionhub"));
        cmd.arg("--data-dir")
            .arg(data_dir)
            .args(["--log-format", "json", "--addr", "127.0.0.1:0"])
            .args(args);
        cmd.env_remove("RUST_LOG");
        if let Some(l) = level {
            cmd.env("RUST_LOG", l);
        }
        cmd.envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("spawn sessionhub");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = tokio::sync::oneshot::channel();
        let readers = vec![
            collect(
                child.stdout.take().expect("stdout"),
                lines.clone(),
                Some(tx),
            ),
            collect(child.stderr.take().expect("stderr"), lines.clone(), None),
        ];
        let addr = tokio::time::timeout(Duration::from_secs(30), rx)
            .await
            .unwrap_or_else(|_| panic!("not listening in time: {:?}", lines.lock().expect("lines")))
            .expect("listening line");
        LoggedHub {
            child,
            addr,
            lines,
            readers,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// SIGTERM, wait for the exit, and return everything the process wrote.
    async fn stop(mut self) -> String {
        let pid = self.child.id().expect("pid").to_string();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(status.success());
        tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("exit in time")
            .expect("wait");
        // Everything the process wrote is in once both readers have seen their pipe close.
        for r in std::mem::take(&mut self.readers) {
            tokio::time::timeout(Duration::from_secs(10), r)
                .await
                .expect("log readers finish")
                .expect("log reader");
        }
        self.lines.lock().expect("lines").join("\n")
    }
}

/// Talk to the hub over every transport with the canary token and prompt; returns the
/// tickets it minted (they must not be logged either).
async fn conversation(hub: &LoggedHub, token: &str) -> Vec<String> {
    let client = support::http();
    let auth = |r: reqwest::RequestBuilder| r.bearer_auth(token);
    let session: Value = auth(client.post(hub.url("/v1/sessions")))
        .json(&json!({"metadata": {"plan": CONTEXT_CANARY}}))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    let s = session["id"].as_str().expect("id").to_owned();
    let mint = || async {
        auth(client.post(hub.url("/v1/ws-ticket")))
            .send()
            .await
            .expect("ticket")
            .json::<Value>()
            .await
            .expect("json")["ticket"]
            .as_str()
            .expect("ticket")
            .to_owned()
    };

    // WebSocket through a ticket: the canary prompt, answered with the canary completion.
    let t1 = mint().await;
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        format!("ws://{}/v1/ws?ticket={t1}", hub.addr),
    )
    .expect("request");
    req.headers_mut()
        .insert("origin", APP_ORIGIN.parse().expect("origin"));
    let (ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("upgrade");
    let mut ws = support::WsClient {
        ws,
        events: Vec::new(),
        keep: true,
    };
    ws.join(&s).await;
    ws.send(
        json!({"type": "send", "session": s, "client_msg_id": "c1", "ref": "c1",
        "text": format!("please repeat {PROMPT_CANARY}"), "context": {"page": CONTEXT_CANARY}}),
    )
    .await;
    let done = ws.recv_until(|v| v["type"] == "run.completed").await;
    assert!(done.last().expect("completed")["item"]["text"]
        .as_str()
        .expect("text")
        .contains(COMPLETION_CANARY));

    // SSE with a ticket in the query string, and REST with the header.
    let t2 = mint().await;
    let resp = client
        .get(hub.url(&format!("/v1/sessions/{s}/events?ticket={t2}")))
        .send()
        .await
        .expect("events");
    assert_eq!(resp.status(), 200);
    let first = tokio::time::timeout(support::FRAME_TIMEOUT, resp.bytes_stream().next())
        .await
        .expect("event in time");
    assert!(first.is_some());
    let items: Value = auth(client.get(hub.url(&format!("/v1/sessions/{s}/items"))))
        .send()
        .await
        .expect("items")
        .json()
        .await
        .expect("json");
    assert!(items.to_string().contains(COMPLETION_CANARY));
    // Refused requests carry the canary too: a used ticket and a token with a wrong audience.
    let used = client
        .get(hub.url(&format!("/v1/sessions/{s}/events?ticket={t1}")))
        .send()
        .await
        .expect("events");
    assert_eq!(used.status(), 401);
    let foreign = auth(client.get(hub.url("/v1/sessions?ticket=oops")))
        .header("origin", "https://evil.example")
        .send()
        .await
        .expect("get");
    assert_eq!(foreign.status(), 403);
    vec![t1, t2]
}

async fn run_logged(level: Option<&str>) -> (String, String, Vec<String>) {
    let up = Upstream::start().await;
    up.push(Reply::text(&["Sure: ", COMPLETION_CANARY, " done."]));
    let dir = tempfile::tempdir().expect("dir");
    let args = [
        "--agent",
        "openai",
        "--openai-base-url",
        &up.base_url,
        "--model",
        "scripted-model",
        "--auth-issuer",
        ISSUER,
        "--auth-audience",
        AUDIENCE,
        "--cors-origins",
        APP_ORIGIN,
    ];
    let env = [
        ("SESSIONHUB_AUTH_HS256_SECRET", SECRET),
        ("OPENAI_API_KEY", "sk-scripted"),
    ];
    let hub = LoggedHub::start(dir.path(), level, &args, &env).await;
    let token = token("canary-user");
    let tickets = conversation(&hub, &token).await;
    // The upstream saw the prompt: the canary did travel through the hub.
    assert!(up
        .requests()
        .iter()
        .any(|r| r.last_user_text().contains(PROMPT_CANARY)));
    // ... and the context, with the session's metadata.
    assert!(up
        .requests()
        .iter()
        .any(|r| r.body.to_string().matches(CONTEXT_CANARY).count() == 2));
    (hub.stop().await, token, tickets)
}

fn assert_absent(logs: &str, what: &str, canary: &str) {
    assert!(!canary.is_empty());
    if let Some(line) = logs.lines().find(|l| l.contains(canary)) {
        panic!("{what} found in the logs: {line}");
    }
}

#[tokio::test]
async fn canary_prompt_and_completion_are_absent_at_the_default_level_and_tokens_everywhere() {
    let (logs, token, tickets) = run_logged(None).await;
    assert!(
        logs.contains("sessionhub listening"),
        "logs were captured: {logs}"
    );
    assert!(logs.contains("bearer tokens required"), "{logs}");
    assert_absent(&logs, "the prompt", PROMPT_CANARY);
    assert_absent(&logs, "the completion", COMPLETION_CANARY);
    assert_absent(&logs, "the context", CONTEXT_CANARY);
    assert_absent(&logs, "the token", &token);
    assert_absent(
        &logs,
        "the token's signature",
        token.rsplit('.').next().expect("signature"),
    );
    assert_absent(&logs, "the secret", SECRET);
    for t in &tickets {
        assert_absent(&logs, "a ticket", t);
    }
}

#[tokio::test]
async fn canary_token_and_tickets_are_absent_even_at_trace_level() {
    let (logs, token, tickets) = run_logged(Some("trace")).await;
    // Trace really was on (hyper, tokio and our own debug lines show up).
    assert!(
        logs.lines()
            .filter(|l| l.contains("\"level\":\"TRACE\""))
            .count()
            > 10,
        "trace logging was not on"
    );
    assert_absent(&logs, "the token", &token);
    assert_absent(
        &logs,
        "the token's signature",
        token.rsplit('.').next().expect("signature"),
    );
    assert_absent(&logs, "the secret", SECRET);
    for t in &tickets {
        assert_absent(&logs, "a ticket", t);
    }
}

#[tokio::test]
async fn anonymous_mode_warns_on_loopback_and_refuses_a_public_address() {
    let dir = tempfile::tempdir().expect("dir");
    let hub = LoggedHub::start(dir.path(), None, &[], &[]).await;
    let logs = hub.stop().await;
    let warn = logs
        .lines()
        .find(|l| l.contains("anonymous mode"))
        .unwrap_or_else(|| panic!("no warning: {logs}"));
    assert!(warn.contains("\"level\":\"WARN\""), "{warn}");

    // A public address without a key: the binary refuses to start (before binding).
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_sessionhub"))
            .arg("--data-dir")
            .arg(dir.path())
            .args(["--addr", "0.0.0.0:0"])
            .env_remove("RUST_LOG")
            .output(),
    )
    .await
    .expect("exit in time")
    .expect("run");
    assert!(
        !out.status.success(),
        "started on a public address without auth"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--allow-anonymous"), "{stderr}");

    // The library applies the same rule; --allow-anonymous opts in, and contradicts a key.
    let n = std::sync::atomic::AtomicU32::new(0);
    let cfg = |edit: &dyn Fn(&mut sessionhub::config::Config)| {
        // A data dir each: a built hub keeps its store open.
        let sub = format!(
            "lib{}",
            n.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let mut c = sessionhub::config::Config::for_tests(dir.path().join(sub));
        c.addr = "0.0.0.0:0".parse().expect("addr");
        edit(&mut c);
        c
    };
    assert!(sessionhub::build_hub(cfg(&|_| {})).is_err());
    assert!(sessionhub::build_hub(cfg(&|c| c.allow_anonymous = true)).is_ok());
    assert!(sessionhub::build_hub(cfg(&hs256_config)).is_ok());
    let both = sessionhub::build_hub(cfg(&|c| {
        hs256_config(c);
        c.allow_anonymous = true;
    }));
    assert!(both.is_err());
    // Key settings are checked at start-up too: a short secret, a missing audience.
    let short = sessionhub::build_hub(cfg(&|c| {
        hs256_config(c);
        c.auth_hs256_secret = Some("short".into());
    }));
    assert!(format!("{:#}", short.err().expect("refused")).contains("32 bytes"));
    let no_aud = sessionhub::build_hub(cfg(&|c| {
        hs256_config(c);
        c.auth_audience = None;
    }));
    assert!(format!("{:#}", no_aud.err().expect("refused")).contains("--auth-audience"));
}
