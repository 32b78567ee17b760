//! The scenarios (perf.md §6), each run against the hub and the ceiling in the same session,
//! interleaved, with the quiet-machine guard before every run.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde::Serialize;

use crate::chatkit::{self, ChatkitPlan, ChatkitResult};
use crate::fanout::{self, FanoutPlan, FanoutResult};
use crate::idle::{self, IdlePlan, IdleResult};
use crate::quiet::{self, QuietWait};
use crate::server::{Kind, Script, Server};

/// How big a suite to run.
#[derive(Debug, Clone)]
pub struct SuiteConfig {
    pub scratch: PathBuf,
    /// Repetitions of the primary points (S3 rate 100, S4 rate 10); the report takes medians.
    pub reps: usize,
    /// Scenario ids to run (S1..S8); empty means all.
    pub only: Vec<String>,
    /// Longest wait for a quiet machine before a run (it then runs and is flagged).
    pub max_quiet_wait: Duration,
    /// Contaminated measurements to re-run (once each), first come first served: the budget
    /// keeps a suite on a busy machine near its 15 minutes.
    pub retry_budget: usize,
    /// Smaller everything, to check the harness quickly.
    pub quick: bool,
}

/// One measurement in the report.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    pub scenario: String,
    pub point: String,
    pub server: String,
    pub rep: usize,
    pub quiet: Option<QuietWait>,
    pub fanout: Option<FanoutResult>,
    pub idle: Option<IdleResult>,
    pub chatkit: Option<ChatkitResult>,
    pub chaos: Option<crate::chaos::ChaosResult>,
    pub error: Option<String>,
    pub retried: bool,
}

impl Record {
    pub(crate) fn new(scenario: &str, point: &str, server: &str, rep: usize) -> Self {
        Record {
            scenario: scenario.into(),
            point: point.into(),
            server: server.into(),
            rep,
            quiet: None,
            fanout: None,
            idle: None,
            chatkit: None,
            chaos: None,
            error: None,
            retried: false,
        }
    }

    pub fn contaminated(&self) -> bool {
        self.fanout.as_ref().is_some_and(|f| f.contaminated)
            || self.chatkit.as_ref().is_some_and(|c| c.contaminated)
    }
}

/// A fan-out point: shape, rate and options.
#[derive(Debug, Clone)]
struct Point {
    scenario: &'static str,
    name: String,
    sessions: usize,
    tabs: usize,
    rate: f64,
    sse: bool,
    slow: f64,
    churn: f64,
    reps: usize,
}

/// Longest scripted run; longer replies are chained as queued runs so the hub's per-run work
/// (stored item, checkpoints of the growing text) stays the size of a real reply.
const MAX_RUN_DELTAS: usize = 500;

pub struct Suite {
    pub cfg: SuiteConfig,
    pub records: Vec<Record>,
    port: u16,
    pub started: Instant,
}

impl Suite {
    pub fn new(cfg: SuiteConfig) -> Self {
        Suite {
            cfg,
            records: Vec::new(),
            port: 19100,
            started: Instant::now(),
        }
    }

    fn wants(&self, id: &str) -> bool {
        self.cfg.only.is_empty() || self.cfg.only.iter().any(|o| o.eq_ignore_ascii_case(id))
    }

    fn next_port(&mut self) -> u16 {
        self.port = if self.port >= 19990 {
            19100
        } else {
            self.port + 1
        };
        self.port
    }

    pub(crate) fn log(&self, msg: &str) {
        eprintln!("[{:>6.1}s] {msg}", self.started.elapsed().as_secs_f64());
    }

