//! Idle capacity and connect bursts (S1, S2): open WebSocket tabs in steps, each subscribed to
//! one of a fixed set of sessions, and read the server's RSS and CPU after every step.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use futures::{SinkExt, StreamExt};
use serde::Serialize;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio_tungstenite::tungstenite::Message;

use crate::fanout::{create_sessions, source_ip};
use crate::stats::new_histogram;
use crate::{procfs, tab_ws, wire};

#[derive(Debug, Clone)]
pub struct IdlePlan {
    pub addr: SocketAddr,
    pub server_pid: Option<u32>,
    /// Cumulative connection counts; RSS and CPU are read after each.
    pub steps: Vec<usize>,
    /// Sessions the tabs subscribe to, round robin (created before the base RSS is read).
    pub sessions: usize,
    pub concurrency: usize,
    pub src_ips: u8,
    /// Pause before reading RSS, so freed handshake buffers are back with the allocator.
    pub settle: Duration,
    pub step_timeout: Duration,
}

impl IdlePlan {
    pub fn new(addr: SocketAddr, steps: Vec<usize>) -> Self {
        IdlePlan {
            addr,
            server_pid: None,
            steps,
            sessions: 100,
            concurrency: 500,
            src_ips: 4,
            settle: Duration::from_secs(1),
            step_timeout: Duration::from_secs(120),
        }
    }
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct IdleStep {
    pub target: usize,
    pub connected: usize,
    pub failed: usize,
    pub seconds: f64,
    pub conn_per_s: f64,
    pub handshake_p50_ms: f64,
    pub handshake_p99_ms: f64,
    pub handshake_max_ms: f64,
    pub server_cpu_s: f64,
    /// Server CPU per connection of this step (handshake + subscribe), microseconds.
    pub cpu_us_per_conn: f64,
    pub rss_kb: u64,
    pub hwm_kb: u64,
    /// (RSS now - RSS before the first connection) / connections held, in kB.
    pub rss_per_conn_kb: f64,
    pub kernel_tcp_kb: u64,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct IdleResult {
    pub base_rss_kb: u64,
    pub steps: Vec<IdleStep>,
    /// Connections that answered a ping after the last step.
    pub held: usize,
    pub failures: Vec<String>,
}

/// Shared by the connection tasks.
struct Shared {
    plan: IdlePlan,
    ids: Vec<String>,
    gate: Semaphore,
    handshake: Mutex<hdrhistogram::Histogram<u64>>,
    pongs: AtomicUsize,
    failures: Mutex<Vec<String>>,
}

pub fn run(plan: &IdlePlan) -> Result<IdleResult> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run_async(plan.clone()))
}

