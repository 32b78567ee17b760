//! The ChatKit-compatible endpoint, checked against the official `openai-chatkit` package.
//!
//! One test binary per area (see `[[test]]` in Cargo.toml): each file below is a module,
//! so the helpers are compiled once and the test build stays small.

#[path = "chatkit/ck.rs"]
mod ck;
#[path = "mcp/harness.rs"]
mod harness;
mod support;
mod upstream;

mod chatkit_context;
mod chatkit_errors;
mod chatkit_hub;
mod chatkit_oracle;
mod chatkit_reasoning;
mod chatkit_tools;
