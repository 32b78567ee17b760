//! Shared helpers for integration tests, one file per concern: the real server on 127.0.0.1:0
//! (`hub.rs`), a WebSocket client (`ws.rs`) and a raw one (`raw_ws.rs`), HTTP helpers (`http.rs`),
//! the real binary for crash and restart tests (`binary.rs`), a counting agent (`agent.rs`), and
//! the client-side event model (`model.rs`). Every wait is bounded; nothing sleeps to wait for an
//! event.
#![allow(dead_code, unreachable_pub)]

mod agent;
mod binary;
mod http;
mod hub;
mod model;
mod raw_ws;
mod ws;

// The names test files import as `support::X`; each test binary uses a different part of them.
#[allow(unused_imports)]
pub use self::{
    agent::TrackingAgent,
    binary::BinHub,
    http::{create_session, http, metric_value},
    hub::TestHub,
    model::{apply_frame, ends_run, is_event},
    raw_ws::{raw_until_close, raw_ws},
    ws::{Frame, WsClient, FRAME_TIMEOUT},
};
