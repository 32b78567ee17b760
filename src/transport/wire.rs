//! The native protocol's JSON, shared by the WebSocket and SSE transports so both speak
//! exactly the same objects: reading the fields of client frames and bodies, and rendering
//! direct replies and queued frames.

use bytes::Bytes;
use serde_json::{json, Map, Value};

use crate::config::BusyPolicy;
use crate::domain::{Position, ToolSpec};
use crate::error::HubError;
use crate::session::event::{Ack, StateAck, ToolAck};
use crate::session::outbox::{AckReply, SubscribedReply};
use crate::session::{Outbound, SendRequest, ToolResolution};

/// A native send (WebSocket frame or SSE POST body): `client_msg_id`, `text`, `on_busy`?,
/// `tools`?, `context`?, `model`? (PROTOCOL 1.2).
/// The limits are the session's ([`SendRequest::new`]); this only reads the fields.
pub(crate) fn send_request(
    obj: &Map<String, Value>,
    max_text_chars: usize,
) -> Result<SendRequest, HubError> {
    let client_msg_id = req_str(obj, "client_msg_id")?;
    let text = req_str(obj, "text")?;
    let on_busy = match obj.get("on_busy") {
        None | Some(Value::Null) => None,
        Some(v) => Some(parse_busy(v)?),
    };
    let mut req = SendRequest::new(client_msg_id, text, on_busy, max_text_chars)?;
    match obj.get("tools") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) => {
            let tools = list
                .iter()
                .map(|t| {
                    serde_json::from_value::<ToolSpec>(t.clone()).map_err(|e| {
                        HubError::BadRequest(format!(
                            "each tool must be {{name, description?, parameters}}: {e}"
                        ))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            req = req.with_tools(tools)?;
        }
        Some(_) => return Err(HubError::BadRequest("`tools` must be an array".into())),
    }
    match obj.get("context") {
        None | Some(Value::Null) => {}
        Some(v) => req = req.with_context(v.clone())?,
    }
    // PROTOCOL 1.2: the model id this message picks (the hub refuses an unknown one).
    Ok(req.with_model(opt_str(obj, "model")?))
}

/// A `tool_result` (`call_id`, `output`, `is_error`?) or `tool_approval` (`call_id`,
/// `approved`, `arguments`?: JSON text) frame or body, as the call id and its resolution.
pub(crate) fn tool_resolution(
    obj: &Map<String, Value>,
    approval: bool,
) -> Result<(String, ToolResolution), HubError> {
    let call_id = req_str(obj, "call_id")?;
    if call_id.is_empty() || call_id.len() > 256 {
        return Err(HubError::BadRequest(
            "`call_id` must be 1 to 256 bytes".into(),
        ));
    }
    let how = if approval {
        let approved = match obj.get("approved") {
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(HubError::BadRequest("`approved` must be a boolean".into())),
            None => return Err(HubError::BadRequest("missing `approved`".into())),
        };
        let arguments = opt_str(obj, "arguments")?;
        if let Some(a) = &arguments {
            if serde_json::from_str::<Value>(a).is_err() {
                return Err(HubError::BadRequest(
                    "`arguments` must be the JSON text of the arguments".into(),
                ));
            }
        }
        ToolResolution::Approval {
            approved,
            arguments,
        }
    } else {
        let output = req_str(obj, "output")?.to_owned();
        let is_error = match obj.get("is_error") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(HubError::BadRequest("`is_error` must be a boolean".into())),
        };
        ToolResolution::Result { output, is_error }
    };
    Ok((call_id.to_owned(), how))
}

pub(crate) fn req_str<'a>(obj: &'a Map<String, Value>, field: &str) -> Result<&'a str, HubError> {
    match obj.get(field) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(HubError::BadRequest(format!("`{field}` must be a string"))),
        None => Err(HubError::BadRequest(format!("missing `{field}`"))),
    }
}

/// An optional string field (`run_id` of a cancel): absent or null is `None`.
pub(crate) fn opt_str(obj: &Map<String, Value>, field: &str) -> Result<Option<String>, HubError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(HubError::BadRequest(format!("`{field}` must be a string"))),
    }
}

/// `since`: `{"epoch": string, "seq": non-negative integer}`.
pub(crate) fn parse_since(v: &Value) -> Result<Position, HubError> {
    let bad = || {
        HubError::BadRequest(
            "`since` must be {\"epoch\": string, \"seq\": non-negative integer}".into(),
        )
    };
    let o = v.as_object().ok_or_else(bad)?;
    let epoch = o.get("epoch").and_then(Value::as_str).ok_or_else(bad)?;
    let seq = o.get("seq").and_then(Value::as_u64).ok_or_else(bad)?;
    Ok(Position {
        epoch: epoch.to_owned(),
        seq,
    })
}

