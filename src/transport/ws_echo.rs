//! `GET /v1/ws/echo`: a WebSocket echo for conformance tests only (the Autobahn|Testsuite in
//! tests/autobahn.rs), routed only with `--conformance-echo`. Anonymous and without per-user
//! limits, but otherwise the very machinery of `/v1/ws` (`ws::drive`): the same upgrade limits,
//! reader, close state machine, outbox and writer, so the suite grades the code that serves
//! real clients. Only what happens to a client's message differs: a text message comes back as
//! text and a binary one as binary, fragmented or empty alike.

use std::future::Future;

use axum::extract::ws::{Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use bytes::Bytes;

use super::ws::{drive, with_limits, Frames, Link};
use super::AppState;
use crate::config::Config;
use crate::session::{Outbound, Outbox};

/// The echo route when the configuration asks for it, else nothing.
pub(crate) fn routes(cfg: &Config) -> Router<AppState> {
    if !cfg.conformance_echo {
        return Router::new();
    }
    tracing::warn!("serving the conformance echo at /v1/ws/echo: for tests only");
    Router::new().route("/v1/ws/echo", get(upgrade))
}

async fn upgrade(State(state): State<AppState>, ws: WebSocketUpgrade) -> Response {
    let cfg = state.hub.config().clone();
    let tracker = state.signals.tracker.clone();
    with_limits(ws, &cfg).on_upgrade(move |socket| tracker.track_future(connection(socket, state)))
}

/// Set-up, then the running connection (a plain function for the reason `ws::connection` is).
fn connection(socket: WebSocket, state: AppState) -> impl Future<Output = ()> + Send + 'static {
    let cfg = state.hub.config();
    let (outbox, outrx) = Outbox::channel(cfg.outbound_frames, cfg.outbound_bytes);
    // Anonymous: no credential, so nothing expires.
    let link = Link::new(outbox.clone(), None);
    drive(socket, &state, "ws_echo", link, outrx, Echo { outbox })
}

/// Queues every message back on the connection's own outbox. `push` waits for room, so a
/// client that sends faster than it reads is slowed down by TCP, as a `/v1/ws` client is by
/// its replies.
struct Echo {
    outbox: Outbox,
}

impl Frames for Echo {
    async fn on_text(&mut self, text: Utf8Bytes) {
        let _ = self.outbox.push(Outbound::Reply(Bytes::from(text))).await;
    }
    async fn on_binary(&mut self, data: Bytes) {
        let _ = self.outbox.push(Outbound::Binary(data)).await;
    }
}
