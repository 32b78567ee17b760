//! The bundled page in real Chromium (playwright-core).
//!
//! One test binary per area (see `[[test]]` in Cargo.toml): each file below is a module,
//! so the helpers are compiled once and the test build stays small.

mod auth_support;
#[path = "mcp/harness.rs"]
mod harness;
#[path = "browser/runner.rs"]
mod runner;
mod support;
mod upstream;

mod browser_auth;
mod browser_models;
mod browser_page;
mod browser_restart;
mod browser_thinking;
mod browser_tools;
