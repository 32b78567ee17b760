//! Reading an AG-UI `RunAgentInput` (shared/research/agui.md §3): lenient where the clients
//! differ (unknown fields and roles, missing `tools`/`context`/`state`), strict on the shapes
//! the hub relies on, so bad input is refused with one clear `bad_request` before anything is
//! stored.

use serde_json::{json, Map, Value};

use crate::domain::ToolSpec;
use crate::error::HubError;

/// Longest `threadId` (it becomes the session id).
const MAX_THREAD_ID: usize = 128;
/// Longest `runId` and message `id` (a message id becomes a `client_msg_id`).
const MAX_ID: usize = 256;

/// What the hub takes from a request.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct RunInput {
    pub(super) thread_id: String,
    pub(super) run_id: String,
    /// The request carried `protocolVersion` (a 1.0 client): 1.0-only event fields may be used.
    pub(super) v1: bool,
    /// Every user message in the request, in order: `(id, text)`.
    pub(super) user_messages: Vec<(String, String)>,
    /// `tools`: the run's client tools, sent with its user message.
    pub(super) tools: Vec<ToolSpec>,
    /// Every `role: "tool"` message, in order: `(toolCallId, content)`.
    pub(super) tool_results: Vec<(String, String)>,
    /// `resume` (1.0): answers to the interrupts the previous run ended with.
    pub(super) resume: Vec<Resume>,
}

/// One `resume` entry: an interrupt (the hub names them after the call) and its answer.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Resume {
    pub(super) interrupt_id: String,
    /// `status: "resolved"` without `payload.approved: false`.
    pub(super) approved: bool,
    /// `payload.arguments`, replacing the model's (JSON text, or an object serialised).
    pub(super) arguments: Option<String>,
}

fn bad(message: impl Into<String>) -> HubError {
    HubError::BadRequest(message.into())
}

/// A required, non-empty string field of at most `max` bytes.
fn id_field(m: &Map<String, Value>, field: &str, at: &str, max: usize) -> Result<String, HubError> {
    match m.get(field) {
        Some(Value::String(s)) if !s.is_empty() && s.len() <= max => Ok(s.clone()),
        Some(Value::String(_)) => Err(bad(format!("`{at}{field}` must be 1 to {max} bytes"))),
        Some(_) => Err(bad(format!("`{at}{field}` must be a string"))),
        None => Err(bad(format!("missing `{at}{field}`"))),
    }
}

/// `threadId` names a hub session: the characters of session ids only.
fn thread_id(m: &Map<String, Value>) -> Result<String, HubError> {
    let id = id_field(m, "threadId", "", MAX_THREAD_ID)?;
    let ok = id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    if !ok {
        return Err(bad("`threadId` may only hold letters, digits and `-_.:`"));
    }
    Ok(id)
}

/// A field that, when present and not null, must be an array.
fn optional_array(m: &Map<String, Value>, field: &str) -> Result<(), HubError> {
    match m.get(field) {
        None | Some(Value::Null) | Some(Value::Array(_)) => Ok(()),
        Some(_) => Err(bad(format!("`{field}` must be an array"))),
    }
}

/// The text of a user message: a string, or text content parts joined by newlines.
fn user_text(content: Option<&Value>, at: &str) -> Result<String, HubError> {
    match content {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Array(parts)) => {
            let mut texts = Vec::with_capacity(parts.len());
            for (j, part) in parts.iter().enumerate() {
                let kind = part.get("type").and_then(Value::as_str);
                match (kind, part.get("text")) {
                    (Some("text"), Some(Value::String(t))) => texts.push(t.as_str()),
                    (Some("text"), _) => {
                        return Err(bad(format!("`{at}content[{j}].text` must be a string")))
                    }
                    (Some(other), _) => {
                        return Err(bad(format!(
                        "`{at}content[{j}]` is a `{other}` part: only text content is supported"
                    )))
                    }
                    (None, _) => {
                        return Err(bad(format!(
                            "`{at}content[{j}]` must be an object with a string `type`"
                        )))
                    }
                }
            }
            Ok(texts.join("\n"))
        }
        Some(_) => Err(bad(format!(
            "`{at}content` must be a string or an array of content parts"
        ))),
        None => Err(bad(format!("missing `{at}content`"))),
    }
}

/// What one message brings: a user message's text or a tool message's result.
enum Brought {
    Nothing,
    User(String, String),
    ToolResult(String, String),
}

/// Check one message's shape; returns what the hub takes from it.
fn message(v: &Value, i: usize) -> Result<Brought, HubError> {
    let at = format!("messages[{i}].");
    let Value::Object(m) = v else {
        return Err(bad(format!("`messages[{i}]` must be an object")));
    };
    let id = id_field(m, "id", &at, MAX_ID)?;
    let role = match m.get("role") {
        Some(Value::String(r)) => r.as_str(),
        Some(_) => return Err(bad(format!("`{at}role` must be a string"))),
        None => return Err(bad(format!("missing `{at}role`"))),
    };
    let content = m.get("content");
    match role {
        "user" => return Ok(Brought::User(id, user_text(content, &at)?)),
        "system" | "developer" | "reasoning" if !matches!(content, Some(Value::String(_))) => {
            return Err(bad(format!("`{at}content` must be a string")));
        }
        "assistant" if !matches!(content, None | Some(Value::Null) | Some(Value::String(_))) => {
            return Err(bad(format!("`{at}content` must be a string")));
        }
        "tool" => {
            let call_id = id_field(m, "toolCallId", &at, MAX_ID)?;
            return Ok(Brought::ToolResult(call_id, user_text(content, &at)?));
        }
        // Other roles (activity, newer ones) are not the hub's business: accepted and ignored.
        _ => {}
    }
    Ok(Brought::Nothing)
}

