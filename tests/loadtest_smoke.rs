//! The load test's smoke profile (issue 7): the real loader against the real hub for a few
//! seconds per phase. It checks correctness only, never speed: every tab receives every delta
//! of every run exactly once, in seq order, and each finished item's text equals its deltas;
//! also across reconnects with resume and on the SSE fallback.

mod support;

use std::time::Duration;

use loadtest::ceiling::{self, Ceiling, CeilingConfig};
use loadtest::fanout::{self, FanoutPlan, FanoutResult};
use support::TestHub;

const DELTAS: u32 = 50;
const DELAY_MS: u64 = 5;

async fn start_hub() -> TestHub {
    TestHub::start_with(|c| {
        c.scripted_stamp = true;
        c.scripted_deltas = DELTAS;
        c.scripted_delay_ms = DELAY_MS;
    })
    .await
}

/// A plan whose window covers every run: the drivers start at the window's start, and each tab
/// leaves as soon as it saw all its runs complete (the duration is only the upper bound, for a
/// machine whose disk makes every barrier slow).
fn plan(addr: std::net::SocketAddr, sessions: usize, tabs: usize, runs: usize) -> FanoutPlan {
    let rate = 1000.0 / DELAY_MS as f64;
    let mut p = FanoutPlan::new(addr, sessions, tabs, rate);
    p.messages = runs;
    p.expect_runs = Some(runs as u64);
    p.check_text = true;
    p.warmup = Duration::ZERO;
    // Runs take runs x DELTAS x DELAY_MS plus a durability barrier per run boundary.
    p.duration = Duration::from_millis(runs as u64 * DELTAS as u64 * DELAY_MS * 4 + 20_000);
    p.drain = Duration::from_secs(1);
    p.connect_timeout = Duration::from_secs(30);
    p
}

/// Runs the blocking loader off the test's runtime, which keeps serving the hub meanwhile.
async fn load(p: FanoutPlan) -> FanoutResult {
    tokio::task::spawn_blocking(move || fanout::run(&p))
        .await
        .expect("loader thread")
        .expect("loader run")
}

/// Everything a correct server owes the loader, with the numbers that prove it.
fn assert_complete(r: &FanoutResult, runs: usize) {
    let tabs = (r.sessions * r.tabs) as u64;
    let owed = tabs * runs as u64 * DELTAS as u64;
    let what = serde_json::to_string_pretty(r).unwrap_or_default();
    assert_eq!(r.connect_failures, 0, "{what}");
    assert_eq!(r.tabs_done, tabs, "{what}");
    assert_eq!(
        r.expected, owed,
        "every delta of every run stamped in the window: {what}"
    );
    assert_eq!(r.delivered, owed, "every tab got every delta: {what}");
    assert_eq!(r.loss, 0, "{what}");
    assert_eq!((r.gaps, r.dups, r.epoch_changes), (0, 0, 0), "{what}");
    assert_eq!(
        r.tabs_all_runs, tabs,
        "every tab saw every run complete: {what}"
    );
    assert_eq!(r.text_checked, tabs * runs as u64, "{what}");
    assert_eq!(
        r.text_mismatches, 0,
        "item text = concatenated deltas: {what}"
    );
    assert_eq!(r.bad_frames, 0, "{what}");
    assert!(r.errors.is_empty(), "{what}");
    assert!(r.closes.is_empty(), "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_tabs_get_every_delta_once() {
    let hub = start_hub().await;
    let runs = 4;
    let r = load(plan(hub.addr, 20, 5, runs)).await;
    assert_complete(&r, runs);
    assert_eq!(r.acks, 20 * runs as u64, "every send acknowledged once");
    assert!(r.p99_ms > 0.0, "latency measured from the stamps");
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnecting_tabs_resume_without_gaps() {
    let hub = start_hub().await;
    let runs = 10;
    let mut p = plan(hub.addr, 10, 5, runs);
    // Every tab drops and resumes about once a second while the runs stream.
    p.churn_per_s = 1.0;
    let r = load(p).await;
    assert_complete(&r, runs);
    assert!(r.reconnects >= 50, "tabs reconnected: {}", r.reconnects);
    // A driver that reconnects sends its unacknowledged messages again (same client_msg_id),
    // so acks can repeat; no message may end without one.
    assert!(r.acks >= 10 * runs as u64, "acks: {}", r.acks);
    assert_eq!(r.reconnect_failures, 0);
    assert_eq!(r.snapshot_resumes, 0, "a quick resume is a replay");
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_tabs_get_every_delta_once() {
    let hub = start_hub().await;
    let runs = 3;
    let mut p = plan(hub.addr, 10, 5, runs);
    p.sse = true;
    let r = load(p).await;
    assert_complete(&r, runs);
    hub.stop().await;
}

/// The ceiling the hub is compared with must tell the same story, or its figures mean nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ceiling_server_is_correct_too() {
    let cfg = CeilingConfig {
        deltas: DELTAS as usize,
        delay: Duration::from_millis(DELAY_MS),
        ..CeilingConfig::default()
    };
    let listener = ceiling::listen("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(ceiling::serve(listener, Ceiling::new(cfg)));
    let runs = 3;
    let mut p = plan(addr, 10, 5, runs);
    p.churn_per_s = 1.0;
    assert_complete(&load(p).await, runs);
    let mut p = plan(addr, 10, 5, runs);
    p.sse = true;
    assert_complete(&load(p).await, runs);
    server.abort();
}
