//! `GET /v1/ws`: the native WebSocket transport, and the connection machinery every WebSocket
//! route shares (the conformance echo too): upgrade limits, one reader and one writer per
//! connection, the close state machine. The reader hands each client message to the route's
//! [`Frames`] (for `/v1/ws`, `ws_frames` turns them into session calls); the writer drains the
//! connection's bounded outbox, batching frames (feed several, flush once).
//!
//! Closing: a Close from the client is answered by tungstenite and the reader keeps polling
//! until the stream ends, so the reply is flushed. A close the hub starts (1009 oversize, 4001
//! missed heartbeats, 4008 slow consumer, 1012 shutdown) is sent by the writer after the frames
//! already queued; the reader then waits for the peer's Close at most `close_timeout`, and a
//! peer that cannot even receive the Close is dropped `close_timeout` after the overflow. A
//! read error closes with 1009 (over the size limit), 1007 (a text message or close reason that
//! is not UTF-8) or 1002 (any other protocol violation). After a read error tungstenite reads
//! no more; a message over the limit usually leaves the rest of it still coming, and closing a
//! socket with unread input sends a reset that can destroy our Close in flight (Autobahn 9.5.x
//! found it). So after a 1009 the connection lingers [`LINGER`] before the TCP close; after the
//! other errors the peer's frame was whole and the close is immediate, as the peer prefers.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use bytes::Bytes;
use futures::stream::SplitStream;
use futures::{FutureExt, StreamExt};
use tokio::sync::{mpsc, watch};

use super::ws_frames::FrameHandler;
use super::ws_writer::writer;
use super::AppState;
use crate::auth::limits::ConnPermit;
use crate::auth::Principal;
use crate::config::Config;
use crate::domain::sleep_until_opt;
use crate::session::{Outbox, OutboxReceiver};

pub(crate) const CLOSE_TOO_BIG: u16 = 1009;
/// How long a connection closed for an oversized message stays open so the peer can read our
/// Close (capped by `close_timeout`).
const LINGER: Duration = Duration::from_secs(1);
pub(crate) const CLOSE_PROTOCOL: u16 = 1002;
/// A text message (or a close reason) that is not valid UTF-8 (RFC 6455 section 8.1).
pub(crate) const CLOSE_INVALID_DATA: u16 = 1007;
pub(crate) const CLOSE_HEARTBEAT: u16 = 4001;
pub(crate) const CLOSE_SLOW: u16 = 4008;
pub(crate) const CLOSE_RESTART: u16 = 1012;
/// The credential (token, or the token behind a ticket) expired during the connection.
pub(crate) const CLOSE_POLICY: u16 = 1008;

/// Reads are small: tungstenite allocates this much per connection up front (its default,
/// 128 KiB, was the largest per-tab cost), and client frames are small: a subscribe, cancel or
/// ping fits one read, a 64 KiB message takes 64. 2 KiB cost an idle tab 1 KB more RSS.
const READ_BUFFER: usize = 1024;
/// Writes accumulate up to this before going to the socket even without a flush.
const WRITE_BUFFER: usize = 16 * 1024;

/// What tells one WebSocket route from another: what the reader does with a complete message
/// from the client. Everything else (limits, heartbeats, closing, the outbox) is shared.
pub(crate) trait Frames: Send + 'static {
    /// A text message; tungstenite has checked that it is UTF-8.
    fn on_text(&mut self, text: Utf8Bytes) -> impl Future<Output = ()> + Send;
    fn on_binary(&mut self, data: Bytes) -> impl Future<Output = ()> + Send;
}

/// What a `/v1/ws` connection's frame handler (`ws_frames`) knows of its connection.
pub(crate) struct Conn {
    pub(crate) principal: Principal,
    /// Its receiver is this connection's writer; the reader's direct replies and every
    /// subscribed session's events go through it, in one order.
    pub(crate) outbox: Outbox,
}

impl Frames for FrameHandler {
    async fn on_text(&mut self, text: Utf8Bytes) {
        FrameHandler::on_text(self, text.as_str()).await
    }
    async fn on_binary(&mut self, _data: Bytes) {
        FrameHandler::on_binary(self).await
    }
}

/// What the machinery's reader and writer share, whatever the route.
pub(crate) struct Link {
    /// The writer's queue; held here for its overflow signal.
    pub(super) outbox: Outbox,
    /// When the connection's credential expires (close 1008); `None`: never.
    pub(super) expires: Option<tokio::time::Instant>,
    started: Instant,
    /// Milliseconds since `started` at the last frame from the client.
    last_seen_ms: AtomicU64,
}

