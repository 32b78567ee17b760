//! AG-UI: the `/v1/agui` endpoint against the official `@ag-ui/client` packages.
//!
//! One test binary per area (see `[[test]]` in Cargo.toml): each file below is a module,
//! so the helpers are compiled once and the test build stays small.

#[path = "agui/support.rs"]
mod agui;
#[path = "mcp/harness.rs"]
mod harness;
mod support;

mod agui_conformance;
mod agui_context;
mod agui_endings;
mod agui_input;
mod agui_reasoning;
mod agui_state;
mod agui_stream;
mod agui_tool_input;
mod agui_tools;
