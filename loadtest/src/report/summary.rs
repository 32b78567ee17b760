//! The summary table: the hub as a ratio of the ceiling, against the targets.

use std::fmt::Write as _;

use super::{capacity, fmt, med, results, verdict, CEILING, HUB};
use crate::suite::Suite;

pub(super) fn summary(s: &Suite, out: &mut String) {
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
        "| RSS per idle connection, KB (S1, largest step) | {} | {} | {} | <= 10 KB and <= 1.05 | {} |",
        fmt(h, 1),
        fmt(c, 1),
        fmt(h.zip(c).map(|(h, c)| h / c), 2),
        // Issue 16's target: both an absolute bound and a ratio to the ceiling.
        verdict(h.zip(c).map(|(h, c)| h <= 10.0 && h / c <= 1.05))
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
    let _ = writeln!(out, "| deliveries owed but not received by the end of the drain, all hub runs (slow tabs excluded) | {hub_loss} (seq gaps + duplicates: {hub_gaps}) | - | - | 0 | {} |", verdict(Some(hub_loss == 0 && hub_gaps == 0)));
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
    for pt in [
        "100 streams, as fast as possible",
        "1000 streams x 20 deltas/s",
    ] {
        let ck = |server: &str| {
            s.records
                .iter()
                .find(|r| r.scenario == "CK" && r.point == pt && r.server == server)
                .and_then(|r| r.chatkit.as_ref())
                .map(|c| c.deltas_per_cpu_s)
        };
        let (h, p) = (ck(HUB), ck("chatkit-python"));
        if h.is_some() || p.is_some() {
            let _ = writeln!(
                out,
                "| ChatKit {pt}: deltas per server-CPU-s, hub `/chatkit` vs official ChatKit Python server | {} | {} (python) | {} | - | info |",
                fmt(h, 0),
                fmt(p, 0),
                fmt(h.zip(p).map(|(h, p)| h / p), 1)
            );
        }
    }
    let _ = writeln!(out);
}
