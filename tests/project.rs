//! Whole-project checks: architecture, configuration, README, OpenAPI, TypeScript declarations, fuzz regressions, the test layout.
//!
//! One test binary per area (see `[[test]]` in Cargo.toml): each file below is a module,
//! so the helpers are compiled once and the test build stays small.

#[path = "browser/runner.rs"]
mod runner;
mod support;

mod architecture;
mod config_bools;
mod fuzz_regressions;
mod heap_metrics;
mod openapi;
mod readme_config;
mod standalone;
mod test_layout;
mod typescript_decls;
