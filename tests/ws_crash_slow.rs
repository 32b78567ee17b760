//! Crash recovery with the real binary (issue 2, test 7) and slow consumers (issue 2, test 8).

mod support;

use serde_json::Value;
use support::{BinHub, TestHub, WsClient};
use tokio::net::TcpSocket;

/// kill -9 mid-run, restart on the same data dir: every acknowledged message and finished item
/// is there, the streaming item is `interrupted` with a prefix of what was streamed, queued runs
/// are dropped (their messages stay), and resuming clients get a snapshot under a new epoch.
#[tokio::test]
async fn kill9_mid_run_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let hub = BinHub::start(
        dir.path(),
        &[
            "--scripted-deltas",
            "400",
            "--scripted-delay-ms",
            "10",
            "--checkpoint-ms",
            "50",
        ],
    )
    .await;
    let s = support::create_session(&hub.url("/v1/sessions")).await;
    let mut t = WsClient::connect(&hub.ws_url()).await;
    t.join(&s).await;
    // A finished run first: cancel it so it is short, it is "finished" all the same.
    let a1 = t.say(&s, "k1", "first message").await;
    t.recv_until(|v| v["type"] == "run.delta").await;
    t.send(serde_json::json!({"type":"cancel","session":s}))
        .await;
    let end1 = t.until_run_end(a1["run_id"].as_str().unwrap()).await;
    let a2 = t.say(&s, "k2", "second message").await;
    let a3 = t.say(&s, "k3", "queued message").await;
    assert_eq!(a3["type"], "ack");
    // Stream for about 1.5 s: many 50 ms checkpoints, and sled's own 500 ms flusher has put
    // some of them on disk before the kill.
    let mut streamed = String::new();
    while streamed.split(' ').count() < 150 {
        let f = t.recv().await;
        if f["type"] == "run.delta" && f["run_id"] == a2["run_id"] {
            streamed.push_str(f["text"].as_str().unwrap());
        }
    }
    let old_epoch = t.events.last().unwrap()["epoch"]
        .as_str()
        .unwrap()
        .to_owned();
    let old_seq = t.events.last().unwrap()["seq"].as_u64().unwrap();
    hub.kill9().await;

    let hub = BinHub::start(dir.path(), &[]).await;
    let r = support::http()
        .get(hub.url(&format!("/v1/sessions/{s}/items")))
        .send()
        .await
        .unwrap();
    let items = r.json::<Value>().await.unwrap()["items"]
        .as_array()
        .unwrap()
        .clone();
    let summary: Vec<(String, String)> = items
        .iter()
        .map(|i| {
            (
                i["role"].as_str().unwrap().into(),
                i["status"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("user", "complete"),
            ("assistant", "cancelled"),
            ("user", "complete"),
            ("assistant", "interrupted"),
            ("user", "complete")
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    assert_eq!(items[0]["text"], "first message");
    assert_eq!(items[1]["text"], end1["item"]["text"]);
    assert_eq!(items[2]["id"], a2["item_id"]);
    // Ordered by creation: the reply to k2 started before k3 was queued.
    assert_eq!(items[4]["id"], a3["item_id"]);
    let persisted = items[3]["text"].as_str().unwrap();
    let full = sessionhub::agent::scripted::scripted_reply("second message", 400);
    assert!(
        full.starts_with(persisted),
        "interrupted text is a prefix of the reply"
    );
    assert!(
        !persisted.is_empty(),
        "the checkpointed text survived the crash"
    );
    // Resume with the old position: a snapshot under a new epoch; no run is active or queued.
    let mut c = WsClient::connect(&hub.ws_url()).await;
    let sub = c.subscribe(&s, Some((&old_epoch, old_seq))).await;
    assert_eq!(sub["resume"], "snapshot");
    assert_ne!(sub["epoch"], old_epoch.as_str());
    let snap = c.recv().await;
    assert!(snap["active_run"].is_null());
    assert_eq!(snap["queued"], serde_json::json!([]));
    assert_eq!(snap["items"].as_array().unwrap().len(), 5);
    // A duplicate of an acknowledged message is still recognised after the crash.
    let dup = c.say(&s, "k2", "second message").await;
    assert_eq!(dup["duplicate"], true);
    assert_eq!(dup["item_id"], a2["item_id"]);
    hub.kill9().await;
}

/// A tab that stops reading while its session streams megabytes is closed with 4008; the other
/// tab gets every delta; the hub's memory stays bounded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_consumer_is_cut_without_slowing_others() {
    let hub = TestHub::start_with(|c| {
        c.scripted_deltas = 8_000;
        // Paced (about 1,000 deltas a second): flat out, the fast tab (a debug-build reader
        // sharing the hub's two cores) fell behind on a busy machine and was cut 4008 too.
        c.scripted_delay_ms = 1;
        c.close_timeout_secs = 120;
        c.checkpoint_ms = 2_000;
        c.max_text_chars = 32_000;
    })
    .await;
    let s = hub.create_session().await;
    // The slow tab: a tiny receive buffer, and it stops reading after joining.
    let sock = TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    let stream = sock.connect(hub.addr).await.unwrap();
    let (ws, _) = tokio_tungstenite::client_async(
        hub.ws_url(),
        tokio_tungstenite::MaybeTlsStream::Plain(stream),
    )
    .await
    .unwrap();
    let mut slow = WsClient {
        ws,
        events: Vec::new(),
        keep: true,
    };
    slow.join(&s).await;
    let mut fast = hub.ws().await;
    fast.join(&s).await;
    let rss_before = rss_kib();
    // 30 words of 500 characters: each delta is about 0.6 KB, 4.5 MB in all, more than the
    // kernel's socket buffers and the 256 KiB outbox together hold.
    let words: Vec<String> = (0..30).map(|i| format!("{i}{}", "w".repeat(499))).collect();
    let text = words.join(" ");
    let ack = fast.say(&s, "big", &text).await;
    assert_eq!(ack["type"], "ack");
    fast.keep = false;
    let mut deltas = 0;
    let end = loop {
        let f = fast.recv().await;
        if f["type"] == "run.delta" {
            deltas += 1;
        }
        if f["type"] == "run.completed" {
            break f;
        }
    };
    assert_eq!(end["type"], "run.completed");
    assert_eq!(deltas, 8_000, "the fast tab got every delta");
    let rss_after = rss_kib();
    // Reading again: the frames queued before the overflow, then close 4008.
    assert_eq!(slow.until_close().await, Some(4008));
    assert_eq!(
        hub.metric("sessionhub_slow_consumer_closes_total").await,
        1.0
    );
    let got = slow
        .events
        .iter()
        .filter(|e| e["type"] == "run.delta")
        .count();
    eprintln!(
        "slow tab got {got} deltas; hub+clients RSS grew {} KiB",
        rss_after.saturating_sub(rss_before)
    );
    assert!(got < 8_000, "the slow tab was cut off early ({got} deltas)");
    let grew_mib = (rss_after.saturating_sub(rss_before)) / 1024;
    assert!(grew_mib < 48, "hub memory grew by {grew_mib} MiB while streaming 4.5 MB to a stalled tab (the finished item, its event and the
    // fast tab's copies account for most of it; an unbounded queue would add the whole stream)");
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap()
        .parse()
        .unwrap()
}

/// A session whose newest items are larger than a connection's queue is still joinable: the
/// snapshot holds the newest items that fit (`has_more` tells the client to page the rest), and
/// a resume further back than half a queue in bytes gets that snapshot, never a 4008 close.
#[tokio::test]
async fn a_session_larger_than_a_queue_is_joined_with_a_snapshot_that_fits() {
    let hub = TestHub::start_with(|c| {
        c.outbound_bytes = 16 * 1024;
        c.scripted_deltas = 4;
    })
    .await;
    let s = hub.create_session().await;
    let mut t = hub.ws().await;
    t.join(&s).await;
    let long = "x".repeat(3000);
    for i in 0..8 {
        let a = t.say(&s, &format!("m{i}"), &long).await;
        assert_eq!(a["type"], "ack", "{a}");
        t.until_run_end(a["run_id"].as_str().unwrap()).await;
    }
    // Eight 3,000-byte messages and their replies: about 25 KB of items, 16 KiB of queue.
    let mut other = hub.ws().await;
    let snap = other.join(&s).await;
    let items = snap["items"].as_array().unwrap();
    assert!(!items.is_empty() && items.len() < 16, "{}", items.len());
    assert_eq!(snap["has_more"], true);
    let newest = items.last().unwrap();
    assert_eq!(newest["role"], "assistant", "the newest item is there");
    // The connection is open and live: the next run reaches it.
    let a = t.say(&s, "after", "short").await;
    let end = other.until_run_end(a["run_id"].as_str().unwrap()).await;
    assert_eq!(end["type"], "run.completed");
    // A resume from the first message on: about 25 KB of events, more than half the queue.
    let first_epoch = snap["epoch"].as_str().unwrap();
    let mut third = hub.ws().await;
    let sub = third.subscribe(&s, Some((first_epoch, 1))).await;
    assert_eq!(sub["resume"], "snapshot");
    assert_eq!(third.recv().await["type"], "snapshot");
    let a = t.say(&s, "after2", "short").await;
    let end = third.until_run_end(a["run_id"].as_str().unwrap()).await;
    assert_eq!(end["type"], "run.completed");
}