impl Link {
    pub(crate) fn new(outbox: Outbox, time_left: Option<Duration>) -> Arc<Link> {
        Arc::new(Link {
            outbox,
            expires: time_left.map(|left| tokio::time::Instant::now() + left),
            started: Instant::now(),
            last_seen_ms: AtomicU64::new(0),
        })
    }
    fn touch(&self) {
        self.last_seen_ms
            .store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
    pub(super) fn silent_for(&self) -> Duration {
        let seen = Duration::from_millis(self.last_seen_ms.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(seen)
    }
}

/// The wire limits every WebSocket route upgrades with (STYLE.md 14: set each explicitly).
pub(crate) fn with_limits(ws: WebSocketUpgrade, cfg: &Config) -> WebSocketUpgrade {
    ws.read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_message_size(cfg.max_message_bytes)
        .max_frame_size(cfg.max_message_bytes)
}

#[utoipa::path(
    get, path = "/v1/ws", tag = "websocket", operation_id = "websocket",
    description = "Upgrades to the native WebSocket protocol (PROTOCOL.md): `subscribe` with resume, `send`, `cancel`, `unsubscribe`, `ping`, and the sessions' events.",
    params(("ticket" = Option<String>, Query, description = "A ticket from `POST /v1/ws-ticket` (browsers cannot send a bearer token on a WebSocket)")),
    responses(
        (status = 101, description = "Switching to the WebSocket protocol"),
        (status = 400, description = "Not a valid WebSocket upgrade request", body = String, content_type = "text/plain"),
        (status = 426, description = "The connection cannot be upgraded (for example HTTP/2 without extended CONNECT)", body = String, content_type = "text/plain"),
        crate::transport::openapi::Refused,
    ),
)]
pub(crate) async fn upgrade(
    State(state): State<AppState>,
    principal: Principal,
    ws: WebSocketUpgrade,
) -> Response {
    let cfg = state.hub.config().clone();
    let tracker = state.signals.tracker.clone();
    // Connections per user are counted before the upgrade: over the limit is a plain 429.
    let permit = match principal.open_connection() {
        Ok(p) => p,
        Err(e) => return axum::response::IntoResponse::into_response(e),
    };
    with_limits(ws, &cfg).on_upgrade(move |socket| {
        tracker.track_future(connection(socket, state, principal, permit))
    })
}

/// Sets the connection up and returns what runs it. A plain function, not an `async fn`: an
/// async fn keeps its arguments (here the whole `WebSocket`, buffers and all) in its future for
/// as long as the connection lives, even once they are moved out; every idle tab would carry
/// that dead copy (the future was 5.3 KB).
fn connection(
    socket: WebSocket,
    state: AppState,
    principal: Principal,
    permit: ConnPermit,
) -> impl Future<Output = ()> + Send + 'static {
    let cfg = state.hub.config();
    let (outbox, outrx) = Outbox::channel(cfg.outbound_frames, cfg.outbound_bytes);
    let link = Link::new(outbox.clone(), principal.time_left());
    let conn = Arc::new(Conn { principal, outbox });
    let frames = FrameHandler::new(conn, state.clone());
    // Not `async move { run.await; .. }`: that would hold `run` twice (the captured value and
    // the one being awaited).
    drive(socket, &state, "ws", link, outrx, frames).map(move |()| {
        // The reader's subscriptions ended with it: each session forgets this connection.
        drop(permit);
    })
}

