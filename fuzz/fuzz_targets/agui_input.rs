//! A POST /agui body through the AG-UI RunAgentInput decoder.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sessionhub::fuzzing::agui_input(data);
});
