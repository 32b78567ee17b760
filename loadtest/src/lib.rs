//! Load generator, ceiling server and benchmark suite for sessionhub (issue 7).
//!
//! - `fanout`: sessions x tabs, stamped runs, latency per delivery, loss, CPU per window.
//! - `idle`: connection bursts and held idle tabs (RSS per connection, handshake cost).
//! - `memory`: RSS per loaded idle session, after eviction, and over a soak (issue 15).
//! - `ceiling`: the raw tokio-tungstenite fan-out the hub is compared with.
//! - `tool_probe`: a client tool's round trip timed, to run next to a fan-out load.
//! - `chaos`: kill -9 and restart under WebSocket and SSE tabs, checking what survives.
//! - `suite` and `report`: scenarios S1-S8 against both servers, and the markdown report.

pub mod ceiling;
pub mod chaos;
pub mod chatkit;
pub mod fanout;
pub mod http;
pub mod idle;
pub mod memory;
pub mod procfs;
pub mod quiet;
pub mod report;
pub mod server;
pub mod stats;
pub mod suite;
pub mod tab;
pub mod tab_sse;
pub mod tab_ws;
pub mod tool_probe;
pub mod wire;