async fn run_async(plan: IdlePlan) -> Result<IdleResult> {
    let ids = create_sessions(plan.addr, plan.sessions.max(1)).await?;
    let pid = plan.server_pid.unwrap_or(0);
    tokio::time::sleep(plan.settle).await;
    let mut out = IdleResult {
        base_rss_kb: procfs::rss_kb(pid).unwrap_or(0),
        ..IdleResult::default()
    };
    let shared = Arc::new(Shared {
        gate: Semaphore::new(plan.concurrency.max(1)),
        plan: plan.clone(),
        ids,
        handshake: Mutex::new(new_histogram()),
        pongs: AtomicUsize::new(0),
        failures: Mutex::new(Vec::new()),
    });
    // 0: hold; k: send ping round k; u32::MAX: leave.
    let (ctl_tx, ctl_rx) = watch::channel(0u32);
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<bool>();
    let mut started = 0usize;
    let mut connected = 0usize;
    for &target in &plan.steps {
        if let Ok(mut h) = shared.handshake.lock() {
            h.reset();
        }
        let cpu0 = procfs::process_cpu(pid).unwrap_or(0.0);
        let t0 = Instant::now();
        let new = target.saturating_sub(started);
        for i in started..target {
            tokio::spawn(tab(i, shared.clone(), ctl_rx.clone(), ready_tx.clone()));
        }
        started = target;
        let (mut ok, mut failed) = (0usize, 0usize);
        let deadline = tokio::time::Instant::now() + plan.step_timeout;
        while ok + failed < new {
            match tokio::time::timeout_at(deadline, ready_rx.recv()).await {
                Ok(Some(true)) => ok += 1,
                Ok(Some(false)) => failed += 1,
                _ => break,
            }
        }
        let secs = t0.elapsed().as_secs_f64();
        let cpu = procfs::process_cpu(pid).unwrap_or(0.0) - cpu0;
        connected += ok;
        tokio::time::sleep(plan.settle).await;
        let rss = procfs::rss_kb(pid).unwrap_or(0);
        let h = shared
            .handshake
            .lock()
            .map(|h| h.clone())
            .unwrap_or_else(|_| new_histogram());
        let q = |x: f64| {
            if h.is_empty() {
                0.0
            } else {
                h.value_at_quantile(x) as f64 / 1000.0
            }
        };
        out.steps.push(IdleStep {
            target,
            connected,
            failed,
            seconds: secs,
            conn_per_s: ok as f64 / secs.max(1e-6),
            handshake_p50_ms: q(0.5),
            handshake_p99_ms: q(0.99),
            handshake_max_ms: if h.is_empty() {
                0.0
            } else {
                h.max() as f64 / 1000.0
            },
            server_cpu_s: cpu,
            cpu_us_per_conn: cpu * 1e6 / ok.max(1) as f64,
            rss_kb: rss,
            hwm_kb: procfs::status_kb(pid, "VmHWM").unwrap_or(0),
            rss_per_conn_kb: rss.saturating_sub(out.base_rss_kb) as f64 / connected.max(1) as f64,
            kernel_tcp_kb: procfs::tcp_mem_kb(),
        });
        if failed > 0 || ok + failed < new {
            break;
        }
    }
    // Prove the connections are alive: every one answers a ping (bounded wait).
    let _ = ctl_tx.send(1);
    let deadline = Instant::now() + Duration::from_secs(30);
    while shared.pongs.load(Ordering::Relaxed) < connected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    out.held = shared.pongs.load(Ordering::Relaxed);
    let _ = ctl_tx.send(u32::MAX);
    out.failures = shared
        .failures
        .lock()
        .map(|f| f.clone())
        .unwrap_or_default();
    out.failures.truncate(10);
    if connected == 0 {
        bail!("no idle connection succeeded: {:?}", out.failures);
    }
    Ok(out)
}

async fn tab(
    i: usize,
    sh: Arc<Shared>,
    mut ctl: watch::Receiver<u32>,
    ready: mpsc::UnboundedSender<bool>,
) {
    let joined = async {
        let _permit = sh.gate.acquire().await?;
        let t = Instant::now();
        let mut ws = tab_ws::connect(sh.plan.addr, source_ip(i, sh.plan.src_ips)).await?;
        if let Ok(mut h) = sh.handshake.lock() {
            h.saturating_record((t.elapsed().as_micros() as u64).max(1));
        }
        let session = &sh.ids[i % sh.ids.len()];
        ws.send(Message::text(wire::subscribe(session, None)))
            .await?;
        // Bounded: the subscription must be answered within 60 s.
        tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(m) = ws.next().await {
                if let Message::Text(t) = m? {
                    if t.as_str().contains(r#""type":"subscribed""#) {
                        return Ok(());
                    }
                    if t.as_str().contains(r#""type":"error""#) {
                        bail!("subscribe refused: {}", t.as_str());
                    }
                }
            }
            bail!("closed before subscribed")
        })
        .await??;
        anyhow::Ok(ws)
    }
    .await;
    let mut ws = match joined {
        Ok(ws) => {
            let _ = ready.send(true);
            ws
        }
        Err(e) => {
            if let Ok(mut f) = sh.failures.lock() {
                f.push(e.to_string());
            }
            let _ = ready.send(false);
            return;
        }
    };
    // Hold until told to leave; the loop ends on the leave signal or when the socket closes.
    loop {
        tokio::select! {
            m = ws.next() => match m {
                Some(Ok(Message::Text(t))) if t.as_str().contains(r#""type":"pong""#) => {
                    sh.pongs.fetch_add(1, Ordering::Relaxed);
                }
                Some(Ok(_)) => {}
                _ => return,
            },
            r = ctl.changed() => {
                if r.is_err() || *ctl.borrow() == u32::MAX {
                    return;
                }
                if ws.send(Message::text(wire::PING)).await.is_err() {
                    return;
                }
            }
        }
    }
}
