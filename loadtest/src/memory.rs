//! Memory per loaded session (issue 15): create sessions, run one scripted reply in each over
//! WebSocket, then read the server's RSS while the sessions are loaded and idle, and again once
//! the idle eviction has unloaded them all (`sessionhub_sessions_live` 0). Optionally, tabs
//! that resume from seq 0 on one long session, and a soak that repeats the cycle and reports
//! the RSS slope.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use futures::{SinkExt, StreamExt};
use serde::Serialize;
use tokio_tungstenite::tungstenite::Message;

use crate::fanout::{create_sessions, source_ip};
use crate::{http, procfs, tab_ws, wire};

#[derive(Debug, Clone)]
pub struct MemoryPlan {
    pub addr: SocketAddr,
    pub server_pid: Option<u32>,
    pub sessions: usize,
    /// Sessions run at once.
    pub concurrency: usize,
    /// Pause before each RSS read, so freed memory is back with the allocator.
    pub settle: Duration,
    /// Longest wait for the idle eviction to unload every session.
    pub evict_timeout: Duration,
    /// Pause after the eviction before RSS is read (an allocator returns memory over seconds).
    pub evict_settle: Duration,
    /// Soak: repeat the create-run-evict cycle for this long, sampling RSS (0: no soak).
    pub soak: Duration,
    /// Each session is a ChatKit thread (`threads.create`, its stream read to the end)
    /// instead of a WebSocket session.
    pub chatkit: bool,
    /// After the eviction: one session is given this many events (runs queued back to back),
    /// then `resume_tabs` tabs resume it from seq 0 at once (0: skip).
    pub resume_events: u64,
    pub resume_tabs: usize,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct MemoryResult {
    pub sessions: usize,
    pub runs_completed: usize,
    pub deltas_seen: u64,
    pub failures: Vec<String>,
    pub rss_kb_start: u64,
    pub rss_kb_loaded: u64,
    pub sessions_live_loaded: Option<u64>,
    /// (loaded - start) / sessions, in kB.
    pub kb_per_loaded_session: f64,
    pub rss_kb_evicted: Option<u64>,
    pub evict_seconds: Option<f64>,
    pub rss_kb_hwm: u64,
    /// Soak samples: (seconds since start, RSS kB) at the end of each cycle, evicted.
    pub soak_samples: Vec<(f64, u64)>,
    /// Least-squares slope of the soak samples' second half, kB per minute.
    pub soak_slope_kb_per_min: Option<f64>,
    pub resume: Option<ResumeResult>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct ResumeResult {
    pub events: u64,
    pub tabs: usize,
    /// RSS with the long session loaded and quiet, before the tabs.
    pub rss_kb_before: u64,
    /// RSS with every tab answered and still subscribed.
    pub rss_kb_subscribed: u64,
    /// Resumes answered with `replay` / `snapshot`.
    pub replays: usize,
    pub snapshots: usize,
    /// Bytes the tabs received for their resume, all together.
    pub bytes_received: u64,
    pub seconds: f64,
}

/// Run one memory measurement. Blocking.
pub fn run(plan: &MemoryPlan) -> Result<MemoryResult> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(run_async(plan))
}

fn rss(plan: &MemoryPlan) -> u64 {
    plan.server_pid
        .and_then(|p| procfs::status_kb(p, "VmRSS"))
        .unwrap_or(0)
}

async fn run_async(plan: &MemoryPlan) -> Result<MemoryResult> {
    let mut out = MemoryResult {
        sessions: plan.sessions,
        ..Default::default()
    };
    tokio::time::sleep(plan.settle).await;
    out.rss_kb_start = rss(plan);
    cycle(plan, &mut out).await?;
    tokio::time::sleep(plan.settle).await;
    out.rss_kb_loaded = rss(plan);
    out.sessions_live_loaded = sessions_live(plan.addr).await.ok();
    out.kb_per_loaded_session =
        (out.rss_kb_loaded as f64 - out.rss_kb_start as f64) / plan.sessions.max(1) as f64;
    let t = Instant::now();
    if wait_evicted(plan).await.is_ok() {
        out.evict_seconds = Some(t.elapsed().as_secs_f64());
        tokio::time::sleep(plan.evict_settle).await;
        out.rss_kb_evicted = Some(rss(plan));
    } else {
        out.failures.push("sessions not evicted in time".into());
    }
    if !plan.soak.is_zero() {
        let start = Instant::now();
        while start.elapsed() < plan.soak {
            cycle(plan, &mut out).await?;
            wait_evicted(plan).await?;
            tokio::time::sleep(plan.settle).await;
            out.soak_samples
                .push((start.elapsed().as_secs_f64(), rss(plan)));
        }
        out.soak_slope_kb_per_min = slope(&out.soak_samples[out.soak_samples.len() / 2..]);
    }
    if plan.resume_events > 0 {
        out.resume = Some(resume(plan).await?);
    }
    out.rss_kb_hwm = plan
        .server_pid
        .and_then(|p| procfs::status_kb(p, "VmHWM"))
        .unwrap_or(0);
    Ok(out)
}

/// Create the sessions and run one reply in each, `concurrency` at a time.
async fn cycle(plan: &MemoryPlan, out: &mut MemoryResult) -> Result<()> {
    let results: Vec<Result<u64>> = if plan.chatkit {
        futures::stream::iter(0..plan.sessions)
            .map(|i| one_thread(plan.addr, i))
            .buffer_unordered(plan.concurrency.max(1))
            .collect()
            .await
    } else {
        let ids = create_sessions(plan.addr, plan.sessions).await?;
        futures::stream::iter(ids.into_iter().enumerate())
            .map(|(i, id)| one_run(plan.addr, i, id))
            .buffer_unordered(plan.concurrency.max(1))
            .collect()
            .await
    };
    for r in results {
        match r {
            Ok(deltas) => {
                out.runs_completed += 1;
                out.deltas_seen += deltas;
            }
            Err(e) if out.failures.len() < 20 => out.failures.push(e.to_string()),
            Err(_) => {}
        }
    }
    Ok(())
}

/// Subscribe, send one message, read until its run ends; returns the deltas seen.
async fn one_run(addr: SocketAddr, i: usize, id: String) -> Result<u64> {
    tokio::time::timeout(Duration::from_secs(120), async {
        let mut ws = tab_ws::connect(addr, source_ip(i, 4)).await?;
        ws.send(Message::text(wire::subscribe(&id, None))).await?;
        ws.send(Message::text(wire::send(&id, &format!("m-{i}"), "hello")))
            .await?;
        let mut deltas = 0;
        // Bounded by the timeout around it.
        while let Some(msg) = ws.next().await {
            let Message::Text(t) = msg? else { continue };
            let f: wire::InFrame = serde_json::from_str(t.as_str())?;
            match f.kind.as_ref() {
                "run.delta" => deltas += 1,
                "run.completed" => {
                    let _ = ws.close(None).await;
                    return Ok(deltas);
                }
                "run.failed" | "run.cancelled" | "error" => bail!("run ended with {}", f.kind),
                _ => {}
            }
        }
        bail!("closed before the run ended")
    })
    .await
    .map_err(|_| anyhow!("run timed out"))?
}

/// One ChatKit thread: `threads.create`, its stream read to the end; returns the deltas seen.
async fn one_thread(addr: SocketAddr, i: usize) -> Result<u64> {
    tokio::time::timeout(Duration::from_secs(120), async {
        let body = crate::chatkit::create_request("hello");
        let mut r = http::SseReader::post(addr, source_ip(i, 4), "/chatkit", &body).await?;
        let (mut deltas, mut done) = (0, false);
        // Bounded by the stream: the server ends it after the turn.
        while let Some(ev) = r.next_event().await? {
            if ev
                .data
                .contains("assistant_message.content_part.text_delta")
            {
                deltas += 1;
            } else if ev.data.contains(r#""type":"thread.item.done""#)
                && ev.data.contains(r#""type":"assistant_message""#)
            {
                done = true;
            }
        }
        if !done {
            bail!("stream ended without the assistant item done");
        }
        Ok(deltas)
    })
    .await
    .map_err(|_| anyhow!("thread timed out"))?
}

/// One session given `resume_events` events, then `resume_tabs` tabs resuming it from 0.
async fn resume(plan: &MemoryPlan) -> Result<ResumeResult> {
    let id = create_sessions(plan.addr, 1).await?.remove(0);
    let mut ws = tab_ws::connect(plan.addr, source_ip(0, 4)).await?;
    ws.send(Message::text(wire::subscribe(&id, None))).await?;
    let (mut epoch, mut head, mut sent, mut ended) = (String::new(), 0u64, 0u64, 0u64);
    // Runs queue back to back; a few in flight keep the session busy without a huge queue.
    while head < plan.resume_events {
        while sent < ended + 4 {
            let m = wire::send(&id, &format!("r-{sent}"), "hello");
            ws.send(Message::text(m)).await?;
            sent += 1;
        }
        let msg = tokio::time::timeout(Duration::from_secs(60), ws.next())
            .await
            .map_err(|_| anyhow!("long session stalled at seq {head}"))?
            .ok_or_else(|| anyhow!("closed at seq {head}"))??;
        let Message::Text(t) = msg else { continue };
        let f: wire::InFrame = serde_json::from_str(t.as_str())?;
        if let (Some(seq), Some(e)) = (f.seq, f.epoch.as_ref()) {
            head = seq;
            epoch = e.to_string();
        }
        if f.kind == "run.completed" {
            ended += 1;
        }
    }
    // Let the last queued runs end, then let the session turn quiet.
    while ended < sent {
        let msg = tokio::time::timeout(Duration::from_secs(60), ws.next())
            .await
            .map_err(|_| anyhow!("long session stalled"))?
            .ok_or_else(|| anyhow!("closed"))??;
        if let Message::Text(t) = msg {
            let f: wire::InFrame = serde_json::from_str(t.as_str())?;
            head = f.seq.unwrap_or(head);
            ended += u64::from(f.kind == "run.completed");
        }
    }
    drop(ws);
    tokio::time::sleep(plan.settle + Duration::from_secs(2)).await;
    let mut r = ResumeResult {
        events: head,
        tabs: plan.resume_tabs,
        rss_kb_before: rss(plan),
        ..Default::default()
    };
    let t = Instant::now();
    let mut tabs = Vec::new();
    let answers: Vec<Result<(tab_ws::Ws, bool, u64)>> = futures::stream::iter(0..plan.resume_tabs)
        .map(|i| resume_tab(plan.addr, i, &id, &epoch))
        .buffer_unordered(plan.resume_tabs.max(1))
        .collect()
        .await;
    r.seconds = t.elapsed().as_secs_f64();
    for a in answers {
        let (ws, replay, bytes) = a?;
        if replay {
            r.replays += 1;
        } else {
            r.snapshots += 1;
        }
        r.bytes_received += bytes;
        tabs.push(ws);
    }
    tokio::time::sleep(plan.settle).await;
    r.rss_kb_subscribed = rss(plan);
    drop(tabs);
    Ok(r)
}

/// Subscribe from (epoch, 0); read the replay or the snapshot. Returns the open tab, whether
/// it was a replay, and the bytes read.
async fn resume_tab(
    addr: SocketAddr,
    i: usize,
    id: &str,
    epoch: &str,
) -> Result<(tab_ws::Ws, bool, u64)> {
    let mut ws = tab_ws::connect(addr, source_ip(i, 4)).await?;
    ws.send(Message::text(wire::subscribe(id, Some((epoch, 0)))))
        .await?;
    let (mut bytes, mut replay, mut head, mut seen) = (0u64, false, 0u64, 0u64);
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(60), ws.next())
            .await
            .map_err(|_| anyhow!("resume timed out"))?
            .ok_or_else(|| anyhow!("closed during resume"))??;
        let Message::Text(t) = msg else { continue };
        bytes += t.len() as u64;
        let f: wire::InFrame = serde_json::from_str(t.as_str())?;
        match f.kind.as_ref() {
            "subscribed" => {
                replay = f.resume.as_deref() == Some("replay");
                head = f.head_seq.unwrap_or(0);
                if replay && head == 0 {
                    return Ok((ws, replay, bytes));
                }
            }
            "snapshot" => return Ok((ws, false, bytes)),
            "error" => bail!("resume refused: {:?}", f.code),
            _ => {
                seen = f.seq.unwrap_or(seen);
                if replay && seen >= head {
                    return Ok((ws, true, bytes));
                }
            }
        }
    }
}

/// `sessionhub_sessions_live` from `/metrics`.
pub async fn sessions_live(addr: SocketAddr) -> Result<u64> {
    let (_, body) = http::request(addr, "GET", "/metrics", None).await?;
    body.lines()
        .find_map(|l| l.strip_prefix("sessionhub_sessions_live "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
        .ok_or_else(|| anyhow!("no sessionhub_sessions_live in /metrics"))
}

async fn wait_evicted(plan: &MemoryPlan) -> Result<()> {
    let deadline = Instant::now() + plan.evict_timeout;
    while Instant::now() < deadline {
        if sessions_live(plan.addr).await? == 0 {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    bail!("sessions still live after {:?}", plan.evict_timeout)
}

/// Least-squares slope of (seconds, kB) samples, in kB per minute.
pub fn slope(samples: &[(f64, u64)]) -> Option<f64> {
    if samples.len() < 2 {
        return None;
    }
    let n = samples.len() as f64;
    let mx = samples.iter().map(|s| s.0).sum::<f64>() / n;
    let my = samples.iter().map(|s| s.1 as f64).sum::<f64>() / n;
    let sxy: f64 = samples.iter().map(|s| (s.0 - mx) * (s.1 as f64 - my)).sum();
    let sxx: f64 = samples.iter().map(|s| (s.0 - mx).powi(2)).sum();
    (sxx > 0.0).then(|| sxy / sxx * 60.0)
}

#[cfg(test)]
mod tests {
    use super::slope;

    #[test]
    fn slope_of_a_line_is_its_rise_per_minute() {
        let s = [(0.0, 100), (60.0, 160), (120.0, 220)];
        assert!((slope(&s).unwrap() - 60.0).abs() < 1e-9);
        assert_eq!(slope(&s[..1]), None);
    }
}
