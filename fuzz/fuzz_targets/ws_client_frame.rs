//! A WebSocket client frame (the text of one message), checked as /v1/ws checks it.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sessionhub::fuzzing::ws_client_frame(data);
});
