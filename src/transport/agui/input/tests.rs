//! `RunAgentInput` parsing: both client shapes accepted, bad shapes refused with a clear message.

use super::*;
use serde_json::json;

fn err(v: Value) -> String {
    match parse(v.to_string().as_bytes()) {
        Err(HubError::BadRequest(m)) => m,
        other => panic!("expected bad_request for {v}, got {other:?}"),
    }
}

#[test]
fn accepts_both_client_shapes_and_collects_user_text() {
    let input = parse(
        json!({
            "threadId": "t-1", "runId": "r-1", "protocolVersion": "1.0", "state": null,
            "messages": [
                {"id": "s", "role": "system", "content": "be brief"},
                {"id": "u1", "role": "user", "content": "hello"},
                {"id": "a1", "role": "assistant", "content": "hi", "toolCalls": []},
                {"id": "u2", "role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
                {"id": "x", "role": "activity", "activityType": "plan", "content": {}},
                {"id": "t", "role": "tool", "toolCallId": "c1", "content": "42"}
            ],
            "extraField": true
        })
        .to_string()
        .as_bytes(),
    )
    .expect("valid");
    assert_eq!(input.thread_id, "t-1");
    assert!(input.v1);
    assert_eq!(
        input.user_messages,
        vec![("u1".into(), "hello".into()), ("u2".into(), "a\nb".into())]
    );
    let old = parse(br#"{"threadId":"t","runId":"r","messages":[],"tools":[],"context":[]}"#)
        .expect("0.0.59 shape");
    assert!(!old.v1);
}

#[test]
fn refuses_bad_shapes_with_a_clear_message() {
    assert!(
        matches!(parse(b"{not json"), Err(HubError::BadRequest(m)) if m.starts_with("malformed JSON"))
    );
    assert!(err(json!([])).contains("JSON object"));
    assert_eq!(
        err(json!({"runId": "r", "messages": []})),
        "missing `threadId`"
    );
    assert_eq!(
        err(json!({"threadId": "t", "messages": []})),
        "missing `runId`"
    );
    assert_eq!(
        err(json!({"threadId": 7, "runId": "r", "messages": []})),
        "`threadId` must be a string"
    );
    assert!(
        err(json!({"threadId": "a/b", "runId": "r", "messages": []})).contains("letters, digits")
    );
    assert_eq!(
        err(json!({"threadId": "t", "runId": "r"})),
        "missing `messages`"
    );
    assert_eq!(
        err(json!({"threadId": "t", "runId": "r", "messages": {}})),
        "`messages` must be an array"
    );
    assert_eq!(
        err(json!({"threadId": "t", "runId": "r", "messages": [1]})),
        "`messages[0]` must be an object"
    );
    assert_eq!(
        err(json!({"threadId": "t", "runId": "r", "messages": [{"role": "user", "content": "x"}]})),
        "missing `messages[0].id`"
    );
    assert_eq!(
        err(json!({"threadId": "t", "runId": "r", "messages": [{"id": "m", "content": "x"}]})),
        "missing `messages[0].role`"
    );
    assert_eq!(
        err(
            json!({"threadId": "t", "runId": "r", "messages": [{"id": "m", "role": "user", "content": 5}]})
        ),
        "`messages[0].content` must be a string or an array of content parts"
    );
    assert!(err(json!({"threadId": "t", "runId": "r", "messages": [{"id": "m", "role": "user", "content": [{"type": "image", "source": {}}]}]}))
        .contains("only text content"));
    assert_eq!(
        err(
            json!({"threadId": "t", "runId": "r", "messages": [{"id": "m", "role": "tool", "content": "x"}]})
        ),
        "missing `messages[0].toolCallId`"
    );
    assert_eq!(
        err(json!({"threadId": "t", "runId": "r", "messages": [], "tools": {}})),
        "`tools` must be an array"
    );
}

#[test]
fn tool_messages_and_resume_entries_are_read_and_checked() {
    let input = parse(
        json!({
            "threadId": "t", "runId": "r",
            "messages": [
                {"id": "u", "role": "user", "content": "hi"},
                {"id": "t1", "role": "tool", "toolCallId": "c1", "content": "{\"ok\":1}"},
                {"id": "t2", "role": "tool", "toolCallId": "c2", "content": "", "error": "no GPS"}
            ],
            "resume": [
                {"interruptId": "c3", "status": "resolved", "payload": {"approved": true, "arguments": {"to": "ops"}}},
                {"interruptId": "c4", "status": "cancelled"}
            ]
        })
        .to_string()
        .as_bytes(),
    )
    .expect("valid");
    assert!(input.answers_calls());
    let results: Vec<_> = input
        .tool_results
        .iter()
        .map(|t| (t.index, t.call_id.as_str(), t.output.as_str(), t.is_error))
        .collect();
    assert_eq!(
        results,
        [(1, "c1", "{\"ok\":1}", false), (2, "c2", "no GPS", true)]
    );
    let resume: Vec<_> = input
        .resume
        .iter()
        .map(|r| (r.interrupt_id.as_str(), r.approved, r.arguments.as_deref()))
        .collect();
    assert_eq!(
        resume,
        [("c3", true, Some("{\"to\":\"ops\"}")), ("c4", false, None)]
    );

    let base =
        |resume: Value| json!({"threadId": "t", "runId": "r", "messages": [], "resume": resume});
    assert_eq!(err(base(json!({}))), "`resume` must be an array");
    assert!(err(base(json!([{"interruptId": "c", "status": "done"}])))
        .contains("\"resolved\" or \"cancelled\""));
    assert!(
        err(base(json!([{"interruptId": "c", "status": "resolved"}])))
            .contains("`resume[0].payload.approved` must be a boolean")
    );
    assert!(err(base(json!([{"interruptId": "c", "status": "resolved", "payload": {"approved": true, "arguments": "{nope"}}])))
        .contains("`resume[0].payload.arguments` must be an object"));
    assert!(err(base(json!([
        {"interruptId": "c", "status": "cancelled"},
        {"interruptId": "c", "status": "cancelled"}
    ])))
    .contains("answers an interrupt twice"));
    let twice = json!({"threadId": "t", "runId": "r", "messages": [
        {"id": "t1", "role": "tool", "toolCallId": "c1", "content": "a"},
        {"id": "t2", "role": "tool", "toolCallId": "c1", "content": "b"}
    ]});
    assert!(err(twice)
        .contains("`messages[1].toolCallId` answers a tool call an earlier message answered"));
}