pub(crate) fn parse_busy(v: &Value) -> Result<BusyPolicy, HubError> {
    match v.as_str() {
        Some("queue") => Ok(BusyPolicy::Queue),
        Some("reject") => Ok(BusyPolicy::Reject),
        Some("interrupt") => Ok(BusyPolicy::Interrupt),
        _ => Err(HubError::BadRequest(
            "`on_busy` must be one of queue, reject, interrupt".into(),
        )),
    }
}

/// The `ack` of a tool call's resolution: `{type, ref?, session, call_id, epoch, seq,
/// duplicate}`.
pub(crate) fn tool_ack_value(ack: &ToolAck, reply_ref: &Option<Value>) -> Value {
    let Value::Object(mut m) = serde_json::to_value(ack).expect("ack serialises") else {
        unreachable!("an ack is an object")
    };
    m.insert("type".into(), "ack".into());
    with_ref(m, reply_ref)
}

/// The `ack` of a shared-state change: `{type, ref?, session, state_version, epoch, seq,
/// duplicate}`.
pub(crate) fn state_ack_value(ack: &StateAck, reply_ref: &Option<Value>) -> Value {
    let Value::Object(mut m) = serde_json::to_value(ack).expect("ack serialises") else {
        unreachable!("an ack is an object")
    };
    m.insert("type".into(), "ack".into());
    with_ref(m, reply_ref)
}

/// The `ack` object: the acknowledgement plus `type` and the `ref` of the send it answers.
pub(crate) fn ack_value(ack: &Ack, reply_ref: &Option<Value>) -> Value {
    let Value::Object(mut m) = serde_json::to_value(ack).expect("ack serialises") else {
        unreachable!("an ack is an object")
    };
    m.insert("type".into(), "ack".into());
    with_ref(m, reply_ref)
}

fn with_ref(mut obj: Map<String, Value>, reply_ref: &Option<Value>) -> Value {
    if let Some(r) = reply_ref {
        obj.insert("ref".into(), r.clone());
    }
    Value::Object(obj)
}

fn to_bytes(v: &Value) -> Bytes {
    Bytes::from(serde_json::to_vec(v).expect("JSON values always serialise"))
}

/// The wire type of a queued frame (`event:` in SSE).
pub fn outbound_type(o: &Outbound) -> &'static str {
    match o {
        Outbound::Event(e) => e.body.kind(),
        Outbound::Subscribed(_) => "subscribed",
        Outbound::Snapshot(_) => "snapshot",
        Outbound::Ack(_) | Outbound::ToolAck(_) | Outbound::StateAck(_) => "ack",
        Outbound::Reply(_) => "reply",
        Outbound::Binary(_) => "binary",
    }
}

/// The JSON text of a queued frame.
pub fn render(o: &Outbound) -> Bytes {
    match o {
        Outbound::Event(e) => e.json.clone(),
        Outbound::Reply(b) | Outbound::Binary(b) => b.clone(),
        Outbound::Subscribed(r) => {
            let SubscribedReply {
                session,
                epoch,
                head_seq,
                resume,
                reply_ref,
            } = r.as_ref();
            let mut m = Map::new();
            m.insert("type".into(), "subscribed".into());
            m.insert("session".into(), session.as_str().into());
            m.insert("epoch".into(), epoch.as_str().into());
            m.insert("head_seq".into(), (*head_seq).into());
            m.insert("resume".into(), json!(resume));
            to_bytes(&with_ref(m, reply_ref))
        }
        Outbound::Snapshot(s) => {
            let mut v = serde_json::to_value(s.as_ref()).expect("snapshot serialises");
            if let Value::Object(m) = &mut v {
                m.insert("type".into(), "snapshot".into());
            }
            to_bytes(&v)
        }
        Outbound::Ack(r) => {
            let AckReply { ack, reply_ref } = r.as_ref();
            to_bytes(&ack_value(ack, reply_ref))
        }
        Outbound::ToolAck(r) => to_bytes(&tool_ack_value(&r.ack, &r.reply_ref)),
        Outbound::StateAck(r) => to_bytes(&state_ack_value(&r.ack, &r.reply_ref)),
    }
}

/// `{"type":"error","ref"?,"code","message","session"?}`.
pub fn error_frame(err: &HubError, reply_ref: &Option<Value>, session: Option<&str>) -> Bytes {
    let mut m = Map::new();
    m.insert("type".into(), "error".into());
    m.insert("code".into(), err.code().into());
    m.insert("message".into(), err.to_string().into());
    if let Some(s) = session {
        m.insert("session".into(), s.into());
    }
    to_bytes(&with_ref(m, reply_ref))
}

/// A direct reply of the given type with optional `ref` and `session`.
pub fn reply_frame(kind: &str, reply_ref: &Option<Value>, session: Option<&str>) -> Bytes {
    let mut m = Map::new();
    m.insert("type".into(), kind.into());
    if let Some(s) = session {
        m.insert("session".into(), s.into());
    }
    to_bytes(&with_ref(m, reply_ref))
}
