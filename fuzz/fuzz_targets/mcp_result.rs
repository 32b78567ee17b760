//! An MCP server's tools/call result through the hub's rendering for the model, and the same
//! bytes as a model's arguments text for a server tool.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sessionhub::fuzzing::mcp_result(data);
});
