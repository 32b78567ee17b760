//! The loader as a command: one fan-out or idle measurement against a running server, printed
//! as JSON. The suite drives the same code in-process.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use clap::{Parser, Subcommand};
use loadtest::{fanout, idle};

#[derive(Parser)]
struct Args {
    /// The server (hub or ceiling).
    #[arg(long, default_value = "127.0.0.1:19001")]
    addr: SocketAddr,
    /// Its pid, to read CPU and RSS from /proc.
    #[arg(long)]
    server_pid: Option<u32>,
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// Sessions x tabs with one long stamped run per session.
    Fanout {
        #[arg(long, default_value_t = 100)]
        sessions: usize,
        #[arg(long, default_value_t = 10)]
        tabs: usize,
        /// Deltas per second per session the server was started with.
        #[arg(long, default_value_t = 100.0)]
        rate: f64,
        #[arg(long)]
        sse: bool,
        #[arg(long, default_value_t = 2.0)]
        warmup: f64,
        #[arg(long, default_value_t = 8.0)]
        duration: f64,
        #[arg(long, default_value_t = 2.0)]
        drain: f64,
        #[arg(long, default_value_t = 0.0)]
        slow_fraction: f64,
        #[arg(long, default_value_t = 0.0)]
        churn_per_s: f64,
        #[arg(long, default_value_t = 1)]
        messages: usize,
    },
    /// Connect idle tabs in steps and hold them.
    Idle {
        /// Cumulative connection counts to step through.
        #[arg(long, value_delimiter = ',', default_value = "1000")]
        steps: Vec<usize>,
        #[arg(long, default_value_t = 100)]
        sessions: usize,
        #[arg(long, default_value_t = 500)]
        concurrency: usize,
    },
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let out = match a.mode {
        Mode::Fanout {
            sessions,
            tabs,
            rate,
            sse,
            warmup,
            duration,
            drain,
            slow_fraction,
            churn_per_s,
            messages,
        } => {
            let mut p = fanout::FanoutPlan::new(a.addr, sessions, tabs, rate);
            p.server_pid = a.server_pid;
            p.sse = sse;
            p.warmup = Duration::from_secs_f64(warmup);
            p.duration = Duration::from_secs_f64(duration);
            p.drain = Duration::from_secs_f64(drain);
            p.slow_fraction = slow_fraction;
            p.churn_per_s = churn_per_s;
            p.messages = messages;
            serde_json::to_string_pretty(&fanout::run(&p)?)?
        }
        Mode::Idle {
            steps,
            sessions,
            concurrency,
        } => {
            let mut p = idle::IdlePlan::new(a.addr, steps);
            p.server_pid = a.server_pid;
            p.sessions = sessions;
            p.concurrency = concurrency;
            serde_json::to_string_pretty(&idle::run(&p)?)?
        }
    };
    writeln!(std::io::stdout(), "{out}")?;
    Ok(())
}
