//! The bearer token of an MCP server (`SESSIONHUB_MCP_<NAME>_TOKEN`, here put in the config
//! directly) reaches the server in the Authorization header, and nothing else: not the tool
//! specs the model is offered, not a tool's output, not the config's Debug, not a log line at
//! any level. Alone in its binary: its log capture is a thread-scoped subscriber, and tracing's
//! callsite cache can miss lines when other tests log on other threads at the same time.

#[path = "mcp/harness.rs"]
mod harness;

use std::sync::{Arc, Mutex};

use harness::{PyServer, WAIT};
use sessionhub::config::{mcp_token_key, Config, Secret};
use sessionhub::tools::from_config;
use sessionhub::tools::mcp::McpSource;
use sessionhub::tools::ToolSource;

/// A config naming the one MCP server `secure-docs` at `url`, with no token yet.
fn config(url: &str) -> Config {
    let mut c = Config::for_tests(std::env::temp_dir());
    c.tools.mcp_servers = vec![format!("secure-docs={url}")];
    c.tools.mcp_tokens.clear();
    c
}

/// Everything logged on this thread (the test's current-thread runtime runs every task).
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_bearer_token_reaches_the_server_and_nothing_the_model_or_the_logs_see() {
    let token = format!("tok-{}", uuid::Uuid::new_v4().simple());
    let logs = Capture::default();
    let writer = logs.clone();
    let _log = tracing::subscriber::set_default(
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .finish(),
    );
    let server = PyServer::start(0, Some(&token)).await;
    let mut cfg = config(&server.url());
    cfg.tools
        .mcp_tokens
        .insert(mcp_token_key("secure-docs"), Secret::from(token.as_str()));
    assert_eq!(mcp_token_key("secure-docs"), "SECURE_DOCS");
    let tools = from_config(&cfg).await.unwrap();
    let out = tools.call("secure-docs__echo", r#"{"text": "ok"}"#).await;
    assert_eq!(out.output, "ok", "{out:?}");
    let state = server.state().await;
    assert!(state["authorized"].as_u64().unwrap() >= 3, "{state}");
    assert_eq!(state["unauthorized"], 0, "{state}");

    // Without the token the server refuses: no tools, no panic.
    let anonymous = McpSource::spawn("anon".into(), server.url(), None);
    anonymous.first_attempt(WAIT).await;
    assert!(anonymous.specs().is_empty());
    assert!(server.state().await["unauthorized"].as_u64().unwrap() >= 1);

    let specs = serde_json::to_string(&tools.specs()).unwrap();
    assert!(specs.contains("secure-docs__echo"));
    assert!(!specs.contains(&token), "the token is in the tool specs");
    assert!(!out.output.contains(&token));
    assert!(
        !format!("{cfg:?}").contains(&token),
        "the token is in the config's Debug"
    );
    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("MCP tools listed"),
        "the capture works: {logs}"
    );
    assert!(!logs.contains(&token), "the token is in the logs");
}
