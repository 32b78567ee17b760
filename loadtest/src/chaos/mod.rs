//! Crash chaos (issue 15): the real hub binary is killed with SIGKILL at moments a seeded RNG
//! picks, while WebSocket and SSE tabs send messages and scripted replies stream, and restarted
//! on the same data dir each time. After every restart: every acknowledged message and every
//! item a client saw finished is stored exactly once with the same text (and a reply cut by the
//! kill keeps a text that agrees with its deltas); across all clients and
//! all restarts no (epoch, seq) names two different events; resumes from before the crash get a
//! snapshot under a new epoch; repeated sends (same `client_msg_id`) do not duplicate.
//!
//! `tests/chaos.rs` runs a small plan in the test command; scenario S9 of the suite a larger one.

mod hub;
mod ledger;
pub(crate) mod scenario;
mod tabs;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::mpsc;

use self::hub::HubProc;
use self::ledger::Ledger;
use self::tabs::{Round, Tab};
use crate::http;

/// What to run.
#[derive(Debug, Clone)]
pub struct ChaosPlan {
    /// The `sessionhub` binary.
    pub bin: PathBuf,
    /// Its data dir, kept across every restart.
    pub data_dir: PathBuf,
    pub sessions: usize,
    /// WebSocket and SSE tabs per session; every tab sends.
    pub ws_tabs: usize,
    pub sse_tabs: usize,
    pub kills: usize,
    pub seed: u64,
    /// The scripted reply: deltas, milliseconds between them, checkpoint interval.
    pub deltas: u32,
    pub delay_ms: u64,
    pub checkpoint_ms: u64,
    /// The kill comes this long (uniform, ms) after every tab of the round subscribed.
    pub kill_after_ms: (u64, u64),
    /// A tab's pause between an ack and its next message (uniform, ms).
    pub think_ms: (u64, u64),
}

/// The figures of a chaos run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ChaosResult {
    pub seed: u64,
    pub kills: usize,
    pub sessions: usize,
    pub tabs: usize,
    pub sse_tabs: usize,
    /// Distinct acknowledged messages, and (message, restart) pairs checked in the store.
    pub acked: usize,
    pub acked_checks: u64,
    /// Distinct items seen finished, and (item, restart) pairs checked.
    pub finished: usize,
    pub finished_checks: u64,
    /// Of the finished items, assistant replies (the rest are user messages).
    pub finished_replies: usize,
    /// (Interrupted reply, restart) pairs whose stored text was compared with its deltas.
    pub interrupted_checks: u64,
    /// Sequenced events received (all compared) and distinct (session, epoch, seq).
    pub events_compared: u64,
    pub distinct_events: usize,
    /// Sends repeated after a restart (unanswered ones and each tab's last acknowledged one),
    /// and how many of them the hub already had (`duplicate`).
    pub retried_sends: u64,
    pub retry_duplicates: u64,
    pub resumes: std::collections::BTreeMap<String, u64>,
    /// Spawn to listening, per restart (the first start excluded).
    pub restart_ms: Vec<f64>,
    pub restart_p50_ms: f64,
    pub restart_max_ms: f64,
    pub violation_count: u64,
    /// The first violations, word for word.
    pub violations: Vec<String>,
    pub elapsed_s: f64,
}

/// splitmix64: a small seeded generator, so a seed replays the same kill moments.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi.saturating_sub(lo) + 1)
    }
}

/// A seed from the clock, for runs that do not ask for one.
pub fn clock_seed() -> u64 {
    crate::wire::unix_us()
}

/// Longest wait for every tab to subscribe, or for the tabs to notice a kill.
const ROUND_TIMEOUT: Duration = Duration::from_secs(30);

