//! The detail tables: every fan-out, idle and ChatKit measurement with its contamination, and
//! the crash chaos figures (S9).

use std::fmt::Write as _;

use crate::suite::Suite;

pub(super) fn fanout_table(s: &Suite, out: &mut String) {
    let _ = writeln!(out, "## Fan-out runs (S3-S8)\n");
    let _ = writeln!(out, "`rate/s` is what the server actually produced per session in the window (asked: the point's rate). `loss` counts deliveries owed for deltas stamped in the window that a tab had not received by the end of the 2 s drain (late or never); seq gaps and duplicates, which would mean skipped or repeated events, are in the notes. Latency is production stamp to receipt by the tab. `other` is CPU used by processes other than the server and the loader, in cores (contaminated above 0.10).\n");
    let _ = writeln!(out, "| scenario | point | server | rep | tabs | rate/s | delivered/s | loss | p50 ms | p99 ms | p99.9 ms | server cores | deliveries per CPU-s | loader cores | other | RSS MB | notes |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in &s.records {
        if let Some(f) = &r.fanout {
            let mut notes = Vec::new();
            if f.contaminated {
                let top: Vec<String> = f
                    .cpu
                    .other_top
                    .iter()
                    .map(|(n, c)| format!("{n} {c:.2}"))
                    .collect();
                notes.push(format!("CONTAMINATED ({})", top.join(", ")));
            }
            if r.retried {
                notes.push("retried".into());
            }
            if f.gaps + f.dups > 0 {
                notes.push(format!("gaps {} dups {}", f.gaps, f.dups));
            }
            if f.reconnects > 0 {
                notes.push(format!(
                    "{} reconnects ({} failed), {} replayed (p99 {:.1} ms), {} snapshot resumes",
                    f.reconnects,
                    f.reconnect_failures,
                    f.replayed,
                    f.replay_p99_ms,
                    f.snapshot_resumes
                ));
            }
            if f.slow_tabs > 0 {
                notes.push(format!(
                    "{} slow tabs, {} cut by the server",
                    f.slow_tabs, f.slow_cut
                ));
            }
            if f.connect_failures > 0 {
                notes.push(format!("{} connect failures", f.connect_failures));
            }
            for (k, v) in f.errors.iter().chain(f.closes.iter()).take(3) {
                notes.push(format!("{k} x{v}"));
            }
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {:.1} | {:.0} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.0} | {:.2} | {:.2} | {:.1} | {} |",
                r.scenario, r.point, r.server, r.rep + 1, f.sessions * f.tabs, f.produced_rate, f.deliveries_per_s, f.loss,
                f.p50_ms, f.p99_ms, f.p999_ms, f.cpu.server_cores, f.deliveries_per_cpu_s, f.cpu.loader_cores,
                f.cpu.other_cores, f.rss_kb_end as f64 / 1024.0, notes.join("; ")
            );
        } else if r.idle.is_none() && r.chatkit.is_none() && r.scenario != "CK" {
            let _ = writeln!(out, "| {} | {} | {} | {} | - | - | - | - | - | - | - | - | - | - | - | - | FAILED: {} |", r.scenario, r.point, r.server, r.rep + 1, r.error.as_deref().unwrap_or("?").replace('|', "/"));
        }
    }
    let _ = writeln!(out);
}

pub(super) fn idle_table(s: &Suite, out: &mut String) {
    let _ = writeln!(out, "## Idle connections and connect bursts (S1, S2)\n");
    let _ = writeln!(out, "Each connection is a WebSocket that subscribed to one of 100 sessions and then stays idle. RSS per connection is (RSS after the step - RSS before the first connection) / connections.\n");
    let _ = writeln!(out, "| scenario | server | connections | failed | conn/s | handshake p50 ms | p99 ms | max ms | server CPU µs per conn | RSS MB | peak RSS MB | KB per conn | kernel TCP MB |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in s.records.iter().filter(|r| {
        r.idle.is_some()
            || (r.fanout.is_none()
                && r.error.is_some()
                && (r.scenario == "S1" || r.scenario == "S2"))
    }) {
        let Some(i) = &r.idle else {
            let _ = writeln!(
                out,
                "| {} | {} | FAILED: {} |||||||||||",
                r.scenario,
                r.server,
                r.error.as_deref().unwrap_or("?").replace('|', "/")
            );
            continue;
        };
        for st in &i.steps {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {:.0} | {:.1} | {:.1} | {:.1} | {:.0} | {:.1} | {:.1} | {:.2} | {:.1} |",
                r.scenario, r.server, st.connected, st.failed, st.conn_per_s, st.handshake_p50_ms, st.handshake_p99_ms,
                st.handshake_max_ms, st.cpu_us_per_conn, st.rss_kb as f64 / 1024.0, st.hwm_kb as f64 / 1024.0,
                st.rss_per_conn_kb, st.kernel_tcp_kb as f64 / 1024.0
            );
        }
        let _ = writeln!(out, "| {} | {} | held after the last step (answered a ping): {} | | | | | | | base RSS {:.1} MB | | | |", r.scenario, r.server, i.held, i.base_rss_kb as f64 / 1024.0);
        if !i.failures.is_empty() {
            let _ = writeln!(
                out,
                "| {} | {} | failures: {} |||||||||||",
                r.scenario,
                r.server,
                i.failures.join("; ").replace('|', "/")
            );
        }
    }
    let _ = writeln!(out);
}

