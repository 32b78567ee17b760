//! The markdown report: the run's context, the ratios to the ceiling against the issue's
//! targets, then every measurement. Raw records go next to it as JSON.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Result;

use crate::fanout::FanoutResult;
use crate::suite::{Record, Suite};

const HUB: &str = "hub";
const CEILING: &str = "ceiling";

fn sh(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The commit the binaries were built from, and whether the tree had changes on top.
/// `run.sh` builds from an export of one commit and says which in `LOADTEST_COMMIT`.
pub fn commit() -> (String, bool) {
    if let Some(c) = std::env::var_os("LOADTEST_COMMIT") {
        return (c.to_string_lossy().into_owned(), false);
    }
    let r = repo();
    let r = r.to_string_lossy();
    let head = sh("git", &["-C", &r, "rev-parse", "HEAD"]);
    let dirty = !sh(
        "git",
        &[
            "-C",
            &r,
            "status",
            "--porcelain",
            "--",
            "src",
            "Cargo.toml",
            "Cargo.lock",
            "loadtest/src",
        ],
    )
    .is_empty();
    (
        if head.is_empty() {
            "unknown".into()
        } else {
            head
        },
        dirty,
    )
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}

/// The fan-out results of one point on one server; clean runs when there are any.
fn results<'a>(s: &'a Suite, scenario: &str, point: &str, server: &str) -> Vec<&'a FanoutResult> {
    let all: Vec<&FanoutResult> = s
        .records
        .iter()
        .filter(|r| r.scenario == scenario && r.point == point && r.server == server)
        .filter_map(|r| r.fanout.as_ref())
        .collect();
    let clean: Vec<&FanoutResult> = all.iter().copied().filter(|f| !f.contaminated).collect();
    if clean.is_empty() {
        all
    } else {
        clean
    }
}

fn med(
    s: &Suite,
    sc: &str,
    pt: &str,
    server: &str,
    f: impl Fn(&FanoutResult) -> f64,
) -> Option<f64> {
    median(results(s, sc, pt, server).into_iter().map(f).collect())
}

fn fmt(v: Option<f64>, digits: usize) -> String {
    v.map(|x| format!("{x:.digits$}"))
        .unwrap_or_else(|| "n/a".into())
}

fn verdict(ok: Option<bool>) -> &'static str {
    match ok {
        Some(true) => "met",
        Some(false) => "**not met**",
        None => "n/a",
    }
}

/// Highest offered deliveries/s of a scenario at which the server kept zero loss and
/// p99 <= 50 ms.
fn capacity(s: &Suite, scenario: &str, server: &str) -> Option<f64> {
    s.records
        .iter()
        .filter(|r| r.scenario == scenario && r.server == server)
        .filter_map(|r| r.fanout.as_ref())
        .filter(|f| f.loss == 0 && f.p99_ms <= 50.0 && f.delivered > 0 && f.connect_failures == 0)
        .map(|f| f.offered_per_s)
        .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))))
}

