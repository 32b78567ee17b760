//! Reasoning on the bundled page in headless Chromium (Debian's `chromium` driven by npm
//! `playwright-core`) against the real hub, PROTOCOL 1.2: a `/think` message shows a
//! collapsible thinking block above the reply, streaming open in a WebSocket page and an SSE
//! page, collapsed once the reply starts, kept across a reload. Scenario:
//! tests/browser/thinking-scenarios.mjs.

use crate::runner;
use crate::support;

use std::path::Path;

use runner::{Scenario, SERIAL};
use support::TestHub;

const DELTAS: u32 = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_the_thinking_block_streams_then_collapses_above_the_reply() {
    let _one_at_a_time = SERIAL.lock().await;
    runner::require_setup();
    let hub = TestHub::start_with(|c| {
        c.static_dir = Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("static"));
        c.scripted_deltas = DELTAS;
        c.scripted_delay_ms = 80;
    })
    .await;
    let r = Scenario::start("thinking", &format!("http://{}", hub.addr), DELTAS)
        .finish()
        .await;
    assert!(
        r["thoughtSeenStreaming"]["one"]
            .as_u64()
            .is_some_and(|n| n > 0),
        "{r}"
    );
    hub.stop().await;
}
