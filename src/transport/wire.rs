//! JSON rendering of direct replies and queued frames, shared by the WebSocket and SSE
//! transports so both speak exactly the same objects.

use bytes::Bytes;
use serde_json::{json, Map, Value};

use crate::error::HubError;
use crate::session::outbox::{AckReply, SubscribedReply};
use crate::session::Outbound;

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
        Outbound::Ack(_) => "ack",
        Outbound::Reply(_) => "reply",
    }
}

/// The JSON text of a queued frame.
pub fn render(o: &Outbound) -> Bytes {
    match o {
        Outbound::Event(e) => e.json.clone(),
        Outbound::Reply(b) => b.clone(),
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
            let mut v = serde_json::to_value(ack).expect("ack serialises");
            let Value::Object(mut m) = v.take() else {
                unreachable!("an ack is an object")
            };
            m.insert("type".into(), "ack".into());
            to_bytes(&with_ref(m, reply_ref))
        }
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
