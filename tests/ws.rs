//! The WebSocket protocol: fan-out, resume, cancel, bad input, tools, state and memory bounds.
//!
//! One test binary per area (see `[[test]]` in Cargo.toml): each file below is a module,
//! so the helpers are compiled once and the test build stays small.

mod auth_support;
mod sse_support;
mod support;

mod state_native;
mod ws_bad_input;
mod ws_busy;
mod ws_cancel_resume;
mod ws_echo;
mod ws_fanout;
mod ws_lifecycle;
mod ws_memory;
mod ws_props;
mod ws_reasoning;
mod ws_tools;
