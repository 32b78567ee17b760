//! What a person feels (issue 16, target 4, on an idle hub): the latency the hub adds between a
//! model's chunk and a tab's delta. The scripted OpenAI-compatible upstream (tests/upstream)
//! stamps each content chunk with the Unix time in microseconds as it writes it; the test reads
//! the stamps back straight from the upstream and through the in-process hub on each transport
//! (WebSocket, the SSE fallback, ChatKit, AG-UI), and prints p50, p99 and max of (receipt -
//! stamp) per path and what the hub adds over the direct read. Printed, not asserted (machines
//! differ); each stream's story is asserted: every stamp arrives once, in order, and the run
//! ends normally.
//!
//!     cargo test --release --test added_latency -- --nocapture

#[path = "agui/support.rs"]
mod agui;
#[path = "chatkit/ck.rs"]
mod ck;
#[allow(unused_imports)]
mod sse_support;
mod support;
mod upstream;

use std::time::Duration;

use futures::StreamExt;
use loadtest::wire::unix_us;
use serde_json::{json, Value};
use support::{http, TestHub};
use upstream::{Reply, Upstream};

/// Stamped chunks per reply, and the upstream's pause between them.
const CHUNKS: usize = 50;
const GAP: Duration = Duration::from_millis(4);
/// Replies read per path, after one that is not counted (connections and allocator warm-up).
const ROUNDS: usize = 4;
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The latencies of one path, in microseconds.
#[derive(Default)]
struct Path {
    name: &'static str,
    us: Vec<u64>,
}

/// The stamps of one reply as they arrive: each once, in order, `CHUNKS` in all.
struct Reading<'a> {
    path: &'a mut Path,
    counted: bool,
    seen: usize,
    last: u64,
}

impl Reading<'_> {
    /// A piece of reply text received at `now`: every stamp in it.
    fn text(&mut self, text: &str, now: u64) {
        for word in text.split_whitespace() {
            let stamp: u64 = word
                .parse()
                .unwrap_or_else(|_| panic!("{}: not a stamp: {text:?}", self.path.name));
            assert!(
                stamp >= self.last,
                "{}: stamps out of order: {stamp} after {}",
                self.path.name,
                self.last
            );
            self.last = stamp;
            self.seen += 1;
            if self.counted {
                self.path.us.push(now.saturating_sub(stamp));
            }
        }
    }

    /// A native event (WebSocket or SSE) received at `now`; true once run `run_id` completed.
    fn native(&mut self, v: &Value, now: u64, run_id: &Value) -> bool {
        match v["type"].as_str() {
            Some("run.delta") => self.text(v["text"].as_str().unwrap(), now),
            Some("run.completed") => return v["run_id"] == *run_id,
            Some("run.failed" | "run.cancelled") => panic!("the run did not complete: {v}"),
            _ => {}
        }
        false
    }

    fn done(self) {
        assert_eq!(self.seen, CHUNKS, "{}: stamps in the reply", self.path.name);
    }
}

impl Path {
    fn new(name: &'static str) -> Self {
        Path {
            name,
            us: Vec::new(),
        }
    }

    fn reading(&mut self, round: usize) -> Reading<'_> {
        Reading {
            path: self,
            counted: round > 0,
            seen: 0,
            last: 0,
        }
    }

    fn percentile(&self, p: f64) -> u64 {
        let mut v = self.us.clone();
        v.sort_unstable();
        v[((v.len() - 1) as f64 * p).round() as usize]
    }
}