fn summary(s: &Suite, out: &mut String) {
    let _ = writeln!(out, "## Summary: the hub as a ratio of the ceiling\n");
    let _ = writeln!(
        out,
        "Medians over repetitions; clean (uncontaminated) runs when there are any.\n"
    );
    let _ = writeln!(
        out,
        "| measure | hub | ceiling | ratio / delta | target | verdict |\n|---|---|---|---|---|---|"
    );
    for (sc, pt, label) in [
        ("S3", "rate 100", "S3 100x10 rate 100"),
        ("S4", "rate 10", "S4 1000x10 rate 10"),
    ] {
        let h = med(s, sc, pt, HUB, |f| f.deliveries_per_cpu_s);
        let c = med(s, sc, pt, CEILING, |f| f.deliveries_per_cpu_s);
        let ratio = h.zip(c).map(|(h, c)| h / c);
        let _ = writeln!(
            out,
            "| efficiency, deliveries per server-CPU-s, {label} (durability on) | {} | {} | {} | >= 0.70 | {} |",
            fmt(h, 0), fmt(c, 0), fmt(ratio, 2), verdict(ratio.map(|r| r >= 0.7))
        );
    }
    for (sc, pt, label, target) in [
        ("S3", "rate 100", "S3 rate 100", Some(2.0)),
        ("S4", "rate 10", "S4 rate 10", None),
    ] {
        let h = med(s, sc, pt, HUB, |f| f.p99_ms);
        let c = med(s, sc, pt, CEILING, |f| f.p99_ms);
        let d = h.zip(c).map(|(h, c)| h - c);
        let (t, v) = match target {
            Some(t) => (format!("within {t} ms"), verdict(d.map(|d| d <= t))),
            None => ("-".into(), "info"),
        };
        let _ = writeln!(
            out,
            "| p99 latency ms, {label} | {} | {} | {} ms | {t} | {v} |",
            fmt(h, 2),
            fmt(c, 2),
            fmt(d.map(|x| (x * 100.0).round() / 100.0), 2)
        );
        let h50 = med(s, sc, pt, HUB, |f| f.p50_ms);
        let c50 = med(s, sc, pt, CEILING, |f| f.p50_ms);
        let _ = writeln!(
            out,
            "| p50 latency ms, {label} | {} | {} | {} ms | - | info |",
            fmt(h50, 2),
            fmt(c50, 2),
            fmt(h50.zip(c50).map(|(a, b)| a - b), 2)
        );
    }
    let idle = |server: &str| {
        s.records
            .iter()
            .find(|r| r.scenario == "S1" && r.server == server)
            .and_then(|r| r.idle.as_ref())
    };
    let per_conn = |server: &str| {
        idle(server)
            .and_then(|i| i.steps.last())
            .map(|st| st.rss_per_conn_kb)
    };
    let (h, c) = (per_conn(HUB), per_conn(CEILING));
    let _ = writeln!(
        out,
        "| RSS per idle connection, KB (S1, largest step) | {} | {} | {} | <= 12 KB | {} |",
        fmt(h, 1),
        fmt(c, 1),
        fmt(h.zip(c).map(|(h, c)| h / c), 2),
        verdict(h.map(|h| h <= 12.0))
    );
    let held = |server: &str| idle(server).map(|i| i.held as f64);
    let hh = held(HUB);
    let _ = writeln!(
        out,
        "| idle connections held (S1) | {} | {} | - | 19,500 | {} |",
        fmt(hh, 0),
        fmt(held(CEILING), 0),
        verdict(hh.map(|h| h >= 19_500.0))
    );
    for sc in ["S3", "S4"] {
        let (h, c) = (capacity(s, sc, HUB), capacity(s, sc, CEILING));
        let _ = writeln!(out, "| capacity {sc}: highest offered deliveries/s with 0 loss and p99 <= 50 ms | {} | {} | {} | - | info |", fmt(h, 0), fmt(c, 0), fmt(h.zip(c).map(|(h, c)| h / c), 2));
    }
    let hub_loss: u64 = s
        .records
        .iter()
        .filter(|r| r.server.starts_with(HUB))
        .filter_map(|r| r.fanout.as_ref())
        .map(|f| f.loss)
        .sum();
    let hub_gaps: u64 = s
        .records
        .iter()
        .filter(|r| r.server.starts_with(HUB))
        .filter_map(|r| r.fanout.as_ref())
        .map(|f| f.gaps + f.dups)
        .sum();
    let _ = writeln!(out, "| deliveries lost, all hub runs (slow tabs excluded) | {hub_loss} (seq gaps + duplicates: {hub_gaps}) | - | - | 0 | {} |", verdict(Some(hub_loss == 0 && hub_gaps == 0)));
    let base: Vec<f64> = results(s, "S3", "rate 100", HUB)
        .iter()
        .map(|f| f.p99_ms)
        .collect();
    let slow = med(s, "S7", "1% slow tabs, S3 rate 100", HUB, |f| f.p99_ms);
    let noise_top = base
        .iter()
        .copied()
        .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))));
    // "Within noise": no worse than the worst repetition of the same load without slow tabs,
    // plus 20 % (run-to-run spread on this machine is about ±15 %, perf.md §5).
    let ok = slow.zip(noise_top).map(|(sl, top)| sl <= top * 1.2);
    let _ = writeln!(out, "| S7: other tabs' p99 ms with 1% slow tabs vs S3 rate 100 (its reps: {}) | {} | {} | - | within noise | {} |",
        base.iter().map(|x| format!("{x:.2}")).collect::<Vec<_>>().join(", "),
        fmt(slow, 2), fmt(med(s, "S7", "1% slow tabs, S3 rate 100", CEILING, |f| f.p99_ms), 2), verdict(ok));
    let burst = |server: &str| {
        s.records
            .iter()
            .find(|r| r.scenario == "S2" && r.server == server)
            .and_then(|r| r.idle.as_ref())
            .and_then(|i| i.steps.first().cloned())
    };
    let (hb, cb) = (burst(HUB), burst(CEILING));
    let _ = writeln!(
        out,
        "| handshake + subscribe server CPU, µs per connection (S2) | {} | {} | {} | - | info |",
        fmt(hb.as_ref().map(|b| b.cpu_us_per_conn), 0),
        fmt(cb.as_ref().map(|b| b.cpu_us_per_conn), 0),
        fmt(
            hb.as_ref()
                .zip(cb.as_ref())
                .map(|(h, c)| h.cpu_us_per_conn / c.cpu_us_per_conn.max(1e-9)),
            2
        )
    );
    let _ = writeln!(
        out,
        "| connect burst handshake p99 ms (S2) | {} | {} | - | - | info |",
        fmt(hb.as_ref().map(|b| b.handshake_p99_ms), 1),
        fmt(cb.as_ref().map(|b| b.handshake_p99_ms), 1)
    );
    for (pt, label) in [("S3 rate 100", "S3 rate 100"), ("S4 rate 10", "S4 rate 10")] {
        let off = med(s, "S5", pt, "hub (durability off)", |f| {
            f.deliveries_per_cpu_s
        });
        let (sc, p) = if pt.starts_with("S3") {
            ("S3", "rate 100")
        } else {
            ("S4", "rate 10")
        };
        let on = med(s, sc, p, HUB, |f| f.deliveries_per_cpu_s);
        let _ = writeln!(out, "| S5 durability cost, {label}: deliveries per CPU-s on / off | {} | {} (off) | {} | - | info |", fmt(on, 0), fmt(off, 0), fmt(on.zip(off).map(|(a, b)| a / b), 2));
    }
    let _ = writeln!(out);
}

