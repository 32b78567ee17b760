//! The fan-out measurement (S3-S8): sessions x tabs subscribed, one driver per session starts
//! long scripted runs, every tab measures production-to-receipt latency of every delta, and
//! server CPU and RSS are read at the edges of the window.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use futures::StreamExt;
use serde::Serialize;
use tokio::sync::{watch, Semaphore};

use crate::procfs::{self, Edge, WindowCpu};
use crate::stats::Stats;
use crate::tab::{TabCtx, TabSpec, Timeline};
use crate::{http, quiet, tab_sse, tab_ws};

/// What to run.
#[derive(Debug, Clone)]
pub struct FanoutPlan {
    pub addr: SocketAddr,
    /// The server process, for CPU and RSS (None: not measured).
    pub server_pid: Option<u32>,
    pub sessions: usize,
    /// Tabs per session; the first one of each session is its driver.
    pub tabs: usize,
    /// Deltas per second per session the server was started with (for the stagger and the
    /// offered load).
    pub rate: f64,
    /// Tabs on the SSE fallback instead of WebSocket.
    pub sse: bool,
    pub messages: usize,
    pub expect_runs: Option<u64>,
    pub check_text: bool,
    pub warmup: Duration,
    pub duration: Duration,
    pub drain: Duration,
    /// Share of tabs that stop reading (S7), drivers excluded.
    pub slow_fraction: f64,
    /// Share of tabs that reconnect with resume per second (S8).
    pub churn_per_s: f64,
    pub threads: usize,
    pub src_ips: u8,
    pub connect_concurrency: usize,
    /// Upper bound for connecting and subscribing every tab.
    pub connect_timeout: Duration,
}

impl FanoutPlan {
    pub fn new(addr: SocketAddr, sessions: usize, tabs: usize, rate: f64) -> Self {
        FanoutPlan {
            addr,
            server_pid: None,
            sessions,
            tabs,
            rate,
            sse: false,
            messages: 1,
            expect_runs: None,
            check_text: false,
            warmup: Duration::from_secs(2),
            duration: Duration::from_secs(8),
            drain: Duration::from_secs(2),
            slow_fraction: 0.0,
            churn_per_s: 0.0,
            threads: 2,
            src_ips: 4,
            connect_concurrency: 500,
            connect_timeout: Duration::from_secs(120),
        }
    }
}

/// Everything one run measured.
#[derive(Debug, Clone, Serialize, Default)]
pub struct FanoutResult {
    pub sessions: usize,
    pub tabs: usize,
    pub rate: f64,
    pub sse: bool,
    pub offered_per_s: f64,
    /// Deltas per second per session the server actually produced in the window (the offered
    /// rate is only what it was asked for).
    pub produced_rate: f64,
    pub expected: u64,
    pub delivered: u64,
    pub loss: u64,
    pub deliveries_per_s: f64,
    pub deliveries_per_cpu_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub replayed: u64,
    pub replay_p99_ms: f64,
    pub deltas_total: u64,
    pub gaps: u64,
    pub dups: u64,
    pub epoch_changes: u64,
    pub snapshot_resumes: u64,
    pub reconnects: u64,
    pub reconnect_failures: u64,
    pub connect_failures: u64,
    pub bad_frames: u64,
    pub runs_completed: u64,
    /// Acks the drivers received for their sends (WebSocket drivers).
    pub acks: u64,
    pub text_checked: u64,
    pub text_mismatches: u64,
    pub tabs_done: u64,
    pub tabs_all_runs: u64,
    pub slow_tabs: u64,
    pub slow_cut: u64,
    pub errors: Vec<(String, u64)>,
    pub closes: Vec<(String, u64)>,
    pub connect_s: f64,
    pub cpu: WindowCpu,
    pub contaminated: bool,
    pub rss_kb_start: u64,
    pub rss_kb_end: u64,
}

/// Create `n` sessions over REST and return their ids.
pub async fn create_sessions(addr: SocketAddr, n: usize) -> Result<Vec<String>> {
    let ids: Vec<Result<String>> = futures::stream::iter(0..n)
        .map(|i| async move {
            let body = format!(r#"{{"title":"loadtest {i}"}}"#);
            let (status, text) = http::request(addr, "POST", "/v1/sessions", Some(&body)).await?;
            if status != 201 && status != 200 {
                bail!("POST /v1/sessions: HTTP {status}: {text}");
            }
            let v: serde_json::Value = serde_json::from_str(&text)?;
            v["id"]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| anyhow!("POST /v1/sessions: no id in {text}"))
        })
        .buffered(16)
        .collect()
        .await;
    ids.into_iter().collect()
}

