//! The SSE fallback and the REST listings.
//!
//! One test binary per area (see `[[test]]` in Cargo.toml): each file below is a module,
//! so the helpers are compiled once and the test build stays small.

mod sse_support;
mod support;

mod rest_paging;
mod sse_input;
mod sse_slow;
mod sse_stream;