/// The whole run: start, then `kills` times: tabs live, a random pause, SIGKILL, restart on
/// the same data dir, check the store; a last round resumes and repeats the lost sends.
pub async fn run(plan: &ChaosPlan) -> Result<ChaosResult> {
    let started = Instant::now();
    std::fs::create_dir_all(&plan.data_dir)?;
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut rng = Rng::new(plan.seed);
    let mut res = ChaosResult {
        seed: plan.seed,
        kills: plan.kills,
        sessions: plan.sessions,
        tabs: plan.sessions * (plan.ws_tabs + plan.sse_tabs),
        sse_tabs: plan.sessions * plan.sse_tabs,
        ..Default::default()
    };
    let mut hub = HubProc::start(plan).await?;
    let mut sessions = Vec::new();
    for _ in 0..plan.sessions {
        let (status, body) = http::request(hub.addr, "POST", "/v1/sessions", Some("{}")).await?;
        let v: Value = serde_json::from_str(&body)?;
        match v["id"].as_str() {
            Some(id) if status == 201 => sessions.push(id.to_owned()),
            _ => bail!("POST /v1/sessions: {status} {body}"),
        }
    }
    let mut tabs: Vec<Tab> = Vec::new();
    for (si, s) in sessions.iter().enumerate() {
        for t in 0..plan.ws_tabs + plan.sse_tabs {
            let sse = t >= plan.ws_tabs;
            tabs.push(Tab {
                name: format!("s{si}{}{t}", if sse { "sse" } else { "ws" }),
                session: s.clone(),
                sse,
                last: None,
                pending: Vec::new(),
                last_acked: None,
                sent: 0,
            });
        }
    }
    for round in 0..=plan.kills {
        if round > 0 {
            hub = HubProc::start(plan).await?;
            res.restart_ms.push(hub.ready_ms);
            check_store(hub.addr, &sessions, &ledger, &format!("after kill {round}")).await?;
        }
        let last_round = round == plan.kills;
        let (ready_tx, mut ready_rx) = mpsc::channel(tabs.len().max(1));
        let ctx = Round {
            addr: hub.addr,
            ledger: ledger.clone(),
            ready: ready_tx,
            last_round,
            think_ms: plan.think_ms,
            killed: Arc::new(AtomicBool::new(false)),
        };
        let killed = ctx.killed.clone();
        let tasks: Vec<_> = std::mem::take(&mut tabs)
            .into_iter()
            .map(|t| {
                let tab_rng = Rng::new(rng.next_u64());
                tokio::spawn(tabs::run(t, ctx.clone(), tab_rng))
            })
            .collect();
        drop(ctx);
        for _ in 0..tasks.len() {
            tokio::time::timeout(ROUND_TIMEOUT, ready_rx.recv())
                .await
                .map_err(|_| anyhow!("round {round}: tabs did not subscribe in time"))?;
        }
        // The chaos: a random moment after every tab is live (not a wait for any event).
        let pause = rng.range(plan.kill_after_ms.0, plan.kill_after_ms.1);
        if !last_round {
            tokio::time::sleep(Duration::from_millis(pause)).await;
            killed.store(true, Ordering::SeqCst);
            hub.kill9().await?;
        }
        for t in tasks {
            let tab = tokio::time::timeout(ROUND_TIMEOUT, t)
                .await
                .map_err(|_| anyhow!("round {round}: a tab did not end in time"))??;
            tabs.push(tab);
        }
        if last_round {
            check_store(hub.addr, &sessions, &ledger, "at the end").await?;
        } else {
            lock(&ledger).crashed();
        }
    }
    hub.kill9().await?;
    let l = lock(&ledger);
    res.acked = l.acked_count();
    res.acked_checks = l.acked_checks;
    res.finished = l.finished_count();
    res.finished_checks = l.finished_checks;
    res.finished_replies = l.finished_replies();
    res.interrupted_checks = l.interrupted_checks;
    res.events_compared = l.events_compared;
    res.distinct_events = l.distinct_events();
    res.retried_sends = l.retried_sends;
    res.retry_duplicates = l.retry_duplicates;
    res.resumes = l.resumes.clone();
    res.violation_count = l.violation_count;
    res.violations = l.violations.clone();
    let mut sorted = res.restart_ms.clone();
    sorted.sort_by(f64::total_cmp);
    res.restart_p50_ms = sorted.get(sorted.len() / 2).copied().unwrap_or(0.0);
    res.restart_max_ms = sorted.last().copied().unwrap_or(0.0);
    res.elapsed_s = started.elapsed().as_secs_f64();
    Ok(res)
}

fn lock(l: &Mutex<Ledger>) -> std::sync::MutexGuard<'_, Ledger> {
    l.lock().unwrap_or_else(|p| p.into_inner())
}

/// Every item of every session over REST (all pages), compared with what the clients saw.
async fn check_store(
    addr: SocketAddr,
    sessions: &[String],
    ledger: &Mutex<Ledger>,
    when: &str,
) -> Result<()> {
    for s in sessions {
        let mut items: Vec<Value> = Vec::new();
        loop {
            let after = items
                .last()
                .and_then(|i| i["id"].as_str())
                .map(|id| format!("&after={id}"))
                .unwrap_or_default();
            let path = format!("/v1/sessions/{s}/items?limit=200{after}");
            let (status, body) = http::request(addr, "GET", &path, None).await?;
            if status != 200 {
                bail!("GET {path}: {status} {body}");
            }
            let v: Value = serde_json::from_str(&body)?;
            let page = v["items"].as_array().cloned().unwrap_or_default();
            let more = v["has_more"] == true && !page.is_empty();
            items.extend(page);
            if !more {
                break;
            }
        }
        lock(ledger).check_items(s, &items, when);
    }
    Ok(())
}
