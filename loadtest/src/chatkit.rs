//! The ChatKit side by side: N concurrent ChatKit streams (`POST /chatkit`, `threads.create`),
//! each starting its next turn as soon as the last one ends, against the hub's `/chatkit` or
//! the official ChatKit Python server with the same scripted reply. The figure is text deltas
//! per server-CPU-second.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde::Serialize;

use crate::fanout::source_ip;
use crate::http::SseReader;
use crate::procfs::{self, Edge, WindowCpu};
use crate::quiet;

#[derive(Debug, Clone)]
pub struct ChatkitPlan {
    pub addr: SocketAddr,
    pub server_pid: Option<u32>,
    pub streams: usize,
    pub warmup: Duration,
    pub duration: Duration,
    pub drain: Duration,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct ChatkitResult {
    pub streams: usize,
    /// Text deltas received inside the window.
    pub deltas: u64,
    pub deltas_per_s: f64,
    pub deltas_per_cpu_s: f64,
    /// Turns that ended with the assistant item done.
    pub turns: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub cpu: WindowCpu,
    pub contaminated: bool,
    pub rss_kb_end: u64,
}

/// The body of a `threads.create` request, as the ChatKit front end sends it.
pub fn create_request(text: &str) -> String {
    format!(
        r#"{{"type":"threads.create","params":{{"input":{{"content":[{{"type":"input_text","text":{}}}],"attachments":[],"inference_options":{{}}}}}}}}"#,
        crate::wire::json_str(text)
    )
}

struct Shared {
    plan: ChatkitPlan,
    window: (Instant, Instant),
    stop: Instant,
    deltas: AtomicU64,
    turns: AtomicU64,
    errors: AtomicU64,
    first_error: Mutex<Option<String>>,
}

/// One stream worker: turn after turn until `stop`. Each turn is one HTTP request.
async fn worker(i: usize, sh: Arc<Shared>) {
    let body = create_request(crate::wire::USER_TEXT);
    // Bounded by `stop`, and by a turn count no run could reach.
    for _ in 0..1_000_000 {
        if Instant::now() >= sh.stop {
            return;
        }
        let turn = async {
            let mut r = SseReader::post(sh.plan.addr, source_ip(i, 4), "/chatkit", &body).await?;
            let mut done = false;
            // Bounded by the stream: the server ends it after the turn.
            while let Some(ev) = r.next_event().await? {
                if ev
                    .data
                    .contains("assistant_message.content_part.text_delta")
                {
                    let now = Instant::now();
                    if now >= sh.window.0 && now < sh.window.1 {
                        sh.deltas.fetch_add(1, Ordering::Relaxed);
                    }
                } else if ev.data.contains(r#""type":"thread.item.done""#)
                    && ev.data.contains(r#""type":"assistant_message""#)
                {
                    done = true;
                }
            }
            if !done {
                bail!("stream ended without the assistant item done");
            }
            anyhow::Ok(())
        };
        let left = sh.stop.saturating_duration_since(Instant::now()) + Duration::from_secs(5);
        match tokio::time::timeout(left, turn).await {
            Ok(Ok(())) => {
                sh.turns.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Err(e)) => {
                sh.errors.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut f) = sh.first_error.lock() {
                    f.get_or_insert_with(|| format!("{e:#}"));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(_) => return,
        }
    }
}

pub fn run(plan: &ChatkitPlan) -> Result<ChatkitResult> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let start = Instant::now();
    let ws = start + plan.warmup;
    let we = ws + plan.duration;
    let sh = Arc::new(Shared {
        plan: plan.clone(),
        window: (ws, we),
        stop: we + plan.drain,
        deltas: AtomicU64::new(0),
        turns: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        first_error: Mutex::new(None),
    });
    let pid = plan.server_pid.unwrap_or(0);
    let handles: Vec<_> = (0..plan.streams)
        .map(|i| rt.spawn(worker(i, sh.clone())))
        .collect();
    std::thread::sleep(ws.saturating_duration_since(Instant::now()));
    let a = Edge::take(pid);
    std::thread::sleep(we.saturating_duration_since(Instant::now()));
    let b = Edge::take(pid);
    let rss = procfs::rss_kb(pid).unwrap_or(0);
    rt.block_on(async {
        for h in handles {
            let _ = h.await;
        }
    });
    let cpu = WindowCpu::between(&a, &b, &[pid, std::process::id()]);
    let deltas = sh.deltas.load(Ordering::Relaxed);
    let first_error = sh.first_error.lock().ok().and_then(|f| f.clone());
    Ok(ChatkitResult {
        streams: plan.streams,
        deltas,
        deltas_per_s: deltas as f64 / plan.duration.as_secs_f64(),
        deltas_per_cpu_s: if cpu.server_cpu_s > 0.0 {
            deltas as f64 / cpu.server_cpu_s
        } else {
            0.0
        },
        turns: sh.turns.load(Ordering::Relaxed),
        errors: sh.errors.load(Ordering::Relaxed),
        first_error,
        contaminated: quiet::contaminated(&cpu),
        cpu,
        rss_kb_end: rss,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn create_request_is_valid_json() {
        let v: serde_json::Value = serde_json::from_str(&super::create_request("a \"b\"")).unwrap();
        assert_eq!(v["params"]["input"]["content"][0]["text"], "a \"b\"");
    }
}
