//! Every input the fuzz targets were seeded with (`fuzz/corpus/<target>/`) and every input a
//! fuzzer ever crashed on (`fuzz/regressions/<target>/`), replayed through the same entry
//! points (`sessionhub::fuzzing`) in an ordinary test build: a decoder that panics on one of
//! them fails here, without cargo-fuzz. And a few answers per entry point, so they are known
//! to reach the real decoders (not reject everything early).

use std::path::Path;

use sessionhub::fuzzing::{
    agui_input, chatkit_request, mcp_result, upstream_chunks, ws_client_frame,
};

type Target = fn(&[u8]) -> String;

const TARGETS: [(&str, Target); 5] = [
    ("ws_client_frame", ws_client_frame),
    ("chatkit_request", chatkit_request),
    ("agui_input", agui_input),
    ("upstream_chunks", upstream_chunks),
    ("mcp_result", mcp_result),
];

#[test]
fn seeds_and_past_crashes_decode_without_panicking() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    for (name, target) in TARGETS {
        let mut n = 0;
        for dir in ["corpus", "regressions"] {
            let Ok(entries) = std::fs::read_dir(root.join(dir).join(name)) else {
                continue;
            };
            for entry in entries {
                let path = entry.expect("dir entry").path();
                let data = std::fs::read(&path).expect("read input");
                let out = std::panic::catch_unwind(|| target(&data));
                assert!(out.is_ok(), "{name} panicked on {}", path.display());
                n += 1;
            }
        }
        assert!(n >= 5, "only {n} inputs for {name}");
    }
}

