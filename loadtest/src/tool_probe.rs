//! A client tool's round trip, timed (issue 16, target 6): one WebSocket tab on a session of its
//! own asks the scripted agent to call a client tool (`/tool NAME {}`, the tool declared on the
//! send), answers the pending call with `tool_result`, and times the continuation run's first
//! `run.delta` (and the ack, which comes once the result is durable). It then cancels the
//! continuation, so a round does not wait for the rest of a paced reply. Run it next to
//! `loadgen fanout` to measure the round trip at load (README "Benchmarks").

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use futures::{SinkExt, StreamExt};
use serde::Serialize;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::fanout::{create_sessions, source_ip};
use crate::stats::new_histogram;
use crate::tab_ws::{self, Ws};

/// The client tool the probe declares; the scripted agent calls it on `/tool page_info {}`.
const TOOL: &str = "page_info";
/// Any one frame the probe waits for must come within this.
const FRAME_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct ToolProbePlan {
    pub addr: SocketAddr,
    /// Rounds counted, after `warmup` rounds that are not.
    pub rounds: usize,
    pub warmup: usize,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct ToolProbeResult {
    pub rounds: usize,
    /// `tool_result` sent -> the continuation's first `run.delta`.
    pub to_first_delta_p50_ms: f64,
    pub to_first_delta_p99_ms: f64,
    pub to_first_delta_max_ms: f64,
    /// `tool_result` sent -> its ack (the result stored durably).
    pub to_ack_p50_ms: f64,
    pub to_ack_p99_ms: f64,
    pub seconds: f64,
}

pub fn run(plan: &ToolProbePlan) -> Result<ToolProbeResult> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(run_async(plan))
}

async fn run_async(plan: &ToolProbePlan) -> Result<ToolProbeResult> {
    let session = create_sessions(plan.addr, 1)
        .await?
        .pop()
        .ok_or_else(|| anyhow!("no session created"))?;
    let mut ws = tab_ws::connect(plan.addr, source_ip(0, 4)).await?;
    ws.send(Message::text(crate::wire::subscribe(&session, None)))
        .await?;
    let tools =
        json!([{"name": TOOL, "description": "the page", "parameters": {"type": "object"}}]);
    let start = Instant::now();
    let (mut to_delta, mut to_ack) = (new_histogram(), new_histogram());
    for round in 0..plan.warmup + plan.rounds {
        let cmid = format!("probe-{round}");
        let send = json!({"type": "send", "session": session, "client_msg_id": cmid, "ref": cmid,
            "text": format!("/tool {TOOL} {{}}"), "tools": tools});
        ws.send(Message::text(send.to_string())).await?;
        let end = until(&mut ws, |v| v["type"] == "run.completed").await?;
        let call_id = end["pending_tool_calls"][0]
            .as_str()
            .ok_or_else(|| anyhow!("round {round}: the run left no pending call: {end}"))?
            .to_owned();
        let result = json!({"type": "tool_result", "session": session, "call_id": call_id,
            "output": format!("{{\"round\":{round}}}")});
        let sent = Instant::now();
        ws.send(Message::text(result.to_string())).await?;
        let mut ack = None;
        let delta = loop {
            let v = next(&mut ws).await?;
            match v["type"].as_str() {
                Some("ack") => ack = Some(sent.elapsed()),
                Some("run.delta") => break v,
                Some("error" | "run.failed" | "run.cancelled") => {
                    bail!("round {round}: {v}")
                }
                _ => {}
            }
        };
        let first_delta = sent.elapsed();
        let ack = ack.ok_or_else(|| anyhow!("round {round}: a delta before the ack"))?;
        let run_id = delta["run_id"].clone();
        let cancel = json!({"type": "cancel", "session": session, "run_id": run_id});
        ws.send(Message::text(cancel.to_string())).await?;
        until(&mut ws, |v| {
            v["run_id"] == run_id && (v["type"] == "run.cancelled" || v["type"] == "run.completed")
        })
        .await?;
        if round >= plan.warmup {
            to_delta.saturating_record(first_delta.as_micros() as u64);
            to_ack.saturating_record(ack.as_micros() as u64);
        }
    }
    let _ = ws.close(None).await;
    let ms = |h: &hdrhistogram::Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    Ok(ToolProbeResult {
        rounds: to_delta.len() as usize,
        to_first_delta_p50_ms: ms(&to_delta, 0.5),
        to_first_delta_p99_ms: ms(&to_delta, 0.99),
        to_first_delta_max_ms: to_delta.max() as f64 / 1000.0,
        to_ack_p50_ms: ms(&to_ack, 0.5),
        to_ack_p99_ms: ms(&to_ack, 0.99),
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// The next JSON frame.
async fn next(ws: &mut Ws) -> Result<Value> {
    loop {
        let msg = tokio::time::timeout(FRAME_TIMEOUT, ws.next())
            .await
            .map_err(|_| anyhow!("no frame within {FRAME_TIMEOUT:?}"))?
            .ok_or_else(|| anyhow!("the hub closed the connection"))??;
        if let Message::Text(t) = msg {
            return Ok(serde_json::from_str(t.as_str())?);
        }
    }
}

/// Frames until the first that matches; that one.
async fn until(ws: &mut Ws, done: impl Fn(&Value) -> bool) -> Result<Value> {
    loop {
        let v = next(ws).await?;
        if v["type"] == "error" {
            bail!("error frame: {v}");
        }
        if done(&v) {
            return Ok(v);
        }
    }
}
