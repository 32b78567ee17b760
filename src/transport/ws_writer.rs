//! The writer half of a WebSocket connection (see `ws`): drains the connection's outbox in
//! batches, sends the heartbeat, and sends the Close the hub starts after the frames already
//! queued.

use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures::stream::SplitSink;
use futures::SinkExt;
use tokio::sync::{mpsc, watch};

use super::ws::{
    Link, CLOSE_HEARTBEAT, CLOSE_INVALID_DATA, CLOSE_POLICY, CLOSE_RESTART, CLOSE_SLOW,
    CLOSE_TOO_BIG,
};
use super::{wire, AppState};
use crate::domain::sleep_until_opt;
use crate::session::{Outbound, OutboxReceiver};

/// Frames the writer sends in one batch before flushing.
const BATCH: usize = 64;

type Sink = SplitSink<WebSocket, Message>;

fn to_message(o: &Outbound) -> Message {
    if let Outbound::Binary(b) = o {
        return Message::Binary(b.clone());
    }
    let bytes = wire::render(o);
    match Utf8Bytes::try_from(bytes) {
        Ok(t) => Message::Text(t),
        Err(_) => Message::Text(Utf8Bytes::from_static(
            "{\"type\":\"error\",\"code\":\"internal\",\"message\":\"unencodable frame\"}",
        )),
    }
}

/// Writes queued frames in batches until the connection closes. Code 0 from the reader means
/// the peer closed first: stop writing, tungstenite already answers. However the writer ends,
/// it tells the reader how long to keep reading (the close handshake, or not at all after a
/// write error).
pub(super) async fn writer(
    mut sink: Sink,
    mut outrx: OutboxReceiver,
    link: Arc<Link>,
    state: AppState,
    mut close_rx: mpsc::Receiver<u16>,
    closing: watch::Sender<Option<tokio::time::Instant>>,
) {
    let cfg = state.hub.config().clone();
    let now = tokio::time::Instant::now;
    let mut ping = tokio::time::interval_at(now() + cfg.heartbeat(), cfg.heartbeat());
    let shutdown = state.signals.close_conns.clone();
    // The connection ends when its credential does (1008); re-authenticating means reconnecting.
    let expires = link.expires;
    let code = loop {
        if outrx.overflowed() {
            break CLOSE_SLOW;
        }
        let step: Result<(), axum::Error> = tokio::select! {
            biased;
            _ = link.outbox.wait_overflow() => break CLOSE_SLOW,
            code = close_rx.recv() => match code {
                Some(0) | None => {
                    let _ = closing.send(Some(now() + cfg.close_timeout()));
                    return;
                }
                Some(code) => break code,
            },
            _ = shutdown.cancelled() => break CLOSE_RESTART,
            _ = sleep_until_opt(expires) => break CLOSE_POLICY,
            _ = ping.tick() => {
                if link.silent_for() > cfg.heartbeat_timeout() {
                    break CLOSE_HEARTBEAT;
                }
                sink.send(Message::Ping(Default::default())).await
            }
            first = outrx.recv() => match first {
                Some(first) => write_batch(&mut sink, &mut outrx, first).await,
                None => Ok(()),
            },
        };
        if let Err(e) = step {
            tracing::debug!(error = %e, "websocket write failed; dropping the connection");
            let _ = closing.send(Some(now()));
            return;
        }
    };
    // Frames already queued go out before the Close (the queue is closed to new ones first).
    outrx.close();
    while let Some(o) = outrx.try_recv() {
        if sink.feed(to_message(&o)).await.is_err() {
            break;
        }
    }
    if code == CLOSE_SLOW {
        state.hub.metrics().slow_consumer_closes.inc();
    }
    let reason = match code {
        CLOSE_SLOW => "slow consumer",
        CLOSE_HEARTBEAT => "heartbeat timeout",
        CLOSE_RESTART => "server restart",
        CLOSE_TOO_BIG => "message too big",
        CLOSE_POLICY => "credentials expired",
        CLOSE_INVALID_DATA => "invalid UTF-8",
        _ => "protocol error",
    };
    let _ = sink
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        })))
        .await;
    let _ = closing.send(Some(now() + cfg.close_timeout()));
}

async fn write_batch(
    sink: &mut Sink,
    outrx: &mut OutboxReceiver,
    first: Outbound,
) -> Result<(), axum::Error> {
    sink.feed(to_message(&first)).await?;
    for _ in 1..BATCH {
        if outrx.overflowed() {
            break;
        }
        let Some(o) = outrx.try_recv() else { break };
        sink.feed(to_message(&o)).await?;
    }
    sink.flush().await
}
