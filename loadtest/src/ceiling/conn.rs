//! One ceiling connection: route on the request line (WebSocket, SSE, or a small REST call),
//! then one task that reads client frames and writes batches (feed up to N, flush once).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use super::session::{ConnShared, Out, Session, Sub};
use super::Ceiling;
use crate::wire::json_str;

pub(super) async fn handle(stream: TcpStream, state: Arc<Ceiling>) {
    let mut peek = [0u8; 96];
    // Wait (bounded) until the request line is in; peek leaves it for the handshake.
    let mut line = String::new();
    for _ in 0..50 {
        let n = match tokio::time::timeout(Duration::from_secs(5), stream.peek(&mut peek)).await {
            Ok(Ok(n)) if n > 0 => n,
            _ => return,
        };
        line = String::from_utf8_lossy(&peek[..n]).to_string();
        if line.contains("\r\n") || n == peek.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or("").to_owned();
    match (method, path.as_str()) {
        ("GET", "/v1/ws") => websocket(stream, state).await,
        ("GET", p) if p.starts_with("/v1/sessions/") && p.ends_with("/events") => {
            let id = &p["/v1/sessions/".len()..p.len() - "/events".len()];
            sse(stream, state, id.to_owned()).await
        }
        ("POST", _) => rest(stream, state, path).await,
        _ => {
            let mut s = stream;
            let _ = s
                .write_all(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                )
                .await;
        }
    }
}

#[derive(Deserialize)]
struct ClientFrame {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(rename = "ref", default)]
    reference: Option<serde_json::Value>,
    #[serde(default)]
    session: Option<String>,
    #[serde(default)]
    since: Option<Since>,
    #[serde(default)]
    client_msg_id: Option<String>,
    #[serde(default)]
    text: Option<String>,
}

#[derive(Deserialize)]
struct Since {
    epoch: String,
    seq: u64,
}

fn reply(json: String) -> Out {
    Out {
        seq: 0,
        kind: "reply",
        json: Utf8Bytes::from(json),
    }
}

