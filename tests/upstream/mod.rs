//! A scripted OpenAI-compatible model server on 127.0.0.1 for the OpenAI agent's tests.
//!
//! It speaks real `chat.completion.chunk` SSE on `POST /v1/chat/completions` (text, and tool
//! calls in the shapes different servers send them), answers each request with the next
//! scripted [`Reply`] (or, when none is queued, an echo of the last user message), records
//! every request with what it streamed, and notices when the client closes the connection:
//! the response body's drop guard stamps the moment hyper gives the body up. Tests wait on
//! that log with [`Upstream::wait_for`], never on sleeps.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State as AxumState;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::Value;
use sessionhub::config::{AgentKind, ApiKey, Config};
use tokio::sync::watch;
use tokio::time::Instant;

mod script;
mod sse;

pub(crate) use script::{echo_pieces, Ev, Gate, Reply};
// Only the tool tests script tool calls; every other binary that includes this module would
// warn.
#[allow(unused_imports)]
pub(crate) use script::CallPart;
use sse::{body_stream, BodyGuard};

/// The model and system prompt [`point_hub_at`] configures.
pub(crate) const MODEL: &str = "scripted-model";
pub(crate) const SYSTEM_PROMPT: &str = "You are a terse test assistant.";

/// Configures a hub to use the OpenAI agent against the upstream at `base_url`, with clocks and
/// retry waits short enough for tests (each test shortens what it exercises further).
pub(crate) fn point_hub_at(c: &mut Config, base_url: &str) {
    c.agent = AgentKind::Openai;
    c.openai_base_url = base_url.to_owned();
    c.openai_api_key = Some(ApiKey::from("sk-scripted"));
    c.model = MODEL.to_owned();
    c.system_prompt = Some(SYSTEM_PROMPT.to_owned());
    c.first_token_timeout_ms = 5_000;
    c.chunk_timeout_ms = 5_000;
    c.upstream_max_attempts = 4;
    c.upstream_backoff_ms = 20;
    c.upstream_max_backoff_ms = 100;
    c.retry_after_cap_ms = 200;
    c.retry_budget_ms = 5_000;
}

/// How the body of a streamed answer ended, as the server saw it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum End {
    /// Still being written.
    Open,
    /// Not a stream (a status answer).
    NotStreamed,
    /// Every scripted step was written.
    Finished,
    /// The script aborted the connection.
    Reset,
    /// The client went away before the script ended; hyper dropped the body at this instant.
    ClientClosed(Instant),
}

/// One request, as received and answered.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub(crate) at: Instant,
    pub(crate) body: Value,
    pub(crate) authorization: Option<String>,
    pub(crate) status: u16,
    /// The content text streamed so far.
    pub(crate) sent: String,
    pub(crate) end: End,
}

impl Request {
    /// The `content` of the last message with role `user`.
    pub(crate) fn last_user_text(&self) -> String {
        self.body["messages"]
            .as_array()
            .into_iter()
            .flatten()
            .rev()
            .find(|m| m["role"] == "user")
            .and_then(|m| m["content"].as_str())
            .unwrap_or_default()
            .to_owned()
    }
}

pub(crate) struct State {
    script: Mutex<VecDeque<Reply>>,
    log: Mutex<Vec<Request>>,
    /// Bumped on every change to `log`; `wait_for` watches it.
    changed: watch::Sender<u64>,
    /// Pause between the echo reply's chunks.
    echo_delay: Mutex<Duration>,
    /// Echo replies wait here after their first chunk when set.
    echo_gate: Mutex<Option<Gate>>,
}

impl State {
    pub(crate) fn update(&self, n: usize, f: impl FnOnce(&mut Request)) {
        f(&mut self.log.lock().unwrap()[n]);
        self.changed.send_modify(|v| *v += 1);
    }
}

