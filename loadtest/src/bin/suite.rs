//! One command for the whole benchmark: every scenario against the hub and the ceiling, then
//! a markdown report under loadtest/results/.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use loadtest::suite::{self, SuiteConfig};

#[derive(Parser)]
struct Args {
    /// Where the report goes.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/results"))]
    out: PathBuf,
    /// Scratch space for server data dirs and logs.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/results/tmp"))]
    scratch: PathBuf,
    /// Repetitions of the primary points (S3 rate 100, S4 rate 10, S5).
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// Only these scenarios (S1..S8), comma-separated.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Longest wait for a quiet machine before each run, in seconds.
    #[arg(long, default_value_t = 10)]
    max_quiet_wait: u64,
    /// Contaminated runs that may be repeated (once each).
    #[arg(long, default_value_t = 8)]
    retries: usize,
    /// A small, fast profile to check the harness (its figures are not comparable).
    #[arg(long)]
    quick: bool,
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let cfg = SuiteConfig {
        scratch: a.scratch,
        reps: a.reps,
        only: a.only,
        max_quiet_wait: Duration::from_secs(a.max_quiet_wait),
        retry_budget: a.retries,
        quick: a.quick,
    };
    let report = suite::run(cfg, a.out)?;
    eprintln!("report: {}", report.display());
    Ok(())
}