/// `tools`: `{name, description, parameters?}` each; a missing `parameters` is an empty
/// object schema. Names and limits are the session's rules (`SendRequest::with_tools`).
fn tools(m: &Map<String, Value>) -> Result<Vec<ToolSpec>, HubError> {
    let Some(Value::Array(list)) = m.get("tools") else {
        return Ok(Vec::new());
    };
    let mut out = Vec::with_capacity(list.len());
    for (i, t) in list.iter().enumerate() {
        let at = format!("tools[{i}].");
        let Value::Object(t) = t else {
            return Err(bad(format!("`tools[{i}]` must be an object")));
        };
        let name = id_field(t, "name", &at, 256)?;
        let description = match t.get("description") {
            None | Some(Value::Null) => None,
            Some(Value::String(d)) => Some(d.clone()),
            Some(_) => return Err(bad(format!("`{at}description` must be a string"))),
        };
        let parameters = match t.get("parameters") {
            None | Some(Value::Null) => json!({"type": "object", "properties": {}}),
            Some(p) => p.clone(),
        };
        out.push(ToolSpec {
            name,
            description,
            parameters,
        });
    }
    Ok(out)
}

/// `resume` (1.0 clients): `[{interruptId, status: "resolved"|"cancelled", payload?}]`.
fn resume(m: &Map<String, Value>) -> Result<Vec<Resume>, HubError> {
    let list = match m.get("resume") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(list)) => list,
        Some(_) => return Err(bad("`resume` must be an array")),
    };
    let mut out = Vec::with_capacity(list.len());
    for (i, r) in list.iter().enumerate() {
        let at = format!("resume[{i}].");
        let Value::Object(r) = r else {
            return Err(bad(format!("`resume[{i}]` must be an object")));
        };
        let interrupt_id = id_field(r, "interruptId", &at, MAX_ID)?;
        let resolved = match r.get("status").and_then(Value::as_str) {
            Some("resolved") => true,
            Some("cancelled") => false,
            _ => {
                return Err(bad(format!(
                    "`{at}status` must be \"resolved\" or \"cancelled\""
                )))
            }
        };
        let payload = r.get("payload");
        let approved = resolved
            && payload
                .and_then(|p| p.get("approved"))
                .and_then(Value::as_bool)
                != Some(false);
        let arguments = match payload.and_then(|p| p.get("arguments")) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(v @ Value::Object(_)) => Some(v.to_string()),
            Some(_) => {
                return Err(bad(format!(
                    "`{at}payload.arguments` must be an object or JSON text"
                )))
            }
        };
        out.push(Resume {
            interrupt_id,
            approved,
            arguments,
        });
    }
    Ok(out)
}

/// Parse and check a request body.
pub(super) fn parse(body: &[u8]) -> Result<RunInput, HubError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| bad(format!("malformed JSON: {e}")))?;
    let Value::Object(m) = v else {
        return Err(bad("the body must be a JSON object (RunAgentInput)"));
    };
    let thread_id = thread_id(&m)?;
    let run_id = id_field(&m, "runId", "", MAX_ID)?;
    let v1 = match m.get("protocolVersion") {
        None | Some(Value::Null) => false,
        Some(Value::String(_)) => true,
        Some(_) => return Err(bad("`protocolVersion` must be a string")),
    };
    optional_array(&m, "tools")?;
    optional_array(&m, "context")?;
    let messages = match m.get("messages") {
        Some(Value::Array(a)) => a,
        Some(_) => return Err(bad("`messages` must be an array")),
        None => return Err(bad("missing `messages`")),
    };
    let mut user_messages = Vec::new();
    let mut tool_results = Vec::new();
    let mut ids = std::collections::HashSet::new();
    for (i, msg) in messages.iter().enumerate() {
        let user = message(msg, i)?;
        // Checked up front: a repeated id would be stored once and then refused mid-request.
        if !ids.insert(msg["id"].as_str().unwrap_or_default()) {
            return Err(bad(format!(
                "`messages[{i}].id` repeats an earlier message id"
            )));
        }
        match user {
            Brought::User(id, text) => user_messages.push((id, text)),
            Brought::ToolResult(call, output) => tool_results.push((call, output)),
            Brought::Nothing => {}
        }
    }
    Ok(RunInput {
        thread_id,
        run_id,
        v1,
        user_messages,
        tools: tools(&m)?,
        tool_results,
        resume: resume(&m)?,
    })
}

#[cfg(test)]
mod tests {
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
            err(json!({"threadId": "a/b", "runId": "r", "messages": []}))
                .contains("letters, digits")
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
            err(
                json!({"threadId": "t", "runId": "r", "messages": [{"role": "user", "content": "x"}]})
            ),
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
}
