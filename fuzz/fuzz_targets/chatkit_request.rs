//! A POST /chatkit request body through the ChatKit request decoder.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sessionhub::fuzzing::chatkit_request(data);
});
