//! The agent against a scripted OpenAI-compatible upstream: streaming, faults, tools, reasoning, context and model choice.
//!
//! One test binary per area (see `[[test]]` in Cargo.toml): each file below is a module,
//! so the helpers are compiled once and the test build stays small.

#[path = "agui/support.rs"]
mod agui;
mod auth_support;
#[path = "chatkit/ck.rs"]
mod ck;
#[path = "mcp/harness.rs"]
mod harness;
mod support;
mod upstream;

mod context_upstream;
mod models_upstream;
mod openai_faults;
mod openai_reasoning;
mod openai_stream;
mod openai_tools;
mod state_model;
mod tools_recovery;
