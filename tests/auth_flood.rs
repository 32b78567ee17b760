//! Issue 8, limits continued: request bodies (413 over the size limit, 408 when they trickle)
//! and a flood from one user that must not slow another user's stream.

use crate::auth_support;
use crate::support;

use std::time::{Duration, Instant};

use auth_support::*;
use serde_json::json;
use support::WsClient;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn oversized_bodies_get_413_and_slow_bodies_408() {
    let hub = start(|c| {
        c.max_body_bytes = 1024;
        c.body_timeout_secs = 1;
    })
    .await;
    let alice = token("alice");
    let s = create_session(&hub, &alice).await;
    let big = json!({"client_msg_id": "big", "text": "x".repeat(2000)});
    let (status, body) = call(
        &hub,
        "POST",
        &format!("/v1/sessions/{s}/messages"),
        Some(&alice),
        None,
        Some(&big),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (413, Some("too_large"))
    );

    // A body that trickles: headers promise 100 bytes, 10 arrive, then nothing.
    let started = Instant::now();
    let mut tcp = tokio::net::TcpStream::connect(hub.addr)
        .await
        .expect("connect");
    let head = format!(
        "POST /v1/sessions/{s}/messages HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {alice}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"client_m",
        hub.addr
    );
    tcp.write_all(head.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut answer))
        .await
        .expect("answered, not hung")
        .expect("read");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "cut after the deadline, not before"
    );
    // Nothing was stored, and the next request is served.
    let (_, items) = call(
        &hub,
        "GET",
        &format!("/v1/sessions/{s}/items"),
        Some(&alice),
        None,
        None,
    )
    .await;
    assert_eq!(items["items"].as_array().expect("items").len(), 0);
    let (status, _) = call(
        &hub,
        "POST",
        &format!("/v1/sessions/{s}/messages"),
        Some(&alice),
        None,
        Some(&json!({"client_msg_id": "ok", "text": "hi"})),
    )
    .await;
    assert_eq!(status, 200);
}

/// One run of `text` on `ws`: (start-to-end duration, longest gap between deltas).
async fn timed_run(ws: &mut WsClient, s: &str, cmid: &str) -> (Duration, Duration) {
    ws.say(s, cmid, "measure me").await;
    ws.recv_until(|v| v["type"] == "run.started").await;
    let start = Instant::now();
    let (mut last, mut gap) = (start, Duration::ZERO);
    loop {
        let v = ws.recv().await;
        let now = Instant::now();
        match v["type"].as_str() {
            Some("run.delta") => {
                gap = gap.max(now - last);
                last = now;
            }
            Some("run.completed") => return (now - start, gap),
            Some("run.failed" | "run.cancelled") => panic!("run ended badly: {v}"),
            _ => {}
        }
    }
}

#[tokio::test]
async fn a_flood_from_one_user_does_not_slow_another_users_stream() {
    let hub = start(|c| {
        c.scripted_deltas = 20;
        c.scripted_delay_ms = 20;
    })
    .await;
    let (alice, bob) = (token("alice"), token("bob"));
    let (sa, sb) = (
        create_session(&hub, &alice).await,
        create_session(&hub, &bob).await,
    );
    let mut tab = ws_as(&hub, &bob).await;
    tab.join(&sb).await;
    let (quiet, quiet_gap) = timed_run(&mut tab, &sb, "q").await;

    // Alice floods: 400 sends as fast as the socket takes them, and 400 HTTP requests.
    let mut flood = ws_as(&hub, &alice).await;
    flood.keep = false;
    flood.join(&sa).await;
    let http_flood = {
        let (url, alice) = (hub.url("/v1/sessions"), alice.clone());
        tokio::spawn(async move {
            let client = support::http();
            let mut statuses = Vec::new();
            for _ in 0..8 {
                let batch = (0..50).map(|_| client.get(&url).bearer_auth(&alice).send());
                for r in futures::future::join_all(batch).await {
                    statuses.push(r.expect("request").status().as_u16());
                }
            }
            statuses
        })
    };
    let ws_flood = tokio::spawn(async move {
        for n in 0..400 {
            flood.send(json!({"type": "send", "session": sa, "client_msg_id": format!("f{n}"), "text": "flood", "ref": n})).await;
        }
        let (mut acks, mut limited) = (0, 0);
        while acks + limited < 400 {
            let v = flood.recv().await;
            match (v["type"].as_str(), v["code"].as_str()) {
                (Some("ack"), _) => acks += 1,
                (Some("error"), Some("rate_limited")) => limited += 1,
                (Some("error"), other) => panic!("unexpected error {other:?}: {v}"),
                _ => {}
            }
        }
        (acks, limited)
    });
    let (busy, busy_gap) = timed_run(&mut tab, &sb, "f").await;
    let (acks, limited) = ws_flood.await.expect("ws flood");
    let statuses = http_flood.await.expect("http flood");
    let throttled = statuses.iter().filter(|s| **s == 429).count();
    eprintln!("quiet run {quiet:?} (gap {quiet_gap:?}); during flood {busy:?} (gap {busy_gap:?}); ws acks {acks}, rate_limited {limited}; http 429s {throttled}/400");
    assert!(
        limited > 0 && acks <= 60 + 10,
        "the message limit cut the flood: {acks} acks"
    );
    assert!(throttled > 0, "the HTTP rate cut the flood");
    // 20 deltas every 20 ms is 400 ms; on a shared two-core machine allow generous noise, but
    // far less than what an unthrottled flood of 400 runs and fsyncs would cost.
    assert!(
        busy < quiet * 2 + Duration::from_millis(400),
        "Bob's stream slowed: {busy:?} vs {quiet:?}"
    );
    assert!(
        busy_gap < Duration::from_millis(300),
        "Bob's stream stalled for {busy_gap:?}"
    );
}