/// The source address of the i-th connection: 127.0.0.1..=127.0.0.N.
pub fn source_ip(i: usize, n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + (i % n.max(1) as usize) as u8))
}

fn specs(plan: &FanoutPlan, ids: &[String]) -> Vec<TabSpec> {
    let period = 1.0 / plan.rate.max(0.001);
    let ids: Vec<Arc<str>> = ids.iter().map(|s| Arc::from(s.as_str())).collect();
    let mut out = Vec::with_capacity(plan.sessions * plan.tabs);
    for (s, sid) in ids.iter().enumerate() {
        for t in 0..plan.tabs {
            let idx = s * plan.tabs + t;
            // A fixed pseudo-random spread, so reruns pick the same tabs.
            let spread = (idx.wrapping_mul(7919) % 10_000) as f64 / 10_000.0;
            let churn_every =
                (plan.churn_per_s > 0.0).then(|| Duration::from_secs_f64(1.0 / plan.churn_per_s));
            out.push(TabSpec {
                idx,
                session: s,
                session_id: sid.clone(),
                driver: t == 0,
                stagger: Duration::from_secs_f64(period * s as f64 / plan.sessions as f64),
                slow: t != 0 && spread < plan.slow_fraction,
                churn_every,
                churn_phase: churn_every.map(|e| e.mul_f64(spread)).unwrap_or_default(),
                src: source_ip(idx, plan.src_ips),
            });
        }
    }
    out
}

/// Run one fan-out measurement. Blocking: it owns its threads and returns when they end.
pub fn run(plan: &FanoutPlan) -> Result<FanoutResult> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let ids = rt
        .block_on(create_sessions(plan.addr, plan.sessions))
        .context("creating sessions")?;
    let all = specs(plan, &ids);
    let total = all.len();
    let threads = plan.threads.max(1);
    let (tl_tx, tl_rx) = watch::channel::<Option<Timeline>>(None);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<bool>();
    let mut handles: Vec<std::thread::JoinHandle<Stats>> = Vec::new();
    for t in 0..threads {
        let mine: Vec<TabSpec> = all
            .iter()
            .filter(|s| s.idx % threads == t)
            .cloned()
            .collect();
        let (plan, tl_rx, ready_tx) = (plan.clone(), tl_rx.clone(), ready_tx.clone());
        let h = std::thread::Builder::new()
            .name(format!("loader-{t}"))
            .spawn(move || thread_main(plan, mine, tl_rx, ready_tx, threads))?;
        handles.push(h);
    }
    drop(ready_tx);
    let connect_start = Instant::now();
    let (mut ok, mut failed) = (0usize, 0usize);
    while ok + failed < total {
        let left = plan.connect_timeout.saturating_sub(connect_start.elapsed());
        match ready_rx.recv_timeout(left) {
            Ok(true) => ok += 1,
            Ok(false) => failed += 1,
            Err(_) => break,
        }
    }
    let connect_s = connect_start.elapsed().as_secs_f64();
    let now = Instant::now();
    let now_us = crate::wire::unix_us();
    let lead = Duration::from_millis(200);
    let ws_off = lead + plan.warmup;
    let we_off = ws_off + plan.duration;
    let timeline = Timeline {
        go: now + lead,
        window_start_us: now_us + ws_off.as_micros() as u64,
        window_end_us: now_us + we_off.as_micros() as u64,
        stop: now + we_off + plan.drain,
        abort: ok == 0 || ok + failed < total,
    };
    let _ = tl_tx.send(Some(timeline));
    let mut result = FanoutResult {
        connect_s,
        ..FanoutResult::default()
    };
    let pid = plan.server_pid.unwrap_or(0);
    let own = [pid, std::process::id()];
    let mut stats = Stats::new(plan.sessions);
    let mut join = |handles: Vec<std::thread::JoinHandle<Stats>>| -> Result<()> {
        for h in handles {
            let s = h.join().map_err(|_| anyhow!("loader thread panicked"))?;
            stats.merge(&s);
        }
        Ok(())
    };
    // With a run count to wait for, tabs leave once they saw it, and the window ends there
    // (the plan's duration is then only the upper bound).
    let early = plan.expect_runs.is_some();
    if !timeline.abort {
        std::thread::sleep((now + ws_off).saturating_duration_since(Instant::now()));
        let a = Edge::take(pid);
        result.rss_kb_start = procfs::rss_kb(pid).unwrap_or(0);
        if early {
            join(std::mem::take(&mut handles))?;
        } else {
            std::thread::sleep((now + we_off).saturating_duration_since(Instant::now()));
        }
        let b = Edge::take(pid);
        result.rss_kb_end = procfs::rss_kb(pid).unwrap_or(0);
        result.cpu = WindowCpu::between(&a, &b, &own);
        result.contaminated = quiet::contaminated(&result.cpu);
    }
    join(handles)?;
    if timeline.abort {
        bail!(
            "only {ok} of {total} tabs subscribed within {:?} ({failed} failed): {:?}",
            plan.connect_timeout,
            stats.closes.iter().take(3).collect::<Vec<_>>()
        );
    }
    fill(&mut result, plan, &mut stats);
    Ok(result)
}