/// Starts an upgraded connection's reader task and returns its writer, which runs until the
/// connection is over: the reader hands client messages to `frames`, the writer drains `outrx`
/// and runs the heartbeat and the closes the hub starts. The returned future ends once both
/// are done, or once a slow consumer was dropped. Set-up happens here, before the future, so
/// the future holds only what lives as long as the connection (see [`connection`]).
pub(crate) fn drive<F: Frames>(
    socket: WebSocket,
    state: &AppState,
    transport: &str,
    link: Arc<Link>,
    outrx: OutboxReceiver,
    frames: F,
) -> impl Future<Output = ()> + Send + 'static {
    let close_timeout = state.hub.config().close_timeout();
    let gauge = state.hub.metrics().connection_gauge(transport);
    gauge.inc();
    let (sink, stream) = socket.split();
    // Reader -> writer: "close with this code". Writer -> reader: "close sent; wait until".
    let (close_tx, close_rx) = mpsc::channel::<u16>(1);
    let (closing_tx, closing_rx) = watch::channel::<Option<tokio::time::Instant>>(None);
    // Boxed for the reason `connection` maps: pinning it inside the future below would hold
    // it twice.
    let mut writer = Box::pin(writer(
        sink,
        outrx,
        link.clone(),
        state.clone(),
        close_rx,
        closing_tx,
    ));
    // The reader is its own task: joined with the writer in one task, every outbound batch
    // also polled the reader, and each such poll re-zeroes tungstenite's read buffer (found by
    // profiling the S4 load scenario).
    let reader = tokio::spawn(reader(
        stream,
        frames,
        link.clone(),
        close_timeout,
        close_tx,
        closing_rx,
    ));
    async move {
        let reader_abort = reader.abort_handle();
        // A peer that stops reading cannot even take our Close: drop it `close_timeout` after
        // its queue overflowed.
        let hard_stop = async {
            link.outbox.wait_overflow().await;
            tokio::time::sleep(close_timeout).await;
        };
        tokio::select! {
            _ = async {
                (&mut writer).await;
                let _ = reader.await;
            } => {}
            _ = hard_stop => {
                reader_abort.abort();
                tracing::info!(conn_id = link.outbox.conn_id(), "slow consumer dropped without close handshake");
            }
        }
        gauge.dec();
    }
}

async fn reader<F: Frames>(
    mut stream: SplitStream<WebSocket>,
    mut frames: F,
    link: Arc<Link>,
    close_timeout: Duration,
    close_tx: mpsc::Sender<u16>,
    mut closing: watch::Receiver<Option<tokio::time::Instant>>,
) {
    let mut deadline: Option<tokio::time::Instant> = None;
    // Set by a read error: the stream is over, but the socket stays open until then.
    let mut linger: Option<tokio::time::Instant> = None;
    let mut writer_done = false;
    loop {
        let next = tokio::select! {
            m = stream.next() => m,
            changed = closing.changed(), if !writer_done => {
                // The writer always says how long to keep reading before it ends: the close
                // handshake's timeout, or now after a write error. The earliest wins.
                writer_done = changed.is_err();
                if let Some(at) = *closing.borrow_and_update() {
                    deadline = Some(deadline.map_or(at, |d| d.min(at)));
                }
                continue;
            }
            _ = sleep_until_opt(deadline) => return,
        };
        let Some(msg) = next else {
            if let Some(at) = linger {
                tokio::time::sleep_until(deadline.map_or(at, |d| d.min(at))).await;
            }
            return;
        };
        link.touch();
        match msg {
            // Boxed: what a message sets off (a send, a subscribe) is the largest state of the
            // reader, and an idle reader would hold room for it all the time.
            Ok(Message::Text(text)) => {
                if deadline.is_none() {
                    Box::pin(frames.on_text(text)).await;
                }
            }
            Ok(Message::Binary(data)) => {
                if deadline.is_none() {
                    Box::pin(frames.on_binary(data)).await;
                }
            }
            Ok(Message::Ping(_)) | Ok(Message::Pong(_)) => {}
            Ok(Message::Close(_)) => {
                // tungstenite queued the Close reply; keep polling so it is flushed.
                deadline.get_or_insert_with(|| tokio::time::Instant::now() + close_timeout);
                let _ = close_tx.try_send(0);
            }
            Err(e) => {
                let code = read_error_code(&e);
                tracing::debug!(error = %e, code, "websocket read error");
                let _ = close_tx.try_send(code);
                deadline.get_or_insert_with(|| tokio::time::Instant::now() + close_timeout);
                if code == CLOSE_TOO_BIG {
                    linger = Some(tokio::time::Instant::now() + LINGER.min(close_timeout));
                }
            }
        }
    }
}

/// The close code for a read error: 1009 over the size limit, 1007 for text (or a close
/// reason) that is not UTF-8, 1002 for any other violation.
fn read_error_code(e: &axum::Error) -> u16 {
    use std::error::Error;
    use tokio_tungstenite::tungstenite::Error as WsError;
    let mut src: Option<&(dyn Error + 'static)> = e.source();
    while let Some(s) = src {
        if let Some(t) = s.downcast_ref::<WsError>() {
            return match t {
                WsError::Capacity(_) => CLOSE_TOO_BIG,
                WsError::Utf8(_) => CLOSE_INVALID_DATA,
                _ => CLOSE_PROTOCOL,
            };
        }
        src = s.source();
    }
    CLOSE_PROTOCOL
}
