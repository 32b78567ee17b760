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
    /// Every `role: "tool"` message, in order: a client tool's result, or history.
    pub(super) tool_results: Vec<ToolMessage>,
    /// `resume`: answers to the interrupts (approvals) the previous run ended with.
    pub(super) resume: Vec<Resume>,
    /// `state`, when it is a non-empty object: adopted as the thread's shared state at the run's
    /// start (absent, `null` and `{}` leave the thread's state as it is).
    pub(super) state: Option<Value>,
    /// `context` entries, as sent: context for the model (PROTOCOL 1.2).
    pub(super) context: Vec<Value>,
    /// `forwardedProps` without `model`: context for the model.
    pub(super) forwarded_props: Map<String, Value>,
    /// `forwardedProps.model`: the model id the request's messages pick.
    pub(super) model: Option<String>,
}

impl RunInput {
    /// Whether the request answers tool calls (tool messages or `resume` entries).
    pub(super) fn answers_calls(&self) -> bool {
        !self.tool_results.is_empty() || !self.resume.is_empty()
    }
}

/// One `role: "tool"` message: the result of the call `toolCallId`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct ToolMessage {
    /// Its place in `messages`, for errors.
    pub(super) index: usize,
    pub(super) call_id: String,
    /// `content` (text parts joined), or `error` when the content is empty.
    pub(super) output: String,
    /// The message carried `error`: the tool failed.
    pub(super) is_error: bool,
}

/// One `resume` entry: an interrupt (the hub names them after the call) and its answer.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Resume {
    /// Its place in `resume`, for errors.
    pub(super) index: usize,
    pub(super) interrupt_id: String,
    /// `status: "resolved"` with `payload.approved: true`; `"cancelled"` or `approved: false`
    /// deny the call.
    pub(super) approved: bool,
    /// `payload.arguments`, replacing the model's (an object, or the JSON text of one).
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
    ToolResult(ToolMessage),
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
            let content = user_text(content, &at)?;
            let error = match m.get("error") {
                None | Some(Value::Null) => None,
                Some(Value::String(e)) => Some(e.clone()),
                Some(_) => return Err(bad(format!("`{at}error` must be a string"))),
            };
            let is_error = error.is_some();
            let output = match error {
                Some(e) if content.is_empty() => e,
                _ => content,
            };
            return Ok(Brought::ToolResult(ToolMessage {
                index: i,
                call_id,
                output,
                is_error,
            }));
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

/// `resume`: `[{interruptId, status: "resolved"|"cancelled", payload?}]`. An approval is
/// answered by `status: "resolved"` with `payload: {approved: bool, arguments?}`; `cancelled`
/// denies it.
fn resume(m: &Map<String, Value>) -> Result<Vec<Resume>, HubError> {
    let list = match m.get("resume") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(list)) => list,
        Some(_) => return Err(bad("`resume` must be an array")),
    };
    let mut out: Vec<Resume> = Vec::with_capacity(list.len());
    for (i, r) in list.iter().enumerate() {
        let at = format!("resume[{i}].");
        let Value::Object(r) = r else {
            return Err(bad(format!("`resume[{i}]` must be an object")));
        };
        let interrupt_id = id_field(r, "interruptId", &at, MAX_ID)?;
        if out.iter().any(|o| o.interrupt_id == interrupt_id) {
            return Err(bad(format!("`{at}interruptId` answers an interrupt twice")));
        }
        let payload = r.get("payload").filter(|p| !p.is_null());
        let approved = match r.get("status").and_then(Value::as_str) {
            Some("cancelled") => false,
            Some("resolved") => match payload.and_then(|p| p.get("approved")) {
                Some(Value::Bool(b)) => *b,
                _ => {
                    return Err(bad(format!(
                        "`{at}payload.approved` must be a boolean: true approves the tool call, false denies it"
                    )))
                }
            },
            _ => {
                return Err(bad(format!(
                    "`{at}status` must be \"resolved\" or \"cancelled\""
                )))
            }
        };
        let arguments = match payload.and_then(|p| p.get("arguments")) {
            None | Some(Value::Null) => None,
            Some(v @ Value::Object(_)) => Some(v.to_string()),
            Some(Value::String(s))
                if serde_json::from_str::<Value>(s).is_ok_and(|v| v.is_object()) =>
            {
                Some(s.clone())
            }
            Some(_) => {
                return Err(bad(format!(
                    "`{at}payload.arguments` must be an object or the JSON text of one"
                )))
            }
        };
        out.push(Resume {
            index: i,
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
    let context = context::entries(&m)?;
    let (forwarded_props, model) = context::forwarded_props(&m)?;
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
            Brought::ToolResult(t) => {
                if tool_results
                    .iter()
                    .any(|o: &ToolMessage| o.call_id == t.call_id)
                {
                    return Err(bad(format!(
                        "`messages[{i}].toolCallId` answers a tool call an earlier message answered"
                    )));
                }
                tool_results.push(t)
            }
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
        state: state(&m)?,
        context,
        forwarded_props,
        model,
    })
}

/// `state`: a non-empty object is the client's document; absent, `null` and `{}` (what both
/// clients send before any state exists) are no document; anything else is refused (a shared
/// state document is a JSON object).
fn state(m: &Map<String, Value>) -> Result<Option<Value>, HubError> {
    match m.get("state") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) if o.is_empty() => Ok(None),
        Some(s @ Value::Object(_)) => Ok(Some(s.clone())),
        Some(_) => Err(bad("`state` must be an object")),
    }
}

mod context;
#[cfg(test)]
mod tests;
