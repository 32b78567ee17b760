//! One figure (PROTOCOL 1.1): how long from a client tool's `tool_result` to the first
//! `run.delta` of the continuation run it starts, p50 and p99 over 200 rounds on one WebSocket
//! to the in-process hub on loopback, scripted agent. The path measured: the result is stored
//! durably (the default durability: flush and fsync), acknowledged, told (`tool.result`), the
//! continuation run starts and its agent streams; the time to the ack is printed too. The
//! scripted agent paces deltas with `tokio::time::interval`, whose first tick waits for the
//! timer's next millisecond: up to 1 ms of the figure is that tick, not the hub. Printed, not
//! asserted (machines differ); each round's story is asserted.
//!
//!     cargo test --release --test ws_tool_latency -- --nocapture

mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::TestHub;

const ROUNDS: usize = 200;
/// Rounds run first and not counted (connection, store and allocator warm-up).
const WARMUP: usize = 20;
/// The whole measurement may take this long; far more than it needs on a loaded machine.
const BUDGET: Duration = Duration::from_secs(120);
const TOOL: &str = "page_info";

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn kinds(frames: &[Value]) -> Vec<&str> {
    frames.iter().map(|f| f["type"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn a_client_tool_result_to_the_continuations_first_delta() {
    let hub = TestHub::start_with(|c| {
        // The first delta of a scripted reply comes at once; later ones 1 ms apart.
        c.scripted_delay_ms = 1;
    })
    .await;
    let s = hub.create_session().await;
    let mut t = hub.ws().await;
    t.join(&s).await;
    t.keep = false;
    let tools =
        json!([{"name": TOOL, "description": "the page", "parameters": {"type": "object"}}]);
    let start = Instant::now();
    let (mut to_delta, mut to_ack) = (Vec::with_capacity(ROUNDS), Vec::with_capacity(ROUNDS));
    for round in 0..WARMUP + ROUNDS {
        assert!(
            start.elapsed() < BUDGET,
            "{round} rounds took more than {BUDGET:?}"
        );
        let cmid = format!("m{round}");
        t.send(
            json!({"type": "send", "session": s, "client_msg_id": cmid, "ref": cmid,
            "text": format!("/tool {TOOL} {{}}"), "tools": tools}),
        )
        .await;
        let frames = t
            .recv_until(|v| v["type"] == "ack" || v["type"] == "error")
            .await;
        let ack = frames.last().unwrap();
        assert_eq!(ack["type"], "ack", "{ack}");
        let run1 = ack["run_id"].as_str().unwrap().to_owned();
        let end = t.until_run_end(&run1).await;
        let call_id = end["pending_tool_calls"][0]
            .as_str()
            .unwrap_or_else(|| panic!("round {round}: no pending call: {end}"))
            .to_owned();
        let output = format!("{{\"round\":{round}}}");

        let sent = Instant::now();
        t.send(
            json!({"type": "tool_result", "session": s, "call_id": call_id,
            "output": output}),
        )
        .await;
        // Each frame with its arrival time, up to the first delta.
        let (mut frames, mut at) = (Vec::new(), Vec::new());
        loop {
            let f = t.recv().await;
            at.push(sent.elapsed());
            let done = f["type"] == "run.delta";
            frames.push(f);
            if done {
                break;
            }
        }

        assert_eq!(
            kinds(&frames),
            ["ack", "tool.result", "run.started", "run.delta"],
            "round {round}: {frames:?}"
        );
        assert_eq!(
            frames[0]["seq"], frames[1]["seq"],
            "the ack names tool.result"
        );
        assert_eq!(frames[2]["continues"], run1.as_str());
        let run2 = frames[2]["run_id"].as_str().unwrap().to_owned();
        assert_eq!(frames[3]["run_id"], run2.as_str());
        let end = t.until_run_end(&run2).await;
        assert_eq!(
            end["item"]["text"].as_str().map(str::trim_end),
            Some(format!("Tool {TOOL} returned: {output}").as_str()),
            "round {round}: the continuation answers with this round's result"
        );
        if round >= WARMUP {
            to_delta.push(at[3]);
            to_ack.push(at[0]);
        }
    }
    to_delta.sort();
    to_ack.sort();
    let (p50, p99) = (percentile(&to_delta, 0.5), percentile(&to_delta, 0.99));
    let (a50, a99) = (percentile(&to_ack, 0.5), percentile(&to_ack, 0.99));
    eprintln!(
        "client tool_result -> continuation's first run.delta over {ROUNDS} rounds \
         (one WebSocket, scripted agent, loopback): p50 {p50:?} p99 {p99:?} max {:?}; \
         of which to the ack (result durable): p50 {a50:?} p99 {a99:?}",
        to_delta[ROUNDS - 1]
    );
    assert_eq!((to_delta.len(), to_ack.len()), (ROUNDS, ROUNDS));
}