#[test]
fn client_frames_reach_the_frame_checks() {
    let frame = br#"{"type":"send","session":"s","client_msg_id":"c","text":"hi","ref":1}"#;
    let sent = ws_client_frame(frame);
    assert!(sent.starts_with(r#"Send { session: "s", req: "#), "{sent}");
    assert_eq!(
        ws_client_frame(br#"{"type":"ping","ref":7}"#),
        r#"{"ref":7,"type":"pong"}"#
    );
    let bad = ws_client_frame(br#"{"type":"send","session":"s","text":"hi","ref":"r"}"#);
    assert_eq!(
        bad,
        r#"{"code":"bad_request","message":"missing `client_msg_id`","ref":"r","session":"s","type":"error"}"#
    );
    let result = br#"{"type":"tool_result","session":"s","call_id":"c1","output":"42"}"#;
    let result = ws_client_frame(result);
    assert!(
        result.starts_with("ResolveTool {") && result.contains("42"),
        "{result}"
    );
    let args = br#"{"type":"tool_approval","session":"s","call_id":"c","approved":true,"arguments":"{no"}"#;
    let args = ws_client_frame(args);
    assert!(args.contains("`arguments` must be the JSON text"), "{args}");
    let tools = br#"{"type":"send","session":"s","client_msg_id":"c","text":"x","tools":{}}"#;
    assert!(ws_client_frame(tools).contains("`tools` must be an array"));
    assert!(ws_client_frame(br#"{"type":"nope"}"#).contains(r#""code":"unknown_type""#));
}

#[test]
fn request_bodies_reach_the_chatkit_and_agui_decoders() {
    let body = br#"{"type":"threads.create","params":{"input":{"content":[{"type":"input_text","text":"hello"}],"attachments":[],"inference_options":{}}}}"#;
    assert_eq!(chatkit_request(body), "hello []");
    assert!(chatkit_request(b"{").starts_with("bad_request: "));
    let output =
        br#"{"type":"threads.add_client_tool_output","params":{"thread_id":"t","result":"Paris"}}"#;
    let output = chatkit_request(output);
    assert!(output.starts_with("ClientToolOutput {"), "{output}");
    let action = br#"{"type":"threads.custom_action","params":{"thread_id":"t","action":{"type":"tool.approve","payload":{"call_id":"c"}}}}"#;
    let action = chatkit_request(action);
    assert!(action.contains(r#"kind: "tool.approve""#), "{action}");

    let agui =
        br#"{"threadId":"t","runId":"r","messages":[{"id":"m1","role":"user","content":"hi"}]}"#;
    let run = agui_input(agui);
    assert!(run.contains(r#"user_messages: [("m1", "hi")]"#), "{run}");
    let tool = br#"{"threadId":"t","runId":"r","messages":[{"id":"t1","role":"tool","toolCallId":"c1","content":"42"}]}"#;
    let tool = agui_input(tool);
    assert!(tool.contains(r#"call_id: "c1""#), "{tool}");
    let resume = br#"{"threadId":"t","runId":"r","messages":[],"resume":[{"interruptId":"c1","status":"resolved","payload":{"approved":true}}]}"#;
    let resume = agui_input(resume);
    assert!(resume.contains(r#"interrupt_id: "c1""#), "{resume}");
}

fn chunk(delta: &str, finish: &str) -> String {
    format!(
        "data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\
         \"choices\":[{{\"index\":0,\"delta\":{delta},\"finish_reason\":{finish}}}]}}\n\n"
    )
}

#[test]
fn response_bodies_reach_the_chunk_handling() {
    let sse = chunk(r#"{"content":"Hi"}"#, r#""stop""#) + "data: [DONE]\n\n";
    assert_eq!(
        upstream_chunks(sse.as_bytes()),
        "Ok(Delta(\"Hi\"))\nNone Ok(Stop)"
    );
    // No finish_reason before the end: an error, not a reply.
    let cut = upstream_chunks(sse.replace(r#""stop""#, "null").as_bytes());
    assert!(
        cut.contains(r#"Err(AgentError { code: "upstream_protocol""#),
        "{cut}"
    );
    let junk = upstream_chunks(b"data: {\"choices\":{}}\n\n");
    assert!(junk.contains("malformed chunk"), "{junk}");
    // Reasoning text, read from the chunk's JSON by either name, before and beside the reply.
    let thinking = chunk(r#"{"reasoning_content":"Let me "}"#, "null")
        + &chunk(r#"{"reasoning":"see.","content":""}"#, "null")
        + &chunk(
            r#"{"reasoning":{"not":"text"},"content":"Hi"}"#,
            r#""stop""#,
        );
    assert_eq!(
        upstream_chunks(thinking.as_bytes()),
        "Ok(Reasoning(\"Let me \"))\nOk(Reasoning(\"see.\"))\nOk(Delta(\"Hi\"))\nNone Ok(Stop)"
    );
    // Tool calls, put together by index.
    let calls = chunk(
        r#"{"tool_calls":[{"index":0,"id":"a","function":{"name":"f","arguments":"{\"x\""}}]}"#,
        "null",
    ) + &chunk(
        r#"{"tool_calls":[{"index":0,"function":{"arguments":":1}"}}]}"#,
        "null",
    ) + &chunk("{}", r#""tool_calls""#);
    assert_eq!(
        upstream_chunks(calls.as_bytes()),
        concat!(
            "Ok(ToolCallStarted { call_id: \"a\", name: \"f\" })\n",
            "Ok(ToolCallDelta { call_id: \"a\", arguments: \"{\\\"x\\\"\" })\n",
            "Ok(ToolCallDelta { call_id: \"a\", arguments: \":1}\" })\n",
            "None Ok(ToolCalls)"
        )
    );
    // A byte order mark first (it panicked eventsource-stream; the hub strips it first).
    let bom = [b"\xEF\xBB\xBF".as_slice(), sse.as_bytes()].concat();
    assert_eq!(upstream_chunks(&bom), "Ok(Delta(\"Hi\"))\nNone Ok(Stop)");
    let unnamed = chunk(r#"{"tool_calls":[{"index":0,"id":"a"}]}"#, r#""stop""#);
    let unnamed = upstream_chunks(unnamed.as_bytes());
    assert!(unnamed.contains("without a function name"), "{unnamed}");
}

#[test]
fn tool_results_reach_the_mcp_rendering() {
    let r = br#"{"content":[{"type":"text","text":"boom"}],"isError":true}"#;
    assert_eq!(
        mcp_result(r),
        "Err(Failed(\"boom\"))\nOk(Some({\"content\": Array [Object {\"text\": String(\"boom\"), \"type\": String(\"text\")}], \"isError\": Bool(true)}))"
    );
    let args = mcp_result(b"[1]");
    assert!(
        args.ends_with("the arguments must be a JSON object, not an array\"))"),
        "{args}"
    );
}
