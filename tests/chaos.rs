//! Crash chaos, bounded (issue 15): the real binary is killed with SIGKILL at 25 moments a
//! seeded RNG picks while WebSocket and SSE tabs of three sessions send and replies stream,
//! and restarted on the same data dir each time. After every restart every acknowledged
//! message and every item a client saw finished is stored exactly once with the same text, and
//! a reply cut by the kill keeps a text that agrees with its deltas; no (epoch, seq) ever names
//! two different events across all clients and lives of the hub;
//! resumes from before a crash get a snapshot under a new epoch; sends repeated after a crash
//! (same `client_msg_id`) do not duplicate. The engine is `loadtest::chaos`; scenario S9 of the
//! load test runs it larger.
//!
//! The seed is printed; `SESSIONHUB_CHAOS_SEED=<seed>` replays the same kill moments (the hub's
//! own timing still varies).

use loadtest::chaos::{self, ChaosPlan};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_at_25_random_moments_loses_and_confuses_nothing() {
    let seed = match std::env::var("SESSIONHUB_CHAOS_SEED") {
        Ok(s) => s.parse().expect("SESSIONHUB_CHAOS_SEED is a u64"),
        Err(_) => chaos::clock_seed(),
    };
    eprintln!("chaos seed {seed} (replay with SESSIONHUB_CHAOS_SEED={seed})");
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = ChaosPlan {
        bin: env!("CARGO_BIN_EXE_sessionhub").into(),
        data_dir: dir.path().join("data"),
        sessions: 3,
        ws_tabs: 2,
        sse_tabs: 1,
        kills: 25,
        seed,
        deltas: 30,
        delay_ms: 5,
        checkpoint_ms: 40,
        kill_after_ms: (50, 500),
        think_ms: (10, 120),
    };
    let r = chaos::run(&plan).await.expect("chaos run");
    let figures = serde_json::to_string_pretty(&r).expect("json");
    eprintln!("{figures}");
    assert!(
        r.violations.is_empty(),
        "seed {seed}: {} violations, first ones:\n{}",
        r.violation_count,
        r.violations.join("\n")
    );
    // The run did what it claims: kills, restarts, acks, finished items, snapshot resumes.
    assert_eq!(r.restart_ms.len(), 25, "{figures}");
    assert!(r.acked > 25, "too few acknowledged messages: {figures}");
    assert!(
        r.finished_replies >= 10,
        "too few finished replies: {figures}"
    );
    assert!(
        r.retry_duplicates >= 25,
        "repeated sends were not recognised: {figures}"
    );
    let resumed = r
        .resumes
        .get("resume after a crash: snapshot under a new epoch")
        .copied()
        .unwrap_or(0);
    assert!(
        resumed >= 25 * 9 / 2,
        "too few resumes after crashes: {figures}"
    );
}
