//! A streamed chat-completions body from the model server (text and tool-call fragments)
//! through the SSE parser and the hub's chunk handling.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sessionhub::fuzzing::upstream_chunks(data);
});
