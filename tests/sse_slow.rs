//! The SSE slow-consumer cut-off (`GET /v1/sessions/{id}/events`): a reader that stops reading
//! (a raw socket with a fixed receive buffer, on a hub whose sockets have a small fixed send
//! buffer) while a run streams thousands of deltas overflows its outbox; when it reads again
//! it gets the frames queued before the overflow, then the comment telling it to reconnect,
//! then the end of the response. Meanwhile the other tabs (SSE and
//! WebSocket) get every delta and keep streaming afterwards. The cut stream is a gap-free
//! prefix of what the fast tab saw; a resume with its Last-Event-ID, by then over a thousand
//! events behind, gets a snapshot at the head holding the complete reply, and then exactly the
//! live events the fast tab gets: no gap, no duplicate.

use crate::sse_support;
use crate::support;

use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use sse_support::{ends_run, events_url, open, SseClient, SseEvent, SseItem};
use support::TestHub;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Well over what one reader's buffers hold (about 750 events here): its outbox (256 frames),
/// hyper's write queue (16 writes), the hub's fixed send buffer and the reader's receive buffer.
const DELTAS: u32 = 2_000;
/// The hub's sockets get a fixed send buffer: with the kernel's autotuning a stalled reader
/// absorbs up to tcp_wmem's maximum (4 MiB, some 2,000 event writes here) before the hub's
/// queue even starts to fill, so the cut would depend on the machine's settings.
const SEND_BUFFER: u32 = 4096;
/// Reading the cut stream's backlog (what the hub's and the kernel's buffers hold).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// `GET .../events` over a raw socket with a fixed 64 KiB receive buffer (so the kernel cannot
/// grow it), as HTTP/1.0 so the body ends with the connection. Returns the socket after the
/// headers. (A receive buffer of a few KiB stalls the later drain on TCP's 200 ms persist
/// timer: the receiver's silly-window avoidance holds its window updates back.)
async fn slow_reader(hub: &TestHub, session: &str) -> (TcpStream, HeaderMap, Vec<u8>) {
    let sock = TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(64 * 1024).unwrap();
    let mut s = sock.connect(hub.addr).await.unwrap();
    let req = format!(
        "GET /v1/sessions/{session}/events HTTP/1.0\r\nHost: {}\r\nAccept: text/event-stream\r\n\r\n",
        hub.addr
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let end = loop {
        let mut chunk = [0u8; 512];
        let n = tokio::time::timeout(sse_support::EVENT_TIMEOUT, s.read(&mut chunk))
            .await
            .expect("response head in time")
            .unwrap();
        assert!(n > 0, "the hub closed before answering");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_string();
    assert!(
        head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
        "{head}"
    );
    let mut headers = HeaderMap::new();
    for line in head.lines().skip(1).filter(|l| !l.is_empty()) {
        let (k, v) = line.split_once(':').unwrap();
        headers.insert(
            HeaderName::from_bytes(k.trim().as_bytes()).unwrap(),
            HeaderValue::from_str(v.trim()).unwrap(),
        );
    }
    (s, headers, buf[end..].to_vec())
}

fn ids(events: &[SseEvent]) -> Vec<String> {
    events.iter().filter_map(|e| e.id.clone()).collect()
}

fn seq(id: &str) -> u64 {
    id.rsplit_once(':').unwrap().1.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_sse_reader_is_cut_and_resumes_without_gap_or_duplicate() {
    let hub = TestHub::start_with_send_buffer(SEND_BUFFER, |c| {
        c.scripted_deltas = DELTAS;
        c.scripted_delay_ms = 1;
        // A small queue, so the overflow comes sooner; the fast tabs still have 256 frames of
        // slack, a quarter of a second of deltas.
        c.outbound_frames = 256;
        c.outbound_bytes = 64 * 1024;
        c.checkpoint_ms = 2_000;
    })
    .await;
    let base = format!("http://{}", hub.addr);
    let s = hub.create_session().await;
    let (mut slow, slow_headers, slow_head) = slow_reader(&hub, &s).await;
    let mut fast = open(&events_url(&base, &s), None).await;
    let mut ws = hub.ws().await;
    ws.join(&s).await;
    ws.keep = false;

    // Short words keep the reply, and so the snapshot a resume gets, under the queue's 64 KiB:
    // a snapshot larger than the queue's byte bound cannot be queued at all.
    let words: Vec<String> = (0..20).map(|i| format!("w{i:03}")).collect();
    let ack = ws.say(&s, "big", &words.join(" ")).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let run = ack["run_id"].as_str().unwrap().to_owned();

    // The fast SSE tab and the WebSocket tab, both read as the events come, get every delta
    // while the slow one reads nothing.
    let ws_tab = async {
        let mut deltas = 0;
        loop {
            let f = ws.recv().await;
            if f["type"] == "run.delta" {
                deltas += 1;
            }
            if ends_run(&f, &run) {
                return (deltas, f);
            }
        }
    };
    let (fast_events, (ws_deltas, ws_end)) =
        tokio::join!(fast.until(|v| ends_run(v, &run)), ws_tab);
    let fast_deltas = fast_events
        .iter()
        .filter(|e| e.event == "run.delta")
        .count();
    assert_eq!(
        fast_deltas, DELTAS as usize,
        "the fast SSE tab got every delta"
    );
    assert_eq!(fast_events.last().unwrap().event, "run.completed");
    assert_eq!(ws_deltas, DELTAS, "the WebSocket tab got every delta");
    assert_eq!(ws_end["type"], "run.completed");
    // Reading again: what was queued before the overflow, the comment, then the end.
    let mut body = slow_head;
    tokio::time::timeout(DRAIN_TIMEOUT, slow.read_to_end(&mut body))
        .await
        .expect("the cut stream ends")
        .unwrap();
    let mut cut = SseClient::from_body(slow_headers, Bytes::from(body));
    let mut got = Vec::new();
    let mut comments = Vec::new();
    loop {
        match cut.next_item().await {
            SseItem::Event(e) => got.push(e),
            SseItem::Comment(c) => comments.push(c),
            SseItem::End => break,
        }
    }
    assert_eq!(
        comments.last().map(String::as_str),
        Some("slow consumer: reconnect with Last-Event-ID"),
        "the stream ends with the reconnect comment"
    );
    // Counted when the cut stream is polled again, so only now.
    assert_eq!(
        hub.metric("sessionhub_slow_consumer_closes_total").await,
        1.0,
        "exactly one consumer (the slow one) was cut"
    );
    let got: Vec<SseEvent> = got.into_iter().filter(|e| e.id.is_some()).collect();
    let cut_ids = ids(&got);
    let all_ids = ids(&fast_events);
    assert!(
        cut_ids.len() < all_ids.len(),
        "the slow reader was cut before the end: {} of {} events",
        cut_ids.len(),
        all_ids.len()
    );
    eprintln!("cut after {} of {} events", cut_ids.len(), all_ids.len());
    assert_eq!(cut_ids[..], all_ids[..cut_ids.len()], "a gap-free prefix");
    let last = cut_ids.last().expect("some events before the cut").clone();

    // Resume from the last event the cut stream delivered. It is further behind than half a
    // queue (PROTOCOL.md: a replay must fit the connection's queue), so the hub answers with a
    // snapshot at the head instead of a replay: the state the missed events would have built.
    let head = seq(all_ids.last().unwrap());
    let mut resumed = open(&events_url(&base, &s), Some(&last)).await;
    assert_eq!(resumed.header("sessionhub-resume"), "snapshot");
    assert_eq!(resumed.header("sessionhub-head-seq"), head.to_string());
    let snap = resumed.next_event().await;
    assert_eq!(snap.event, "snapshot");
    assert_eq!(
        seq(snap.id.as_deref().unwrap()),
        head,
        "the snapshot is at the head"
    );
    let snap = snap.json();
    let done = fast_events.last().unwrap().json();
    let reply = snap["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == done["item"]["id"])
        .expect("the finished reply is in the snapshot");
    assert_eq!(reply["status"], "complete");
    assert_eq!(reply["text"], done["item"]["text"], "no text missing");
    assert!(snap["active_run"].is_null(), "{}", snap["active_run"]);

    // The other tabs keep streaming after the cut, and the resumed stream goes on from the
    // snapshot's position with exactly the events the fast tab sees: no gap, no duplicate.
    let ack2 = ws.say(&s, "after", "still here").await;
    let run2 = ack2["run_id"].as_str().unwrap().to_owned();
    let (fast_tail, resumed_tail, ws_end) = tokio::join!(
        fast.until(|v| ends_run(v, &run2)),
        resumed.until(|v| ends_run(v, &run2)),
        ws.until_run_end(&run2),
    );
    assert_eq!(fast_tail.last().unwrap().event, "run.completed");
    assert_eq!(ws_end["type"], "run.completed");
    assert_eq!(seq(resumed_tail[0].id.as_deref().unwrap()), head + 1);
    assert_eq!(ids(&resumed_tail), ids(&fast_tail));
    for (a, b) in resumed_tail.iter().zip(fast_tail.iter()) {
        assert_eq!((&a.event, &a.data), (&b.event, &b.data));
    }
    assert_eq!(
        hub.metric("sessionhub_slow_consumer_closes_total").await,
        1.0,
        "nobody else was cut"
    );
}