    pub fn run_all(&mut self) {
        let q = self.cfg.quick;
        if self.wants("S1") {
            let steps = if q {
                vec![500, 1000]
            } else {
                vec![1000, 5000, 10000, 19500]
            };
            self.idle_point("S1", "idle steps", steps);
        }
        if self.wants("S2") {
            self.idle_point("S2", "burst", vec![if q { 1000 } else { 10000 }]);
        }
        let (s3, s4) = if q { (20, 50) } else { (100, 1000) };
        let mut points = Vec::new();
        let p = |scenario, name: String, sessions, tabs, rate, reps| Point {
            scenario,
            name,
            sessions,
            tabs,
            rate,
            sse: false,
            slow: 0.0,
            churn: 0.0,
            reps,
        };
        let reps = self.cfg.reps.max(1);
        for rate in [10.0, 100.0, 500.0, 1000.0] {
            let r = if rate == 100.0 { reps } else { 1 };
            points.push(p("S3", format!("rate {rate}"), s3, 10, rate, r));
        }
        for rate in [5.0, 10.0, 20.0] {
            let r = if rate == 10.0 { reps } else { 1 };
            points.push(p("S4", format!("rate {rate}"), s4, 10, rate, r));
        }
        for base in [
            p("S6", String::new(), s3, 10, 100.0, 1),
            p("S6", String::new(), s4, 10, 10.0, 1),
        ] {
            let name = format!("SSE tabs, {} x 10 rate {}", base.sessions, base.rate);
            points.push(Point {
                sse: true,
                name,
                ..base
            });
        }
        points.push(Point {
            slow: 0.01,
            ..p("S7", "1% slow tabs, S3 rate 100".into(), s3, 10, 100.0, 1)
        });
        points.push(Point {
            churn: 0.10,
            ..p("S8", "10%/s reconnect, S4 rate 10".into(), s4, 10, 10.0, 1)
        });
        points.retain(|pt| self.wants(pt.scenario));
        for pt in points {
            self.fanout_point(&pt, &[Kind::Hub { durable: true }, Kind::Ceiling]);
        }
        if self.wants("CK") {
            self.chatkit_points();
        }
        if self.wants("S5") {
            for pt in [
                p("S5", "S3 rate 100".into(), s3, 10, 100.0, reps),
                p("S5", "S4 rate 10".into(), s4, 10, 10.0, reps),
            ] {
                self.fanout_point(&pt, &[Kind::Hub { durable: false }]);
            }
        }
        if self.wants("S9") {
            crate::chaos::scenario::point(self);
        }
    }

    fn script_for(&self, pt: &Point) -> (Script, usize) {
        let (w, d, dr) = self.timing();
        let total_s = (w + d + dr).as_secs_f64() + 2.0;
        let needed = (pt.rate * total_s).ceil() as usize;
        let per_run = needed.clamp(1, MAX_RUN_DELTAS);
        let messages = needed.div_ceil(per_run);
        let script = Script {
            deltas: per_run,
            delay: Duration::from_secs_f64(1.0 / pt.rate),
            stamp: true,
        };
        (script, messages)
    }

    fn timing(&self) -> (Duration, Duration, Duration) {
        if self.cfg.quick {
            (
                Duration::from_secs(1),
                Duration::from_secs(3),
                Duration::from_secs(1),
            )
        } else {
            (
                Duration::from_secs(2),
                Duration::from_secs(8),
                Duration::from_secs(2),
            )
        }
    }

    fn quiet(&self, pid: u32) -> QuietWait {
        quiet::wait_quiet(&[pid, std::process::id()], self.cfg.max_quiet_wait)
    }

    fn fanout_point(&mut self, pt: &Point, kinds: &[Kind]) {
        let (script, messages) = self.script_for(pt);
        for rep in 0..pt.reps {
            // Interleaved, so drift on the machine hits both servers alike.
            for &kind in kinds {
                let mut rec = self.fanout_once(pt, kind, script, messages, rep);
                if rec.contaminated() && self.cfg.retry_budget > 0 {
                    self.cfg.retry_budget -= 1;
                    self.log("  contaminated: running it again");
                    let again = self.fanout_once(pt, kind, script, messages, rep);
                    rec = Record {
                        retried: true,
                        ..if again.contaminated() { rec } else { again }
                    };
                }
                self.records.push(rec);
            }
        }
    }

    fn fanout_once(
        &mut self,
        pt: &Point,
        kind: Kind,
        script: Script,
        messages: usize,
        rep: usize,
    ) -> Record {
        let port = self.next_port();
        self.log(&format!(
            "{} {} on {} (rep {})",
            pt.scenario,
            pt.name,
            kind.label(),
            rep + 1
        ));
        let mut rec = Record::new(pt.scenario, &pt.name, kind.label(), rep);
        let server = match Server::start(kind, port, script, &self.cfg.scratch) {
            Ok(s) => s,
            Err(e) => {
                rec.error = Some(format!("{e:#}"));
                return rec;
            }
        };
        rec.quiet = Some(self.quiet(server.pid));
        let (w, d, dr) = self.timing();
        let mut plan = FanoutPlan::new(server.addr, pt.sessions, pt.tabs, pt.rate);
        plan.server_pid = Some(server.pid);
        plan.sse = pt.sse;
        plan.messages = messages;
        plan.slow_fraction = pt.slow;
        plan.churn_per_s = pt.churn;
        plan.warmup = w;
        plan.duration = d;
        plan.drain = dr;
        match fanout::run(&plan) {
            Ok(r) => {
                self.log(&format!(
                    "  {:.0}/s delivered, p50 {:.2} ms, p99 {:.2} ms, loss {}, {:.2} server cores, {:.0} per CPU-s{}",
                    r.deliveries_per_s,
                    r.p50_ms,
                    r.p99_ms,
                    r.loss,
                    r.cpu.server_cores,
                    r.deliveries_per_cpu_s,
                    if r.contaminated { format!(", CONTAMINATED ({:.2} cores)", r.cpu.other_cores) } else { String::new() }
                ));
                rec.fanout = Some(r);
            }
            Err(e) => {
                self.log(&format!("  failed: {e:#}"));
                rec.error = Some(format!("{e:#}"));
            }
        }
        drop(server);
        rec
    }

