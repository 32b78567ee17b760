//! Scenario S9 of the suite: the chaos run at a larger scale than the test command's (more
//! sessions and tabs, longer replies, longer lives between kills), against the release hub.

use super::{ChaosPlan, ChaosResult};
use crate::suite::{Record, Suite};

/// The plan: 25 kills either way; the quick profile is smaller and kills sooner.
fn plan(s: &Suite, seed: u64) -> ChaosPlan {
    let quick = s.cfg.quick;
    ChaosPlan {
        bin: crate::server::bin_dir().join("sessionhub"),
        data_dir: s.cfg.scratch.join("chaos-data"),
        sessions: if quick { 5 } else { 20 },
        ws_tabs: 4,
        sse_tabs: 2,
        kills: 25,
        seed,
        // 0.4 s replies: several finish in each life of the hub, others are cut by the kill.
        deltas: 40,
        delay_ms: 10,
        checkpoint_ms: 100,
        kill_after_ms: if quick { (100, 800) } else { (300, 3000) },
        think_ms: (50, 500),
    }
}

/// Run S9 and keep its record. The seed comes from `SESSIONHUB_CHAOS_SEED` when set (to
/// replay the kill moments of a report), else from the clock; the report prints it.
pub(crate) fn point(s: &mut Suite) {
    let seed = std::env::var("SESSIONHUB_CHAOS_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(super::clock_seed);
    let p = plan(s, seed);
    let _ = std::fs::remove_dir_all(&p.data_dir);
    s.log(&format!(
        "S9 crash chaos: {} sessions x ({} WebSocket + {} SSE tabs), {} kills, seed {seed}",
        p.sessions, p.ws_tabs, p.sse_tabs, p.kills
    ));
    let mut rec = Record::new("S9", "kill -9 x 25", "hub", 0);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build();
    let r: anyhow::Result<ChaosResult> = match rt {
        Ok(rt) => rt.block_on(super::run(&p)),
        Err(e) => Err(e.into()),
    };
    match r {
        Ok(r) => {
            s.log(&format!(
                "  {} acknowledged messages, {} events compared, {} violations, restart p50 {:.0} ms max {:.0} ms",
                r.acked, r.events_compared, r.violation_count, r.restart_p50_ms, r.restart_max_ms
            ));
            rec.chaos = Some(r);
        }
        Err(e) => {
            s.log(&format!("  failed: {e:#}"));
            rec.error = Some(format!("{e:#}"));
        }
    }
    let _ = std::fs::remove_dir_all(&p.data_dir);
    s.records.push(rec);
}
