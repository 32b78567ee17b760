//! A WebSocket test client that speaks the hub's JSON frames over tokio-tungstenite, with every
//! wait bounded by [`FRAME_TIMEOUT`].

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::model::{ends_run, is_event};

/// How long any single expected frame may take before a test fails.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(10);

/// A WebSocket tab speaking the hub's JSON frames.
pub struct WsClient {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Every sequenced event received, in order.
    pub events: Vec<Value>,
    /// Keep received events in `events` (off for memory measurements).
    pub keep: bool,
}

impl WsClient {
    /// Open `url`; panics unless the upgrade succeeds in time.
    pub async fn connect(url: &str) -> Self {
        match Self::open(url).await {
            Ok(c) => c,
            Err(status) => panic!("connect: the upgrade was refused with {status}"),
        }
    }

    /// Open a WebSocket with `req` (a URL, or a request with headers); `Err(status)` when the
    /// hub refuses the upgrade with an HTTP answer. Panics on a timeout or any other failure.
    pub async fn open(req: impl IntoClientRequest + Unpin) -> Result<Self, u16> {
        match tokio::time::timeout(FRAME_TIMEOUT, tokio_tungstenite::connect_async(req))
            .await
            .expect("handshake in time")
        {
            Ok((ws, _)) => Ok(Self::new(ws)),
            Err(tungstenite::Error::Http(resp)) => Err(resp.status().as_u16()),
            Err(e) => panic!("handshake failed without an HTTP answer: {e}"),
        }
    }

    /// A client on an already open WebSocket, keeping the events it receives.
    pub fn new(ws: WebSocketStream<MaybeTlsStream<TcpStream>>) -> Self {
        WsClient {
            ws,
            events: Vec::new(),
            keep: true,
        }
    }

    pub async fn send(&mut self, v: Value) {
        self.ws
            .send(Message::Text(v.to_string().into()))
            .await
            .expect("send frame");
    }

    pub async fn send_raw(&mut self, m: Message) {
        self.ws.send(m).await.expect("send raw");
    }

    /// The next JSON frame (pings and pongs are skipped). Panics on timeout or close.
    pub async fn recv(&mut self) -> Value {
        match self.next_frame().await {
            Frame::Json(v) => v,
            Frame::Closed(c) => panic!("connection closed: {c:?}"),
        }
    }

    pub async fn next_frame(&mut self) -> Frame {
        loop {
            let m = tokio::time::timeout(FRAME_TIMEOUT, self.ws.next())
                .await
                .expect("frame in time");
            match m {
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(t.as_str()).expect("hub sends JSON");
                    if self.keep && is_event(&v) {
                        self.events.push(v.clone());
                    }
                    return Frame::Json(v);
                }
                Some(Ok(Message::Close(c))) => return Frame::Closed(c),
                Some(Ok(_)) => continue,
                Some(Err(e)) => {
                    return Frame::Closed(Some(CloseFrame {
                        code: 1006.into(),
                        reason: e.to_string().into(),
                    }))
                }
                None => return Frame::Closed(None),
            }
        }
    }

    /// Frames until (and including) the first that matches.
    pub async fn recv_until(&mut self, pred: impl Fn(&Value) -> bool) -> Vec<Value> {
        let mut out = Vec::new();
        loop {
            let v = self.recv().await;
            let done = pred(&v);
            out.push(v);
            if done {
                return out;
            }
        }
    }

    /// Subscribe and return the `subscribed` reply (replay/snapshot frames follow).
    pub async fn subscribe(&mut self, session: &str, since: Option<(&str, u64)>) -> Value {
        let mut f = json!({"type": "subscribe", "session": session, "ref": "sub"});
        if let Some((epoch, seq)) = since {
            f["since"] = json!({"epoch": epoch, "seq": seq});
        }
        self.send(f).await;
        let v = self.recv().await;
        assert_eq!(v["type"], "subscribed", "subscribe reply: {v}");
        v
    }

    /// Subscribe without `since` and read the snapshot.
    pub async fn join(&mut self, session: &str) -> Value {
        self.subscribe(session, None).await;
        let snap = self.recv().await;
        assert_eq!(snap["type"], "snapshot");
        snap
    }

    /// Send a message and return its ack.
    pub async fn say(&mut self, session: &str, cmid: &str, text: &str) -> Value {
        self.send(json!({"type": "send", "session": session, "client_msg_id": cmid, "text": text, "ref": cmid})).await;
        let frames = self
            .recv_until(|v| v["type"] == "ack" || v["type"] == "error")
            .await;
        frames.last().cloned().expect("a reply")
    }

    /// After refused input, proof that it emitted nothing: the next sequenced event this tab
    /// sees is the `message` of the accepted send `ack`, right after `joined` (the snapshot the
    /// tab joined with). Then reads until that message's run ends.
    pub async fn sees_only_the_accepted_message_after(&mut self, joined: &Value, ack: &Value) {
        let next = self.recv_until(|v| v["seq"].is_u64()).await;
        let next = next.last().unwrap();
        assert_eq!(next["type"], "message", "{next}");
        assert_eq!(
            next["seq"].as_u64(),
            Some(joined["seq"].as_u64().unwrap() + 1)
        );
        self.until_run_end(ack["run_id"].as_str().unwrap()).await;
    }

    /// Read until a run ends (`run.completed`, `run.cancelled` or `run.failed`).
    pub async fn until_run_end(&mut self, run_id: &str) -> Value {
        let frames = self.recv_until(|v| ends_run(v, run_id)).await;
        frames.last().cloned().expect("terminal event")
    }

    /// Read until the close frame, then finish the close handshake (polling on flushes our
    /// Close reply); returns the hub's close code.
    pub async fn until_close(&mut self) -> Option<u16> {
        let code = loop {
            match self.next_frame().await {
                Frame::Json(_) => continue,
                Frame::Closed(c) => break c.map(|c| u16::from(c.code)),
            }
        };
        let _ = tokio::time::timeout(FRAME_TIMEOUT, async {
            while self.ws.next().await.is_some() {}
        })
        .await;
        code
    }
}

pub enum Frame {
    Json(Value),
    Closed(Option<CloseFrame>),
}