fn ref_field(r: &Option<serde_json::Value>) -> String {
    r.as_ref()
        .map(|v| format!(r#","ref":{v}"#))
        .unwrap_or_default()
}

fn error(r: &Option<serde_json::Value>, code: &str) -> Out {
    reply(format!(
        r#"{{"type":"error"{},"code":"{code}","message":"{code}"}}"#,
        ref_field(r)
    ))
}

fn snapshot(s: &Session, head: u64) -> Out {
    reply(format!(
        r#"{{"type":"snapshot","session":{},"epoch":{},"seq":{head},"title":"","items":[],"has_more":false,"active_run":null,"queued":[]}}"#,
        json_str(&s.id),
        json_str(&s.epoch)
    ))
}

/// Subscribe `conn` to `s` and queue the subscribed reply plus replay or snapshot.
fn subscribe(
    s: &Session,
    conn: u64,
    tx: &mpsc::Sender<Out>,
    shared: &Arc<ConnShared>,
    since: Option<(&str, u64)>,
    r: &Option<serde_json::Value>,
) -> Vec<Out> {
    let sub = Sub {
        conn,
        tx: tx.clone(),
        shared: shared.clone(),
    };
    let got = s.subscribe(sub, since);
    let resume = if got.replay.is_some() {
        "replay"
    } else {
        "snapshot"
    };
    let mut out = vec![reply(format!(
        r#"{{"type":"subscribed"{},"session":{},"epoch":{},"head_seq":{},"resume":"{resume}"}}"#,
        ref_field(r),
        json_str(&s.id),
        json_str(&s.epoch),
        got.head
    ))];
    match got.replay {
        Some(events) => out.extend(events),
        None => out.push(snapshot(s, got.head)),
    }
    out
}

async fn websocket(stream: TcpStream, state: Arc<Ceiling>) {
    let cfg = WebSocketConfig::default().read_buffer_size(state.cfg.read_buffer);
    let Ok(mut ws) = tokio_tungstenite::accept_async_with_config(stream, Some(cfg)).await else {
        return;
    };
    let conn = state.next_conn();
    let (tx, mut rx) = mpsc::channel::<Out>(state.cfg.queue);
    let shared = Arc::new(ConnShared::default());
    let mut subs: Vec<Arc<Session>> = Vec::new();
    let cut = shared.notify.notified();
    tokio::pin!(cut);
    // Bounded by the connection: ends when the client closes or is cut.
    loop {
        tokio::select! {
            msg = ws.next() => {
                let text = match msg {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                    Some(Ok(_)) => continue,
                };
                let Ok(f) = serde_json::from_str::<ClientFrame>(text.as_str()) else {
                    let _ = ws.send(Message::text(r#"{"type":"error","code":"bad_request","message":"bad json"}"#)).await;
                    continue;
                };
                let mut replies = Vec::new();
                match (f.kind.as_str(), f.session.as_deref().and_then(|id| state.get(id))) {
                    ("ping", _) => replies.push(reply(r#"{"type":"pong"}"#.to_owned())),
                    ("subscribe", Some(s)) => {
                        let since = f.since.as_ref().map(|x| (x.epoch.as_str(), x.seq));
                        replies = subscribe(&s, conn, &tx, &shared, since, &f.reference);
                        subs.push(s);
                    }
                    ("send", Some(s)) => {
                        let cmid = f.client_msg_id.clone().unwrap_or_default();
                        let (item, seq, dup) = s.send(&state.cfg, &cmid, f.text.as_deref().unwrap_or(""));
                        replies.push(reply(format!(
                            r#"{{"type":"ack"{},"session":{},"client_msg_id":{},"item_id":"{item}","epoch":{},"seq":{seq},"duplicate":{dup}}}"#,
                            ref_field(&f.reference), json_str(&s.id), json_str(&cmid), json_str(&s.epoch)
                        )));
                    }
                    (_, None) if f.session.is_some() => replies.push(error(&f.reference, "not_found")),
                    _ => replies.push(error(&f.reference, "unknown_type")),
                }
                for r in replies {
                    if ws.feed(Message::Text(r.json)).await.is_err() {
                        break;
                    }
                }
                if ws.flush().await.is_err() {
                    break;
                }
            }
            first = rx.recv() => {
                let Some(first) = first else { break };
                if write_batch(&mut ws, &mut rx, first, state.cfg.batch).await.is_err() {
                    break;
                }
            }
            _ = &mut cut => {
                if shared.overflow.load(Ordering::Acquire) {
                    // Send what was queued before the overflow, then close 4008.
                    while let Ok(o) = rx.try_recv() {
                        if ws.feed(Message::Text(o.json)).await.is_err() {
                            break;
                        }
                    }
                    let close = CloseFrame { code: CloseCode::from(4008), reason: "slow consumer".into() };
                    let _ = tokio::time::timeout(Duration::from_secs(10), ws.close(Some(close))).await;
                    break;
                }
            }
        }
    }
    for s in subs {
        s.unsubscribe(conn);
    }
}

async fn write_batch(
    ws: &mut tokio_tungstenite::WebSocketStream<TcpStream>,
    rx: &mut mpsc::Receiver<Out>,
    first: Out,
    batch: usize,
) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    ws.feed(Message::Text(first.json)).await?;
    for _ in 1..batch {
        match rx.try_recv() {
            Ok(o) => ws.feed(Message::Text(o.json)).await?,
            Err(_) => break,
        }
    }
    ws.flush().await
}

async fn sse(mut stream: TcpStream, state: Arc<Ceiling>, id: String) {
    let head = read_head(&mut stream).await;
    let Some(s) = state.get(&id) else {
        let _ = stream
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .await;
        return;
    };
    let since = head.as_deref().and_then(last_event_id);
    let conn = state.next_conn();
    let (tx, mut rx) = mpsc::channel::<Out>(state.cfg.queue);
    let shared = Arc::new(ConnShared::default());
    let first = subscribe(
        &s,
        conn,
        &tx,
        &shared,
        since.as_ref().map(|(e, q)| (e.as_str(), *q)),
        &None,
    );
    let mut buf = Vec::with_capacity(8192);
    buf.extend_from_slice(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n",
    );
    for o in first.into_iter().skip(1) {
        sse_frame(&mut buf, &s, &o);
    }
    // Bounded by the connection: ends when a write fails or the subscriber is cut.
    loop {
        if stream.write_all(&buf).await.is_err() {
            break;
        }
        buf.clear();
        let Some(o) = rx.recv().await else { break };
        sse_frame(&mut buf, &s, &o);
        for _ in 1..state.cfg.batch {
            match rx.try_recv() {
                Ok(o) => sse_frame(&mut buf, &s, &o),
                Err(_) => break,
            }
        }
        if shared.overflow.load(Ordering::Acquire) && rx.is_empty() {
            let _ = stream.write_all(&buf).await;
            break;
        }
    }
    s.unsubscribe(conn);
}

fn sse_frame(buf: &mut Vec<u8>, s: &Session, o: &Out) {
    let kind = if o.kind == "reply" {
        "snapshot"
    } else {
        o.kind
    };
    let id = if o.seq > 0 {
        format!("id: {}:{}\n", s.epoch, o.seq)
    } else {
        String::new()
    };
    buf.extend_from_slice(format!("{id}event: {kind}\ndata: ").as_bytes());
    buf.extend_from_slice(o.json.as_bytes());
    buf.extend_from_slice(b"\n\n");
}

fn last_event_id(head: &str) -> Option<(String, u64)> {
    let v = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("last-event-id:"))?
        .split_once(':')?
        .1
        .trim();
    let (e, s) = v.rsplit_once(':')?;
    Some((e.to_owned(), s.parse().ok()?))
}

/// Read the request head (and nothing past it is expected for GET). Bounded in size and time.
async fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut raw = Vec::with_capacity(1024);
    tokio::time::timeout(Duration::from_secs(5), async {
        while raw.len() < 65536 {
            if let Some(p) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                let rest = raw.split_off(p + 4);
                return Some((String::from_utf8_lossy(&raw).to_string(), rest));
            }
            let mut chunk = [0u8; 2048];
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            raw.extend_from_slice(&chunk[..n]);
        }
        None
    })
    .await
    .ok()
    .flatten()
    .map(|(h, _)| h)
}

/// `POST /v1/sessions` and `POST /v1/sessions/{id}/messages`, one request per connection.
async fn rest(mut stream: TcpStream, state: Arc<Ceiling>, path: String) {
    let mut raw = Vec::new();
    // The loader sends small bodies with Content-Length and closes after the reply.
    let body = tokio::time::timeout(Duration::from_secs(5), async {
        let mut chunk = [0u8; 4096];
        while raw.len() < 1 << 20 {
            if let Some(p) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&raw[..p]).to_ascii_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                if raw.len() >= p + 4 + len {
                    return Some(String::from_utf8_lossy(&raw[p + 4..p + 4 + len]).to_string());
                }
            }
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            raw.extend_from_slice(&chunk[..n]);
        }
        None
    })
    .await
    .ok()
    .flatten();
    let Some(body) = body else { return };
    let (status, json) = if path == "/v1/sessions" {
        let s = state.create();
        (
            "201 Created",
            format!(
                r#"{{"id":{},"title":"","created_at":"1970-01-01T00:00:00Z","updated_at":"1970-01-01T00:00:00Z"}}"#,
                json_str(&s.id)
            ),
        )
    } else if let Some(id) = path
        .strip_prefix("/v1/sessions/")
        .and_then(|p| p.strip_suffix("/messages"))
    {
        let f: Option<ClientFrame> = serde_json::from_str(&body).ok();
        match (state.get(id), f) {
            (Some(s), Some(f)) => {
                let cmid = f.client_msg_id.unwrap_or_default();
                let (item, seq, dup) = s.send(&state.cfg, &cmid, f.text.as_deref().unwrap_or(""));
                (
                    "200 OK",
                    format!(
                        r#"{{"type":"ack","session":{},"client_msg_id":{},"item_id":"{item}","epoch":{},"seq":{seq},"duplicate":{dup}}}"#,
                        json_str(&s.id),
                        json_str(&cmid),
                        json_str(&s.epoch)
                    ),
                )
            }
            (None, _) => (
                "404 Not Found",
                r#"{"error":{"code":"not_found","message":"no such session"}}"#.to_owned(),
            ),
            (_, None) => (
                "400 Bad Request",
                r#"{"error":{"code":"bad_request","message":"bad body"}}"#.to_owned(),
            ),
        }
    } else {
        (
            "404 Not Found",
            r#"{"error":{"code":"not_found","message":"no route"}}"#.to_owned(),
        )
    };
    let resp = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
        json.len()
    );
    let _ = stream.write_all(resp.as_bytes()).await;
}
