//! Server tools over MCP against a real MCP server (tests/mcp/server.py, the official Python
//! SDK on streamable HTTP): listing as `NAME__TOOL`, calls, tool errors, the timeout, the
//! cancellation a dropped call sends, a server down at start or lost and back, `list_changed`,
//! and the client's overhead against a raw HTTP loop. The bearer token: tests/mcp_token.rs.

use crate::harness;

use std::sync::Arc;
use std::time::{Duration, Instant};

use harness::{eventually, free_port, PyServer, WAIT};
use serde_json::{json, Value};
use sessionhub::config::Config;
use sessionhub::tools::mcp::McpSource;
use sessionhub::tools::{from_config, ToolSource, Tools};

/// A config naming the MCP servers `servers` (`NAME=URL`).
fn config(servers: &[String]) -> Config {
    let mut c = Config::for_tests(std::env::temp_dir());
    c.tools.mcp_servers = servers.to_vec();
    c.tools.mcp_tokens.clear();
    c
}

fn names(tools: &Tools) -> Vec<String> {
    let mut n: Vec<String> = tools.specs().into_iter().map(|t| t.name).collect();
    n.sort();
    n
}

#[tokio::test]
async fn tools_are_listed_as_name_tool_and_called_with_the_models_arguments() {
    let server = PyServer::start(0, None).await;
    let tools = from_config(&config(&[format!("py={}", server.url())]))
        .await
        .expect("tools");
    // from_config waited for the first connection: the tools are there at once.
    assert_eq!(
        names(&tools),
        [
            "py__add",
            "py__echo",
            "py__fail",
            "py__grow",
            "py__picture",
            "py__sleep"
        ]
    );
    let add = tools
        .specs()
        .into_iter()
        .find(|t| t.name == "py__add")
        .unwrap();
    assert_eq!(add.description.as_deref(), Some("Add two integers."));
    assert_eq!(add.parameters["type"], "object");
    assert_eq!(add.parameters["properties"]["a"]["type"], "integer");
    assert_eq!(add.parameters["required"], json!(["a", "b"]));

    let out = tools.call("py__add", r#"{"a": 2, "b": 40}"#).await;
    assert!(!out.is_error, "{out:?}");
    assert_eq!(out.output, "42");
    let out = tools.call("py__echo", r#"{"text": "héllo ✓"}"#).await;
    assert_eq!(out.output, "héllo ✓");
    // Other content types are described, text parts kept.
    let out = tools.call("py__picture", "").await;
    assert_eq!(out.output, "a red pixel\n[image: image/png, 70 bytes]");

    // Arguments the model got wrong: a failed call with a clear message, no panic.
    let out = tools.call("py__add", r#"{"a": 2,"#).await;
    assert!(out.is_error);
    assert!(
        out.output.starts_with("the arguments are not valid JSON"),
        "{}",
        out.output
    );
    let out = tools.call("py__add", "[2, 40]").await;
    assert!(out.is_error);
    assert_eq!(
        out.output,
        "the arguments must be a JSON object, not an array"
    );
    let out = tools.call("py__add", r#"{"a": "two"}"#).await;
    assert!(
        out.is_error,
        "the server's validation error fails the call: {out:?}"
    );
    let out = tools.call("py__nope", "{}").await;
    assert!(out.is_error);
    assert_eq!(out.output, "no server offers the tool `py__nope`");
}

#[tokio::test]
async fn a_tool_error_fails_the_call_with_its_message() {
    let server = PyServer::start(0, None).await;
    let tools = from_config(&config(&[format!("py={}", server.url())]))
        .await
        .unwrap();
    let out = tools.call("py__fail", r#"{"message": "disk full"}"#).await;
    assert!(out.is_error, "{out:?}");
    assert!(out.output.contains("disk full"), "{}", out.output);
}

#[tokio::test]
async fn a_slow_tool_times_out_and_is_cancelled_at_the_server() {
    let server = PyServer::start(0, None).await;
    let mut cfg = config(&[format!("py={}", server.url())]);
    cfg.tools.tool_timeout_ms = 300;
    let tools = from_config(&cfg).await.unwrap();
    let start = Instant::now();
    let out = tools.call("py__sleep", r#"{"seconds": 30}"#).await;
    assert!(out.is_error);
    assert_eq!(out.output, "the tool did not answer within 300 ms");
    assert!(start.elapsed() < Duration::from_secs(5));
    let state = server
        .wait_state("the cancellation of the timed-out call", |s| {
            s["cancelled"].as_array().is_some_and(|c| c.len() == 1)
        })
        .await;
    assert_eq!(state["cancelled"], state["started"]);
}

#[tokio::test]
async fn dropping_a_call_sends_notifications_cancelled_for_it() {
    let server = PyServer::start(0, None).await;
    let tools = from_config(&config(&[format!("py={}", server.url())]))
        .await
        .unwrap();
    let mut call = tools.call("py__sleep", r#"{"seconds": 30}"#);
    tokio::select! {
        out = &mut call => panic!("the call ended before it was dropped: {out:?}"),
        _ = server.wait_state("the call to start", |s| s["started"].as_array().is_some_and(|a| a.len() == 1)) => {}
    }
    let dropped = Instant::now();
    drop(call);
    let state = server
        .wait_state("the server to record the cancellation", |s| {
            s["cancelled"].as_array().is_some_and(|c| c.len() == 1)
        })
        .await;
    assert_eq!(
        state["cancelled"], state["started"],
        "the running request was the one cancelled"
    );
    eprintln!(
        "drop to the tool's cancellation at the server: {:?}",
        dropped.elapsed()
    );
}

#[tokio::test]
async fn a_server_down_at_start_is_retried_and_its_tools_appear_once_it_answers() {
    let port = free_port();
    let started = Instant::now();
    let tools = from_config(&config(&[format!("late={}", harness::url(port))]))
        .await
        .expect("the hub starts without the server");
    assert!(started.elapsed() < WAIT);
    assert!(tools.specs().is_empty());
    let out = tools.call("late__add", r#"{"a": 1, "b": 2}"#).await;
    assert!(out.is_error, "{out:?}");

    let server = PyServer::start(port, None).await;
    let waited = eventually("the late server's tools", || tools.has("late__add")).await;
    eprintln!("tools offered {waited:?} after the late server started listening");
    let out = tools.call("late__add", r#"{"a": 1, "b": 2}"#).await;
    assert_eq!(out.output, "3", "{out:?}");
    drop(server);
}

#[tokio::test]
async fn a_server_that_goes_away_is_withdrawn_and_found_again() {
    let server = PyServer::start(0, None).await;
    let port = server.port;
    let source = McpSource::spawn("py".into(), server.url(), None);
    source.first_attempt(WAIT).await;
    let tools = Tools::new(
        vec![source.clone() as Arc<dyn ToolSource>],
        &config(&[]).tools,
    )
    .unwrap();
    assert_eq!(
        tools.call("py__add", r#"{"a": 1, "b": 1}"#).await.output,
        "2"
    );

    server.stop().await;
    let out = tools.call("py__add", r#"{"a": 1, "b": 1}"#).await;
    assert!(out.is_error);
    assert_eq!(out.output, "the MCP server `py` cannot be reached now");
    // The failed call made the connection task look: the server is gone, its tools too.
    let mut status = source.status();
    tokio::time::timeout(WAIT, status.wait_for(|s| !s.connected))
        .await
        .expect("the lost server noticed")
        .unwrap();
    assert!(tools.specs().is_empty());

    let _server = PyServer::start(port, None).await;
    let waited = eventually("the tools of the restarted server", || tools.has("py__add")).await;
    eprintln!("tools offered again {waited:?} after the server restarted");
    assert_eq!(
        tools.call("py__add", r#"{"a": 1, "b": 1}"#).await.output,
        "2"
    );
}

#[tokio::test]
async fn list_changed_brings_the_new_tool_list() {
    let server = PyServer::start(0, None).await;
    let source = McpSource::spawn("py".into(), server.url(), None);
    source.first_attempt(WAIT).await;
    let tools = Tools::new(
        vec![source.clone() as Arc<dyn ToolSource>],
        &config(&[]).tools,
    )
    .unwrap();
    assert!(!tools.has("py__extra"));
    let listings = source.status().borrow().listings;

    let out = tools.call("py__grow", r#"{"name": "extra"}"#).await;
    assert_eq!(out.output, "added extra", "{out:?}");
    let mut status = source.status();
    tokio::time::timeout(WAIT, status.wait_for(|s| s.listings > listings))
        .await
        .expect("a new listing after notifications/tools/list_changed")
        .unwrap();
    assert!(tools.has("py__extra"), "{:?}", names(&tools));
    let out = tools.call("py__extra", r#"{"text": "hi"}"#).await;
    assert_eq!(out.output, "extra: hi");
}

/// One `tools/call` of `echo` per request, spoken by hand over HTTP: the floor any client
/// pays for the server itself. A new TCP connection per request, as rmcp's own HTTP client
/// does: a kept-alive connection stalls about 40 ms per call against this server (delayed
/// ACKs), which would flatter the hub.
struct RawClient {
    http: reqwest::Client,
    url: String,
    session: String,
    id: u64,
}

impl RawClient {
    async fn connect(url: String) -> Self {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "raw", "version": "0"}}});
        let res = Self::post(&http, &url, None, &init).await;
        let session = res.headers()["mcp-session-id"].to_str().unwrap().to_owned();
        res.text().await.unwrap();
        let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        Self::post(&http, &url, Some(&session), &initialized)
            .await
            .text()
            .await
            .unwrap();
        RawClient {
            http,
            url,
            session,
            id: 0,
        }
    }

    async fn post(
        http: &reqwest::Client,
        url: &str,
        session: Option<&str>,
        body: &Value,
    ) -> reqwest::Response {
        let mut req = http
            .post(url)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-06-18")
            .json(body);
        if let Some(s) = session {
            req = req.header("mcp-session-id", s);
        }
        let res = req.send().await.unwrap();
        assert!(res.status().is_success(), "{}", res.status());
        res
    }

    async fn echo(&mut self, text: &str) -> String {
        self.id += 1;
        let call = json!({"jsonrpc": "2.0", "id": self.id, "method": "tools/call",
            "params": {"name": "echo", "arguments": {"text": text}}});
        Self::post(&self.http, &self.url, Some(&self.session), &call)
            .await
            .text()
            .await
            .unwrap()
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::test]
async fn a_call_through_the_hub_costs_little_more_than_raw_http() {
    const CALLS: usize = 200;
    let server = PyServer::start(0, None).await;
    let tools = from_config(&config(&[format!("py={}", server.url())]))
        .await
        .unwrap();
    let mut raw = RawClient::connect(server.url()).await;
    let (mut hub_times, mut raw_times) = (Vec::new(), Vec::new());
    for i in 0..CALLS + 20 {
        // Interleaved, so both see the same server and machine load.
        let t = Instant::now();
        let out = tools.call("py__echo", r#"{"text": "ping"}"#).await;
        let hub = t.elapsed();
        assert_eq!(out.output, "ping");
        let t = Instant::now();
        assert!(raw.echo("ping").await.contains(r#""text":"ping""#));
        let direct = t.elapsed();
        if i >= 20 {
            hub_times.push(hub);
            raw_times.push(direct);
        }
    }
    hub_times.sort();
    raw_times.sort();
    let (h50, r50) = (percentile(&hub_times, 0.5), percentile(&raw_times, 0.5));
    let (h99, r99) = (percentile(&hub_times, 0.99), percentile(&raw_times, 0.99));
    eprintln!(
        "MCP call overhead over {CALLS} echo calls: hub (Tools -> rmcp) p50 {h50:?} p99 {h99:?}; \
         raw HTTP p50 {r50:?} p99 {r99:?}; overhead p50 {:?}",
        h50.saturating_sub(r50)
    );
    assert!(h50 < Duration::from_secs(1));
}