pub(super) fn chatkit_table(s: &Suite, out: &mut String) {
    let recs: Vec<_> = s.records.iter().filter(|r| r.scenario == "CK").collect();
    if recs.is_empty() {
        return;
    }
    let _ = writeln!(out, "## ChatKit side by side\n");
    let _ = writeln!(out, "N concurrent ChatKit streams (`POST /chatkit`, `threads.create`, each stream starts its next turn when the last ends); the same scripted reply of 200 deltas without stamps. The hub keeps its durability barrier on (a new thread and its user message are fsynced before the reply streams); the official ChatKit Python server (`openai-chatkit` over uvicorn, tests/chatkit/reference_server.py) keeps everything in memory.\n");
    let _ = writeln!(out, "| point | server | deltas/s | server cores | deltas per server-CPU-s | turns | errors | RSS MB | other | notes |\n|---|---|---|---|---|---|---|---|---|---|");
    for r in recs {
        match &r.chatkit {
            Some(c) => {
                let _ = writeln!(
                    out,
                    "| {} | {} | {:.0} | {:.2} | {:.0} | {} | {} | {:.1} | {:.2} | {}{} |",
                    r.point,
                    r.server,
                    c.deltas_per_s,
                    c.cpu.server_cores,
                    c.deltas_per_cpu_s,
                    c.turns,
                    c.errors,
                    c.rss_kb_end as f64 / 1024.0,
                    c.cpu.other_cores,
                    if c.contaminated { "CONTAMINATED " } else { "" },
                    c.first_error.as_deref().unwrap_or("").replace('|', "/")
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "| {} | {} | FAILED: {} ||||||||",
                    r.point,
                    r.server,
                    r.error.as_deref().unwrap_or("?").replace('|', "/")
                );
            }
        }
    }
    let _ = writeln!(out);
}

/// S9: what the chaos run checked and found, then the first violations word for word.
pub(super) fn chaos_table(s: &Suite, out: &mut String) {
    let recs: Vec<_> = s.records.iter().filter(|r| r.scenario == "S9").collect();
    if recs.is_empty() {
        return;
    }
    let _ = writeln!(out, "## Crash chaos (S9)\n");
    let _ = writeln!(out, "The hub is killed with SIGKILL at 25 moments a seeded RNG picks (uniformly 0.3-3 s after every tab of the life subscribed; quick profile 0.1-0.8 s), while every tab sends messages one at a time (`client_msg_id`, 50-500 ms apart) and the scripted replies (40 deltas, 10 ms apart, checkpoints every 100 ms) stream, and restarted on the same data dir each time. After every restart every session's items are read over REST and compared with what the clients saw: each acknowledged message stored once with its text, each item a client saw finished (a `message`, a terminal event, `item.completed`) stored with the same text and status; each reply cut by the kill (`interrupted`) whose start a client saw stored with a text that is a prefix of its deltas or extends them (the checkpoint may be ahead of the last delta sent). Checks count (item, restart) pairs. Every sequenced event received by any tab is compared with the first one received under the same (session, epoch, seq); on each connection events must follow the resume position without gap. Tabs resume with their last (epoch, seq) (WebSocket `since`, SSE `Last-Event-ID`), repeat the sends a crash left unanswered and their last acknowledged one (same `client_msg_id`). Restart time is spawn to the hub's \"listening\" line. Replay a run with `SESSIONHUB_CHAOS_SEED=<seed> bash loadtest/run.sh --only S9`.\n");
    let _ = writeln!(out, "| seed | sessions | tabs (SSE) | kills | acknowledged messages (checks) | finished items (checks) | of which replies | interrupted replies checked | events compared | distinct (session, epoch, seq) | repeated sends (duplicate) | restart p50 ms | restart max ms | violations | time s |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in &recs {
        match &r.chaos {
            Some(c) => {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} ({}) | {} | {} ({}) | {} ({}) | {} | {} | {} | {} | {} ({}) | {:.0} | {:.0} | {} | {:.0} |",
                    c.seed, c.sessions, c.tabs, c.sse_tabs, c.kills, c.acked, c.acked_checks, c.finished,
                    c.finished_checks, c.finished_replies, c.interrupted_checks, c.events_compared, c.distinct_events,
                    c.retried_sends, c.retry_duplicates, c.restart_p50_ms, c.restart_max_ms,
                    c.violation_count, c.elapsed_s
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "| - | - | - | - | - | - | - | - | - | - | - | - | - | FAILED: {} | - |",
                    r.error.as_deref().unwrap_or("?").replace('|', "/")
                );
            }
        }
    }
    for c in recs.iter().filter_map(|r| r.chaos.as_ref()) {
        let _ = writeln!(out, "\nResume outcomes:\n\n| outcome | count |\n|---|---|");
        for (k, v) in &c.resumes {
            let _ = writeln!(out, "| {k} | {v} |");
        }
        if !c.violations.is_empty() {
            let _ = writeln!(out, "\nFirst violations:\n");
            for v in &c.violations {
                let _ = writeln!(out, "- `{}`", v.replace('`', "'"));
            }
        }
    }
    let _ = writeln!(out);
}
