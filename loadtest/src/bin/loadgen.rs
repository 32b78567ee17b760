//! The loader as a command: one fan-out or idle measurement against a running server, printed
//! as JSON. The suite drives the same code in-process.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use clap::{Parser, Subcommand};
use loadtest::{fanout, idle, memory, tool_probe};

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
    /// One reply in each of N sessions, then RSS loaded-idle and after the idle eviction.
    /// A client tool's round trip timed, `rounds` times after `warmup` (run it next to
    /// `fanout` to measure it at load).
    ToolProbe {
        #[arg(long, default_value_t = 200)]
        rounds: usize,
        #[arg(long, default_value_t = 20)]
        warmup: usize,
    },
    Memory {
        #[arg(long, default_value_t = 1000)]
        sessions: usize,
        #[arg(long, default_value_t = 50)]
        concurrency: usize,
        /// Seconds to wait before each RSS read.
        #[arg(long, default_value_t = 2.0)]
        settle: f64,
        /// Longest wait for every session to be evicted, in seconds.
        #[arg(long, default_value_t = 180.0)]
        evict_timeout: f64,
        /// Seconds to wait after the eviction before reading RSS.
        #[arg(long, default_value_t = 15.0)]
        evict_settle: f64,
        /// Repeat the cycle for this many seconds and report the RSS slope (0: no soak).
        #[arg(long, default_value_t = 0.0)]
        soak: f64,
        /// Sessions are ChatKit threads (`POST /chatkit`, `threads.create`).
        #[arg(long)]
        chatkit: bool,
        /// Then give one session this many events and resume it from 0 with `resume_tabs` tabs.
        #[arg(long, default_value_t = 0)]
        resume_events: u64,
        #[arg(long, default_value_t = 50)]
        resume_tabs: usize,
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
        Mode::ToolProbe { rounds, warmup } => {
            let p = tool_probe::ToolProbePlan {
                addr: a.addr,
                rounds,
                warmup,
            };
            serde_json::to_string_pretty(&tool_probe::run(&p)?)?
        }
        Mode::Memory {
            sessions,
            concurrency,
            settle,
            evict_timeout,
            evict_settle,
            soak,
            chatkit,
            resume_events,
            resume_tabs,
        } => {
            let p = memory::MemoryPlan {
                addr: a.addr,
                server_pid: a.server_pid,
                sessions,
                concurrency,
                settle: Duration::from_secs_f64(settle),
                evict_timeout: Duration::from_secs_f64(evict_timeout),
                evict_settle: Duration::from_secs_f64(evict_settle),
                soak: Duration::from_secs_f64(soak),
                chatkit,
                resume_events,
                resume_tabs,
            };
            serde_json::to_string_pretty(&memory::run(&p)?)?
        }
    };
    writeln!(std::io::stdout(), "{out}")?;
    Ok(())
}