/// The running server. Dropping it stops the server.
pub(crate) struct Upstream {
    /// `http://127.0.0.1:<port>/v1`, the agent's base URL.
    pub(crate) base_url: String,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Upstream {
    pub(crate) async fn start() -> Upstream {
        let state = Arc::new(State {
            script: Mutex::new(VecDeque::new()),
            log: Mutex::new(Vec::new()),
            changed: watch::channel(0).0,
            echo_delay: Mutex::new(Duration::from_millis(2)),
            echo_gate: Mutex::new(None),
        });
        let app = Router::new()
            .route("/v1/chat/completions", post(completions))
            .with_state(state.clone());
        // As most model servers do (Go's net and Python's asyncio turn Nagle's algorithm off):
        // otherwise, on a kept-alive connection, a chunk written while the last is still
        // unacknowledged waits for the reader's delayed ACK, up to 40 ms (any pooled client
        // sees it, not only the hub).
        let listener = sessionhub::bind("127.0.0.1:0".parse().expect("addr"))
            .expect("bind the scripted upstream");
        let addr = listener.local_addr().expect("local addr");
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("scripted upstream");
        });
        Upstream {
            base_url: format!("http://{addr}/v1"),
            state,
            task,
        }
    }

    /// Queues the answer to a future request (first in, first out).
    pub(crate) fn push(&self, reply: Reply) {
        self.state.script.lock().unwrap().push_back(reply);
    }

    /// Sets the pause between the chunks of echo replies.
    pub(crate) fn set_echo_delay(&self, delay: Duration) {
        *self.state.echo_delay.lock().unwrap() = delay;
    }

    /// Makes echo replies wait for `gate` after their opening chunk.
    pub(crate) fn set_echo_gate(&self, gate: Gate) {
        *self.state.echo_gate.lock().unwrap() = Some(gate);
    }

    /// Every request so far, in arrival order.
    pub(crate) fn requests(&self) -> Vec<Request> {
        self.state.log.lock().unwrap().clone()
    }

    /// Waits until `check` finds what it looks for in the log; panics after `limit`.
    pub(crate) async fn wait_for<T>(
        &self,
        what: &str,
        limit: Duration,
        check: impl Fn(&[Request]) -> Option<T>,
    ) -> T {
        let mut rx = self.state.changed.subscribe();
        let wait = async {
            loop {
                if let Some(found) = check(&self.state.log.lock().unwrap()) {
                    return found;
                }
                rx.changed().await.expect("upstream state alive");
            }
        };
        match tokio::time::timeout(limit, wait).await {
            Ok(found) => found,
            Err(_) => panic!(
                "upstream: timed out after {limit:?} waiting for {what}; log: {:#?}",
                self.requests()
            ),
        }
    }
}

async fn completions(
    AxumState(state): AxumState<Arc<State>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut request = Request {
        at: Instant::now(),
        body,
        authorization,
        status: 200,
        sent: String::new(),
        end: End::Open,
    };
    let reply = state.script.lock().unwrap().pop_front();
    let reply = reply.unwrap_or_else(|| {
        let delay = *state.echo_delay.lock().unwrap();
        let mut evs = vec![Ev::Role];
        if let Some(gate) = state.echo_gate.lock().unwrap().clone() {
            evs.push(Ev::Wait(gate));
        }
        let pieces = echo_pieces(&request.last_user_text());
        for p in &pieces {
            evs.push(Ev::Sleep(delay));
            evs.push(Ev::Text(p.clone()));
        }
        evs.extend([
            Ev::Finish("stop"),
            Ev::Usage {
                prompt: 7,
                completion: pieces.len() as u32,
            },
            Ev::Done,
        ]);
        Reply::Stream(evs)
    });
    match reply {
        Reply::Status {
            status,
            headers,
            body,
        } => {
            request.status = status;
            request.end = End::NotStreamed;
            record(&state, request);
            let mut response = (
                StatusCode::from_u16(status).expect("valid status"),
                [("content-type", "application/json")],
                body,
            )
                .into_response();
            for (name, value) in headers {
                response
                    .headers_mut()
                    .insert(name, value.parse().expect("header value"));
            }
            response
        }
        Reply::Stream(evs) => {
            let usage_wanted = request.body["stream_options"]["include_usage"] == true;
            let model = request.body["model"].as_str().unwrap_or("?").to_owned();
            let n = record(&state, request);
            let guard = BodyGuard {
                state: state.clone(),
                n,
            };
            let body = body_stream(guard, evs.into(), model, usage_wanted);
            Response::builder()
                .header("content-type", "text/event-stream")
                .header("cache-control", "no-cache")
                .body(Body::from_stream(body))
                .expect("response")
        }
    }
}

fn record(state: &State, request: Request) -> usize {
    let mut log = state.log.lock().unwrap();
    log.push(request);
    let n = log.len() - 1;
    drop(log);
    state.changed.send_modify(|v| *v += 1);
    n
}