/// Straight from the upstream: the chunks' `delta.content`, until `[DONE]`. One client for
/// every reply, so its connection is kept alive between them as the hub's is.
async fn direct(up: &Upstream, path: &mut Path) {
    let client = http();
    for round in 0..=ROUNDS {
        up.push(Reply::stamped(CHUNKS, GAP));
        let resp = client
            .post(format!("{}/chat/completions", up.base_url))
            .json(&json!({"model": upstream::MODEL, "stream": true,
                "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .expect("POST to the upstream");
        assert_eq!(resp.status(), 200);
        let mut body = resp.bytes_stream();
        let mut buf: Vec<u8> = Vec::new();
        let mut r = path.reading(round);
        'reply: loop {
            while let Some(end) = buf.windows(2).position(|w| w == b"\n\n") {
                let frame: Vec<u8> = buf.drain(..end + 2).collect();
                let now = unix_us();
                let text = std::str::from_utf8(&frame[..end]).expect("UTF-8");
                let data = text.strip_prefix("data: ").expect("a data frame");
                if data == "[DONE]" {
                    break 'reply;
                }
                let v: Value = serde_json::from_str(data).expect("a JSON chunk");
                if let Some(t) = v["choices"][0]["delta"]["content"].as_str() {
                    r.text(t, now);
                }
            }
            let chunk = tokio::time::timeout(READ_TIMEOUT, body.next())
                .await
                .expect("a chunk in time")
                .expect("the body goes on until [DONE]")
                .expect("body bytes");
            buf.extend_from_slice(&chunk);
        }
        r.done();
    }
}

async fn websocket(hub: &TestHub, up: &Upstream, path: &mut Path) {
    let s = hub.create_session().await;
    let mut tab = hub.ws().await;
    tab.keep = false;
    tab.join(&s).await;
    for round in 0..=ROUNDS {
        up.push(Reply::stamped(CHUNKS, GAP));
        let ack = tab.say(&s, &format!("m{round}"), "hi").await;
        assert_eq!(ack["type"], "ack", "{ack}");
        let mut r = path.reading(round);
        loop {
            let v = tab.recv().await;
            if r.native(&v, unix_us(), &ack["run_id"]) {
                break;
            }
        }
        r.done();
    }
}

async fn sse(hub: &TestHub, up: &Upstream, path: &mut Path) {
    let s = hub.create_session().await;
    let mut events = sse_support::open(&sse_support::events_url(&hub.url(""), &s), None).await;
    for round in 0..=ROUNDS {
        up.push(Reply::stamped(CHUNKS, GAP));
        let (status, ack) = hub
            .post_json(
                &format!("/v1/sessions/{s}/messages"),
                &json!({"client_msg_id": format!("m{round}"), "text": "hi"}),
            )
            .await;
        assert_eq!(status, 200, "{ack}");
        let mut r = path.reading(round);
        loop {
            let e = events.next_event().await;
            let now = unix_us();
            if r.native(&e.json(), now, &ack["run_id"]) {
                break;
            }
        }
        r.done();
    }
}

async fn chatkit(hub: &TestHub, up: &Upstream, path: &mut Path) {
    let client = ck::Ck::new(hub);
    for round in 0..=ROUNDS {
        up.push(Reply::stamped(CHUNKS, GAP));
        let mut stream = client
            .stream(json!({"type": "threads.create", "params": {"input": ck::input("hi")}}))
            .await;
        let mut r = path.reading(round);
        while let Some(e) = stream.next().await {
            let now = unix_us();
            if ck::is_delta(&e) {
                r.text(e["update"]["delta"].as_str().unwrap(), now);
            }
            assert_ne!(e["type"], "error", "{e}");
        }
        r.done();
    }
}

async fn agui(hub: &TestHub, up: &Upstream, path: &mut Path) {
    let client = http();
    for round in 0..=ROUNDS {
        up.push(Reply::stamped(CHUNKS, GAP));
        let input = agui::input(
            &format!("latency-{round}"),
            &format!("run-{round}"),
            json!([agui::user("m1", "hi")]),
        );
        let mut stream = agui::AguiStream::open(&client, &hub.url("/agui"), &input).await;
        let mut r = path.reading(round);
        loop {
            let v = stream.next_event().await;
            let now = unix_us();
            match v["type"].as_str() {
                Some("TEXT_MESSAGE_CONTENT") => r.text(v["delta"].as_str().unwrap(), now),
                Some("RUN_FINISHED") => break,
                Some("RUN_ERROR") => panic!("the run failed: {v}"),
                _ => {}
            }
        }
        r.done();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_models_chunk_to_a_tabs_delta_on_every_transport() {
    let up = Upstream::start().await;
    let base_url = up.base_url.clone();
    let hub = TestHub::start_with(move |c| upstream::point_hub_at(c, &base_url)).await;
    let mut paths = [
        Path::new("direct"),
        Path::new("websocket"),
        Path::new("sse"),
        Path::new("chatkit"),
        Path::new("agui"),
    ];
    let [d, w, s, c, a] = &mut paths;
    direct(&up, d).await;
    websocket(&hub, &up, w).await;
    sse(&hub, &up, s).await;
    chatkit(&hub, &up, c).await;
    agui(&hub, &up, a).await;

    let (d50, d99) = (paths[0].percentile(0.5), paths[0].percentile(0.99));
    eprintln!(
        "model chunk -> reader, {} chunks per path ({ROUNDS} replies x {CHUNKS}, {GAP:?} apart; \
         upstream, hub and reader on one 2-worker runtime, loopback), microseconds:",
        paths[0].us.len()
    );
    for p in &paths {
        assert_eq!(p.us.len(), ROUNDS * CHUNKS, "{}", p.name);
        let (p50, p99, max) = (p.percentile(0.5), p.percentile(0.99), p.percentile(1.0));
        let added = if p.name == "direct" {
            String::new()
        } else {
            format!(
                "; added over direct: p50 {:+} p99 {:+}",
                p50 as i64 - d50 as i64,
                p99 as i64 - d99 as i64
            )
        };
        eprintln!(
            "  {:<9} p50 {p50:>6} p99 {p99:>6} max {max:>6}{added}",
            p.name
        );
    }
}
