//! The context of a message (PROTOCOL 1.2, "Context"), gathered in one place: what its
//! transport carried (native `send.context`, ChatKit `metadata`, `quoted_text` and tag data,
//! AG-UI `context` and `forwardedProps`), the session's REST `metadata` and the caller's
//! identity. It is stored with the user item (native `context` as in 1.1, everything else in
//! `context_sources`), bounded as a whole, and never logged above debug.

use serde_json::{Map, Value};

use super::request::MAX_CONTEXT_BYTES;
use crate::error::HubError;

/// ChatKit's request-level `metadata`.
pub const CHATKIT_METADATA: &str = "chatkit_metadata";
/// ChatKit's `quoted_text`: the text the user is referring to.
pub const QUOTED_TEXT: &str = "quoted_text";
/// ChatKit's `input_tag` parts: `[{id, text, data}]`.
pub const TAGS: &str = "tags";
/// AG-UI's `context` entries: `[{description, value}]`.
pub const AGUI_CONTEXT: &str = "agui_context";
/// AG-UI's `forwardedProps`.
pub const FORWARDED_PROPS: &str = "forwarded_props";
/// The session's REST `metadata`, as it was when the message was stored.
pub const SESSION_METADATA: &str = "session_metadata";
/// The caller: `{sub, claims?}` (none in anonymous mode).
pub const IDENTITY: &str = "identity";

/// The model id a message runs with (PROTOCOL 1.2): `requested`, or the default;
/// `bad_request` for an id `list` does not hold.
pub(crate) fn pick_model(
    list: &crate::agent::ModelList,
    requested: Option<&str>,
) -> Result<String, HubError> {
    list.pick(requested).ok_or_else(|| {
        HubError::BadRequest(format!(
            "unknown model `{}`: GET /v1/models lists the ids ({})",
            requested.unwrap_or_default(),
            list.ids.join(", ")
        ))
    })
}

/// Serialised size of a JSON value (what the 16 KiB bound counts).
pub(crate) fn size(v: &Value) -> usize {
    serde_json::to_vec(v).map_or(usize::MAX, |b| b.len())
}

/// The error for a context over the bound; nothing is stored.
pub(crate) fn too_large() -> HubError {
    HubError::TooLarge(format!(
        "the message's context (its own and its sources together) is larger than {MAX_CONTEXT_BYTES} bytes"
    ))
}

/// Check that `context` and `sources` together fit the bound.
pub(crate) fn check(context: Option<&Value>, sources: &Map<String, Value>) -> Result<(), HubError> {
    let own = context.map_or(0, size);
    let rest = if sources.is_empty() {
        0
    } else {
        size(&Value::Object(sources.clone()))
    };
    if own.saturating_add(rest) > MAX_CONTEXT_BYTES {
        return Err(too_large());
    }
    Ok(())
}

/// The sources stored with a new user item: the request's, then the session's metadata and
/// the caller's identity (a message stored later keeps what they were then). `too_large` when
/// the whole, with the native `context`, is over the bound.
pub(crate) fn gather(
    context: Option<&Value>,
    request_sources: &Map<String, Value>,
    session_metadata: Option<&Value>,
    identity: Option<&Value>,
) -> Result<Option<Value>, HubError> {
    let mut sources = request_sources.clone();
    if let Some(m) = session_metadata.filter(|m| !is_empty(m)) {
        sources.insert(SESSION_METADATA.into(), m.clone());
    }
    if let Some(id) = identity {
        sources.insert(IDENTITY.into(), id.clone());
    }
    check(context, &sources)?;
    Ok((!sources.is_empty()).then_some(Value::Object(sources)))
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sources_gather_with_session_metadata_and_identity() {
        let mut req = Map::new();
        req.insert(QUOTED_TEXT.into(), json!("the second paragraph"));
        let got = gather(
            Some(&json!({"page": "/p"})),
            &req,
            Some(&json!({"plan": "pro"})),
            Some(&json!({"sub": "u1"})),
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            got,
            json!({"quoted_text": "the second paragraph", "session_metadata": {"plan": "pro"},
                   "identity": {"sub": "u1"}})
        );
        assert_eq!(
            gather(None, &Map::new(), Some(&json!({})), None).unwrap(),
            None
        );
    }

    #[test]
    fn the_whole_is_bounded() {
        let half = json!({"k": "x".repeat(MAX_CONTEXT_BYTES / 2)});
        let mut req = Map::new();
        req.insert(CHATKIT_METADATA.into(), half.clone());
        assert!(gather(None, &req, None, None).is_ok());
        let err = gather(Some(&half), &req, None, None).unwrap_err();
        assert_eq!(err.code(), "too_large");
        let err = gather(None, &req, Some(&half), None).unwrap_err();
        assert_eq!(err.code(), "too_large");
    }
}
