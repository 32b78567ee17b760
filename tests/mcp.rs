//! Server tools over MCP, against a real server built on the official Python SDK.
//!
//! One test binary per area (see `[[test]]` in Cargo.toml): each file below is a module,
//! so the helpers are compiled once and the test build stays small.

#[path = "mcp/harness.rs"]
mod harness;
mod support;

mod mcp_session;
mod mcp_tools;
// mcp_token.rs is a binary of its own: it captures logs with a thread-scoped subscriber.
