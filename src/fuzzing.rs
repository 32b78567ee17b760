//! Entry points for the fuzz targets in `fuzz/` (cargo fuzz): every decoder of outside input,
//! fed arbitrary bytes. Not an API (hidden from the docs); each call must return, never panic,
//! whatever the bytes. Each returns a description of what the hub would answer or take (the
//! regression tests check that the calls reach the real decoders). A room of its own
//! (tests/architecture.rs): it may reach into any room, and no room may depend on it.

/// A WebSocket client frame (the text of one message), checked as `/v1/ws` checks it.
pub fn ws_client_frame(data: &[u8]) -> String {
    // Non-UTF-8 text never reaches the frame parser: tungstenite closes with 1007 first.
    match std::str::from_utf8(data) {
        Ok(text) => crate::transport::fuzz::ws_client_frame(text),
        Err(_) => String::new(),
    }
}

/// A `POST /chatkit` request body.
pub fn chatkit_request(data: &[u8]) -> String {
    crate::transport::fuzz::chatkit_request(data)
}

/// A `POST /agui` request body (AG-UI `RunAgentInput`).
pub fn agui_input(data: &[u8]) -> String {
    crate::transport::fuzz::agui_input(data)
}

/// A streamed chat-completions response body from the model server (text and tool calls).
pub fn upstream_chunks(data: &[u8]) -> String {
    crate::agent::openai::replay_chunks(data)
}

/// An MCP server's `tools/call` result, and the model's arguments text for a server tool.
pub fn mcp_result(data: &[u8]) -> String {
    crate::tools::mcp::replay_result(data)
}
