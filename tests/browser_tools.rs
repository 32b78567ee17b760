//! Tool calls on the bundled page in headless Chromium (Debian's `chromium` driven by npm
//! `playwright-core`) against the real hub, PROTOCOL 1.1: the page's own client tool
//! `page_info` answers the scripted agent's call and the reply quotes it, over the WebSocket
//! and over SSE, also for a call found in a snapshot; and a server tool of a real MCP server
//! (tests/mcp/server.py, under `--tool-approval`) approved in one page (on SSE) runs and
//! resolves the call in the other (on the WebSocket), then a denial, then two pages that both
//! run one client call (the hub keeps one result, neither page shows an error). Scenarios:
//! tests/browser/tool-scenarios.mjs.

#[allow(dead_code)]
use crate::harness;
use crate::runner;
use crate::support;

use std::path::Path;

use runner::{Scenario, SERIAL};
use sessionhub::config::Config;
use support::TestHub;

/// Deltas of a plain reply; a tool reply streams one delta per word.
const DELTAS: u32 = 8;

/// The page as it is in this checkout (the binary's built-in copy is tested by browser_page).
fn serve_this_page(c: &mut Config) {
    c.static_dir = Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("static"));
    c.scripted_deltas = DELTAS;
    c.scripted_delay_ms = 20;
}

async fn run(name: &str, hub: &TestHub) -> serde_json::Value {
    Scenario::start(name, &format!("http://{}", hub.addr), DELTAS)
        .finish()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_the_pages_own_tool_runs_and_the_reply_quotes_it() {
    let _one_at_a_time = SERIAL.lock().await;
    runner::require_setup();
    let hub = TestHub::start_with(serve_this_page).await;
    let r = run("tool-page", &hub).await;
    assert!(r["ws"]["output"].as_u64().is_some_and(|n| n > 0), "{r}");
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_the_pages_own_tool_runs_over_sse_too() {
    let _one_at_a_time = SERIAL.lock().await;
    runner::require_setup();
    let hub = TestHub::start_with(serve_this_page).await;
    let r = run("tool-page-sse", &hub).await;
    assert!(
        r["sse"]["lateOutput"].as_u64().is_some_and(|n| n > 0),
        "{r}"
    );
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_an_approval_in_one_page_resolves_the_call_in_the_other() {
    let _one_at_a_time = SERIAL.lock().await;
    runner::require_setup();
    let server = harness::PyServer::start(0, None).await;
    let hub = TestHub::start_with(|c| {
        serve_this_page(c);
        c.tools.mcp_servers = vec![format!("py={}", server.url())];
        c.tools.mcp_tokens.clear();
        c.tools.tool_approval = vec!["py__echo".into()];
    })
    .await;
    let r = run("tool-approval", &hub).await;
    eprintln!(
        "approve click in one page to the tool's result in the other: {} ms",
        r["approveToResultMs"]
    );
    hub.stop().await;
    server.stop().await;
}
