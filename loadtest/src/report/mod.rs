//! The markdown report: the run's context, the ratios to the ceiling against the issue's
//! targets, then every measurement. Raw records go next to it as JSON.

mod summary;
mod tables;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Result;

use crate::fanout::FanoutResult;
use crate::suite::{Record, Suite};

pub(crate) const HUB: &str = "hub";
pub(crate) const CEILING: &str = "ceiling";

pub(crate) fn sh(cmd: &str, args: &[&str]) -> String {
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

pub(crate) fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}

/// The fan-out results of one point on one server; clean runs when there are any.
pub(crate) fn results<'a>(
    s: &'a Suite,
    scenario: &str,
    point: &str,
    server: &str,
) -> Vec<&'a FanoutResult> {
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

pub(crate) fn med(
    s: &Suite,
    sc: &str,
    pt: &str,
    server: &str,
    f: impl Fn(&FanoutResult) -> f64,
) -> Option<f64> {
    median(results(s, sc, pt, server).into_iter().map(f).collect())
}

pub(crate) fn fmt(v: Option<f64>, digits: usize) -> String {
    v.map(|x| format!("{x:.digits$}"))
        .unwrap_or_else(|| "n/a".into())
}

pub(crate) fn verdict(ok: Option<bool>) -> &'static str {
    match ok {
        Some(true) => "met",
        Some(false) => "**not met**",
        None => "n/a",
    }
}

/// Highest offered deliveries/s of a scenario at which the server kept zero loss and
/// p99 <= 50 ms.
pub(crate) fn capacity(s: &Suite, scenario: &str, server: &str) -> Option<f64> {
    s.records
        .iter()
        .filter(|r| r.scenario == scenario && r.server == server)
        .filter_map(|r| r.fanout.as_ref())
        .filter(|f| f.loss == 0 && f.p99_ms <= 50.0 && f.delivered > 0 && f.connect_failures == 0)
        .map(|f| f.offered_per_s)
        .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))))
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
    if s.records.iter().all(|r| r.scenario == "S9") {
        let _ = writeln!(out);
        return;
    }
    let _ = writeln!(out, "\nMethod (loadtest/README.md): both servers run as child processes on 127.0.0.1 with 2 tokio workers; the loader (2 single-threaded runtimes, source addresses 127.0.0.1-4) shares the 2 cores. Each session's driver tab sends user messages whose scripted replies stream stamped deltas at the point's rate (replies of at most {} deltas, queued back to back). Warm-up 2 s, window 8 s, drain 2 s; deltas stamped inside the window are counted; server CPU and RSS are read from /proc at the window edges. The hub runs with its durability barrier on unless the row says otherwise, `RUST_LOG=warn`.\n", 500);
}

pub fn write(s: &Suite, dir: &Path) -> Result<PathBuf> {
    let mut out = String::new();
    context(s, &mut out);
    // A chaos-only run (`--only S9`) has no ceiling comparison to summarise.
    if s.records.iter().any(|r| r.scenario != "S9") {
        summary::summary(s, &mut out);
        tables::fanout_table(s, &mut out);
        tables::idle_table(s, &mut out);
        tables::chatkit_table(s, &mut out);
    }
    tables::chaos_table(s, &mut out);
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
