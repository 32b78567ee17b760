//! The bundled page in headless Chromium (Debian's `chromium` driven by npm `playwright-core`)
//! against the real hub: fan-out to two pages, Stop from the other page, reload mid-stream,
//! and SSE mode with WebSockets disabled. Each scenario fails on any console error and saves
//! screenshots under tests/artifacts/browser/.

use crate::runner;
use crate::support;

use runner::{Scenario, SERIAL};
use support::TestHub;

/// Replies are `deltas` deltas 50 ms apart: long enough to stop, reload or resume mid-stream
/// even on a busy machine.
async fn run(name: &str, deltas: u32) -> serde_json::Value {
    let _one_at_a_time = SERIAL.lock().await;
    runner::require_setup();
    let hub = TestHub::start_with(|c| {
        c.scripted_deltas = deltas;
        c.scripted_delay_ms = 50;
    })
    .await;
    let result = Scenario::start(name, &format!("http://{}", hub.addr), deltas)
        .finish()
        .await;
    hub.stop().await;
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_two_pages_stream_the_same_reply() {
    let r = run("fanout", 40).await;
    assert!(
        r["streamingSeen"]["two"].as_u64().is_some_and(|n| n > 0),
        "{r}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_stop_in_one_page_stops_both() {
    let r = run("stop", 40).await;
    eprintln!(
        "stop click to cancelled on both pages: {} ms",
        r["stopToCancelledMs"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_reload_mid_stream_catches_up_exactly() {
    let r = run("reload", 100).await;
    assert_eq!(r["caughtUpMidStream"], true, "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_sse_mode_sends_streams_stops_and_resumes() {
    let r = run("sse", 60).await;
    assert_eq!(r["resume"], "replay", "{r}");
}