    fn idle_point(&mut self, scenario: &str, name: &str, steps: Vec<usize>) {
        for kind in [Kind::Hub { durable: true }, Kind::Ceiling] {
            let port = self.next_port();
            self.log(&format!("{scenario} {name} {steps:?} on {}", kind.label()));
            let mut rec = Record::new(scenario, name, kind.label(), 0);
            let script = Script {
                deltas: 1,
                delay: Duration::from_millis(10),
                stamp: true,
            };
            match Server::start(kind, port, script, &self.cfg.scratch) {
                Ok(server) => {
                    rec.quiet = Some(self.quiet(server.pid));
                    let mut plan = IdlePlan::new(server.addr, steps.clone());
                    plan.server_pid = Some(server.pid);
                    match idle::run(&plan) {
                        Ok(r) => {
                            if let Some(last) = r.steps.last() {
                                self.log(&format!(
                                    "  {} held, {:.1} KB/conn, handshake p99 {:.1} ms, {:.0} µs server CPU per connection",
                                    r.held, last.rss_per_conn_kb, last.handshake_p99_ms, last.cpu_us_per_conn
                                ));
                            }
                            rec.idle = Some(r);
                        }
                        Err(e) => rec.error = Some(format!("{e:#}")),
                    }
                }
                Err(e) => rec.error = Some(format!("{e:#}")),
            }
            self.records.push(rec);
        }
    }
}

impl Suite {
    /// The ChatKit side by side (issue bullet): the hub's `/chatkit` against the official
    /// ChatKit Python server, same scripted reply without stamps, N concurrent streams.
    fn chatkit_points(&mut self) {
        let q = self.cfg.quick;
        let points: [(&str, usize, u64); 2] = [
            (
                "100 streams, as fast as possible",
                if q { 20 } else { 100 },
                0,
            ),
            ("1000 streams x 20 deltas/s", if q { 100 } else { 1000 }, 50),
        ];
        if !crate::server::chatkit_python().exists() {
            let mut rec = Record::new("CK", "ChatKit side by side", "chatkit-python", 0);
            rec.error = Some(format!(
                "skipped: {} is missing (bash tests/chatkit/setup.sh installs it)",
                crate::server::chatkit_python().display()
            ));
            self.log(rec.error.as_deref().unwrap_or(""));
            self.records.push(rec);
            return;
        }
        for (name, streams, delay_ms) in points {
            for kind in [Kind::Hub { durable: true }, Kind::ChatkitPy] {
                let port = self.next_port();
                self.log(&format!("CK {name} on {}", kind.label()));
                let mut rec = Record::new("CK", name, kind.label(), 0);
                let script = Script {
                    deltas: 200,
                    delay: Duration::from_millis(delay_ms),
                    stamp: false,
                };
                match Server::start(kind, port, script, &self.cfg.scratch) {
                    Ok(server) => {
                        rec.quiet = Some(self.quiet(server.pid));
                        let (w, d, dr) = self.timing();
                        let plan = ChatkitPlan {
                            addr: server.addr,
                            server_pid: Some(server.pid),
                            streams,
                            warmup: w,
                            duration: d,
                            drain: dr,
                        };
                        match chatkit::run(&plan) {
                            Ok(r) => {
                                self.log(&format!(
                                    "  {:.0} deltas/s, {:.2} server cores, {:.0} deltas per CPU-s, {} turns, {} errors{}",
                                    r.deltas_per_s, r.cpu.server_cores, r.deltas_per_cpu_s, r.turns, r.errors,
                                    if r.contaminated { " CONTAMINATED" } else { "" }
                                ));
                                rec.chatkit = Some(r);
                            }
                            Err(e) => rec.error = Some(format!("{e:#}")),
                        }
                    }
                    Err(e) => rec.error = Some(format!("{e:#}")),
                }
                self.records.push(rec);
            }
        }
    }
}

/// The whole suite: run, then write `<out>/<date>-<commit>.md` and the raw `.json`.
pub fn run(cfg: SuiteConfig, out_dir: PathBuf) -> Result<PathBuf> {
    std::fs::create_dir_all(&cfg.scratch)?;
    std::fs::create_dir_all(&out_dir)?;
    let mut suite = Suite::new(cfg);
    suite.run_all();
    crate::report::write(&suite, &out_dir)
}
