//! Authentication and authorization: tokens, tickets, ownership, limits and logs.
//!
//! One test binary per area (see `[[test]]` in Cargo.toml): each file below is a module,
//! so the helpers are compiled once and the test build stays small.

mod auth_support;
mod support;
mod upstream;

mod auth_flood;
mod auth_isolation;
mod auth_limits;
mod auth_logs;
mod auth_negative;
mod auth_ownership;
mod auth_tickets;