fn fanout_table(s: &Suite, out: &mut String) {
    let _ = writeln!(out, "## Fan-out runs (S3-S8)\n");
    let _ = writeln!(out, "`rate/s` is what the server actually produced per session in the window (asked: the point's rate). Latency is production stamp to receipt by the tab. `other` is CPU used by processes other than the server and the loader, in cores (contaminated above 0.10).\n");
    let _ = writeln!(out, "| scenario | point | server | rep | tabs | rate/s | delivered/s | loss | p50 ms | p99 ms | p99.9 ms | server cores | deliveries per CPU-s | loader cores | other | RSS MB | notes |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
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
        } else if r.idle.is_none() {
            let _ = writeln!(out, "| {} | {} | {} | {} | - | - | - | - | - | - | - | - | - | - | - | - | FAILED: {} |", r.scenario, r.point, r.server, r.rep + 1, r.error.as_deref().unwrap_or("?").replace('|', "/"));
        }
    }
    let _ = writeln!(out);
}

fn idle_table(s: &Suite, out: &mut String) {
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

fn context(s: &Suite, out: &mut String) {
    let (head, dirty) = commit();
    let model = sh("sh", &["-c", "lscpu | sed -n 's/^Model name: *//p'"]);
    let _ = writeln!(out, "# sessionhub load test report\n");
    let _ = writeln!(
        out,
        "- measured commit: `{head}`{}",
        if dirty {
            " **plus uncommitted changes in the tree** (the binaries were built from the working tree)"
        } else {
            ""
        }
    );
    let _ = writeln!(
        out,
        "- date: {}",
        sh("date", &["-u", "+%Y-%m-%dT%H:%M:%SZ"])
    );
    let _ = writeln!(
        out,
        "- machine: {} x {model}, kernel {}, `ulimit -n` {}",
        sh("nproc", &[]),
        sh("uname", &["-r"]),
        sh("sh", &["-c", "ulimit -n"])
    );
    let _ = writeln!(out, "- toolchain: {}", sh("rustc", &["--version"]));
    let _ = writeln!(
        out,
        "- suite: {} measurements in {:.0} s; profile {}; repetitions of the primary points: {}",
        s.records.len(),
        s.started.elapsed().as_secs_f64(),
        if s.cfg.quick {
            "quick (harness check, not comparable)"
        } else {
            "full"
        },
        s.cfg.reps
    );
    let contaminated = s.records.iter().filter(|r| r.contaminated()).count();
    let _ = writeln!(out, "- contaminated measurements (other processes above 0.10 core in the window): {contaminated} of {}", s.records.iter().filter(|r| r.fanout.is_some()).count());
    let _ = writeln!(out, "\nMethod (loadtest/README.md): both servers run as child processes on 127.0.0.1 with 2 tokio workers; the loader (2 single-threaded runtimes, source addresses 127.0.0.1-4) shares the 2 cores. Each session's driver tab sends user messages whose scripted replies stream stamped deltas at the point's rate (replies of at most {} deltas, queued back to back). Warm-up 2 s, window 8 s, drain 2 s; deltas stamped inside the window are counted; server CPU and RSS are read from /proc at the window edges. The hub runs with its durability barrier on unless the row says otherwise, `RUST_LOG=warn`.\n", 500);
}

pub fn write(s: &Suite, dir: &Path) -> Result<PathBuf> {
    let mut out = String::new();
    context(s, &mut out);
    summary(s, &mut out);
    fanout_table(s, &mut out);
    idle_table(s, &mut out);
    let (head, _) = commit();
    let stamp = sh("date", &["-u", "+%Y%m%d-%H%M%S"]);
    let short: String = head.chars().take(10).collect();
    let base = format!("{stamp}-{short}{}", if s.cfg.quick { "-quick" } else { "" });
    let md = dir.join(format!("{base}.md"));
    std::fs::write(&md, out)?;
    let records: Vec<&Record> = s.records.iter().collect();
    std::fs::write(
        dir.join(format!("{base}.json")),
        serde_json::to_string_pretty(&records)?,
    )?;
    Ok(md)
}
