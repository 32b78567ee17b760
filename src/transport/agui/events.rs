//! The AG-UI events the hub emits, in the shapes both client lines (0.0.59 and 1.0) accept:
//! camelCase fields, `type` in SCREAMING_SNAKE_CASE, optional fields left out (a `null` is
//! fatal to both), integer millisecond timestamps. Framed as `data: <json>\n\n`, LF only.

use bytes::Bytes;
use serde::Serialize;

/// How a run ended, as `RUN_FINISHED.outcome`. 0.0.59 rejects `cancelled` and
/// `pendingToolCallIds` (success is the default when the field is absent), so those go only
/// to 1.0 clients; both lines know `interrupt`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(
    tag = "type",
    rename_all = "lowercase",
    rename_all_fields = "camelCase"
)]
pub(super) enum Outcome {
    /// The run ended with client tool calls waiting for the client's results.
    Success {
        pending_tool_call_ids: Vec<String>,
    },
    /// The run ended with server tool calls waiting for a person's approval.
    Interrupt {
        interrupts: Vec<Interrupt>,
    },
    Cancelled,
}

/// One approval the run waits for; its `id` is the call's id, answered by a `resume` entry
/// whose payload follows `response_schema`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Interrupt {
    pub(super) id: String,
    pub(super) reason: &'static str,
    pub(super) message: String,
    pub(super) tool_call_id: String,
    pub(super) response_schema: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(
    tag = "type",
    rename_all = "SCREAMING_SNAKE_CASE",
    rename_all_fields = "camelCase"
)]
pub(super) enum AguiEvent<'a> {
    RunStarted {
        thread_id: &'a str,
        run_id: &'a str,
        timestamp: i64,
    },
    RunFinished {
        thread_id: &'a str,
        run_id: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        outcome: Option<Outcome>,
        timestamp: i64,
    },
    RunError {
        message: &'a str,
        code: &'a str,
        timestamp: i64,
    },
    TextMessageStart {
        message_id: &'a str,
        role: &'static str,
        timestamp: i64,
    },
    TextMessageContent {
        message_id: &'a str,
        delta: &'a str,
        timestamp: i64,
    },
    TextMessageEnd {
        message_id: &'a str,
        timestamp: i64,
    },
    ToolCallStart {
        tool_call_id: &'a str,
        tool_call_name: &'a str,
        parent_message_id: &'a str,
        timestamp: i64,
    },
    ToolCallArgs {
        tool_call_id: &'a str,
        delta: &'a str,
        timestamp: i64,
    },
    ToolCallEnd {
        tool_call_id: &'a str,
        timestamp: i64,
    },
    /// The thread's whole shared state document (PROTOCOL 1.2).
    StateSnapshot {
        snapshot: &'a serde_json::Value,
        timestamp: i64,
    },
    /// An RFC 6902 JSON Patch to the shared state document.
    StateDelta {
        delta: &'a serde_json::Value,
        timestamp: i64,
    },
    /// A reasoning item begins (PROTOCOL 1.2): its span, then its message, both named by the
    /// item's id. Both client lines (0.0.59 and 1.0) verify these five events the same way.
    ReasoningStart {
        message_id: &'a str,
        timestamp: i64,
    },
    ReasoningMessageStart {
        message_id: &'a str,
        role: &'static str,
        timestamp: i64,
    },
    ReasoningMessageContent {
        message_id: &'a str,
        delta: &'a str,
        timestamp: i64,
    },
    ReasoningMessageEnd {
        message_id: &'a str,
        timestamp: i64,
    },
    ReasoningEnd {
        message_id: &'a str,
        timestamp: i64,
    },
    /// A server tool's result (a client's own results are already in its messages).
    ToolCallResult {
        message_id: &'a str,
        tool_call_id: &'a str,
        content: &'a str,
        role: &'static str,
        timestamp: i64,
    },
}

impl AguiEvent<'_> {
    /// One SSE frame: `data: <json>\n\n`.
    pub(super) fn frame(&self) -> Bytes {
        let mut out = b"data: ".to_vec();
        serde_json::to_writer(&mut out, self).expect("AG-UI events always serialise");
        out.extend_from_slice(b"\n\n");
        Bytes::from(out)
    }
}

/// A comment frame; clients skip it, and writing it tells the hub whether the client is gone.
pub(super) const KEEP_ALIVE: &[u8] = b": keep-alive\n\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_camel_case_lf_only_without_nulls() {
        let e = AguiEvent::RunFinished {
            thread_id: "t",
            run_id: "r",
            outcome: None,
            timestamp: 5,
        };
        assert_eq!(&e.frame()[..], b"data: {\"type\":\"RUN_FINISHED\",\"threadId\":\"t\",\"runId\":\"r\",\"timestamp\":5}\n\n");
        let e = AguiEvent::RunFinished {
            thread_id: "t",
            run_id: "r",
            outcome: Some(Outcome::Cancelled),
            timestamp: 5,
        };
        assert!(
            String::from_utf8_lossy(&e.frame()).contains("\"outcome\":{\"type\":\"cancelled\"}")
        );
        let e = AguiEvent::RunFinished {
            thread_id: "t",
            run_id: "r",
            outcome: Some(Outcome::Success {
                pending_tool_call_ids: vec!["c1".into()],
            }),
            timestamp: 5,
        };
        assert!(String::from_utf8_lossy(&e.frame())
            .contains("\"outcome\":{\"type\":\"success\",\"pendingToolCallIds\":[\"c1\"]}"));
        let e = AguiEvent::RunFinished {
            thread_id: "t",
            run_id: "r",
            outcome: Some(Outcome::Interrupt {
                interrupts: vec![Interrupt {
                    id: "c2".into(),
                    reason: "tool_call",
                    message: "m".into(),
                    tool_call_id: "c2".into(),
                    response_schema: serde_json::json!({"type": "object"}),
                }],
            }),
            timestamp: 5,
        };
        assert!(String::from_utf8_lossy(&e.frame()).contains(
            "\"outcome\":{\"type\":\"interrupt\",\"interrupts\":[{\"id\":\"c2\",\"reason\":\"tool_call\",\"message\":\"m\",\"toolCallId\":\"c2\",\"responseSchema\":{\"type\":\"object\"}}]}"
        ));
        let e = AguiEvent::TextMessageContent {
            message_id: "m",
            delta: "a\r\nb",
            timestamp: 1,
        };
        assert_eq!(&e.frame()[..], b"data: {\"type\":\"TEXT_MESSAGE_CONTENT\",\"messageId\":\"m\",\"delta\":\"a\\r\\nb\",\"timestamp\":1}\n\n");
    }
}