fn thread_main(
    plan: FanoutPlan,
    specs: Vec<TabSpec>,
    timeline: watch::Receiver<Option<Timeline>>,
    ready: std::sync::mpsc::Sender<bool>,
    threads: usize,
) -> Stats {
    let ctx = Rc::new(TabCtx {
        addr: plan.addr,
        messages: plan.messages,
        expect_runs: plan.expect_runs,
        check_text: plan.check_text,
        stats: std::cell::RefCell::new(Stats::new(plan.sessions)),
        timeline,
        ready,
        connect_gate: Semaphore::new((plan.connect_concurrency / threads).max(1)),
    });
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(_) => {
            for _ in &specs {
                let _ = ctx.ready.send(false);
            }
            return Stats::new(plan.sessions);
        }
    };
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async {
        let mut tasks = Vec::with_capacity(specs.len());
        for spec in specs {
            let ctx = ctx.clone();
            tasks.push(if plan.sse {
                tokio::task::spawn_local(tab_sse::run(spec, ctx))
            } else {
                tokio::task::spawn_local(tab_ws::run(spec, ctx))
            });
        }
        for t in tasks {
            let _ = t.await;
        }
    });
    drop(local);
    let ctx = Rc::try_unwrap(ctx).ok();
    ctx.map(|c| c.stats.into_inner())
        .unwrap_or_else(|| Stats::new(plan.sessions))
}

fn ms(h: &hdrhistogram::Histogram<u64>, q: f64) -> f64 {
    if h.is_empty() {
        return 0.0;
    }
    h.value_at_quantile(q) as f64 / 1000.0
}

fn fill(r: &mut FanoutResult, plan: &FanoutPlan, s: &mut Stats) {
    r.sessions = plan.sessions;
    r.tabs = plan.tabs;
    r.rate = plan.rate;
    r.sse = plan.sse;
    r.offered_per_s = plan.rate * (plan.sessions * plan.tabs) as f64;
    let window_s = if plan.expect_runs.is_some() {
        r.cpu.seconds
    } else {
        plan.duration.as_secs_f64()
    };
    r.produced_rate =
        s.produced_in_window() as f64 / window_s.max(1e-3) / plan.sessions.max(1) as f64;
    r.expected = s.expected_in_window();
    r.delivered = s.delivered_in_window;
    r.loss = r.expected.saturating_sub(r.delivered);
    r.deliveries_per_s = r.delivered as f64 / window_s.max(1e-3);
    r.deliveries_per_cpu_s = if r.cpu.server_cpu_s > 0.0 {
        r.delivered as f64 / r.cpu.server_cpu_s
    } else {
        0.0
    };
    r.p50_ms = ms(&s.live, 0.50);
    r.p99_ms = ms(&s.live, 0.99);
    r.p999_ms = ms(&s.live, 0.999);
    r.max_ms = if s.live.is_empty() {
        0.0
    } else {
        s.live.max() as f64 / 1000.0
    };
    r.replayed = s.replay.len();
    r.replay_p99_ms = ms(&s.replay, 0.99);
    r.deltas_total = s.deltas_total;
    r.gaps = s.gaps;
    r.dups = s.dups;
    r.epoch_changes = s.epoch_changes;
    r.snapshot_resumes = s.snapshot_resumes;
    r.reconnects = s.reconnects;
    r.reconnect_failures = s.reconnect_failures;
    r.connect_failures = s.connect_failures;
    r.bad_frames = s.bad_frames;
    r.runs_completed = s.runs_completed;
    r.acks = s.acks;
    r.text_checked = s.text_checked;
    r.text_mismatches = s.text_mismatches;
    r.tabs_done = s.tabs_done;
    r.tabs_all_runs = s.tabs_all_runs;
    r.slow_tabs = s.slow_tabs;
    r.slow_cut = s.slow_cut;
    r.errors = s.errors.iter().map(|(k, v)| (k.clone(), *v)).collect();
    r.closes = s.closes.iter().map(|(k, v)| (k.clone(), *v)).collect();
}
