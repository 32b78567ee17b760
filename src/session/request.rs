//! What callers ask of a session, validated once: who asks ([`Caller`], with the [`Quota`]
//! the auth layer charges), a user message ([`SendRequest`]), a page of items, and the
//! session's public description. Transports build these and translate the answers; the rules
//! of a send live here and in `state`, nowhere else.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::config::BusyPolicy;
use crate::domain::{Item, ToolSpec};
use crate::error::HubError;
use crate::store::SessionRecord;

/// Longest accepted `client_msg_id`, in bytes.
pub const MAX_CLIENT_MSG_ID: usize = 256;
/// Most client tools one message may declare, and their definitions' total JSON size.
pub const MAX_CLIENT_TOOLS: usize = 64;
pub const MAX_TOOL_DEFS_BYTES: usize = 64 * 1024;
/// Largest `context` of one message, serialised.
pub const MAX_CONTEXT_BYTES: usize = 16 * 1024;

/// Per-user admission of new work, charged by the session only for work it will really do
/// (a duplicate message costs nothing). Implemented by the auth layer's limits.
pub trait Quota: Send + Sync + 'static {
    /// Charge a new message and the run it starts.
    fn admit_message(&self, sub: &str) -> Result<(), HubError>;
    /// Charge a run started without a new message (a retry).
    fn admit_run(&self, sub: &str) -> Result<(), HubError>;
}

/// Who is asking: the user id sessions are owned by, and their quota (none in anonymous mode).
#[derive(Clone)]
pub struct Caller {
    sub: Arc<str>,
    quota: Option<Arc<dyn Quota>>,
    /// `{sub, claims?}` given to the model as context (PROTOCOL 1.2); `None` in anonymous mode.
    identity: Option<Arc<Value>>,
}

impl Caller {
    pub fn new(sub: impl Into<Arc<str>>, quota: Option<Arc<dyn Quota>>) -> Self {
        Caller {
            sub: sub.into(),
            quota,
            identity: None,
        }
    }

    /// This caller's identity as the model sees it: `sub`, and the token claims named by
    /// `--context-claims` (those the token has).
    pub fn with_identity(mut self, claims: Map<String, Value>) -> Self {
        let mut id = Map::new();
        id.insert("sub".into(), Value::String(self.sub.to_string()));
        if !claims.is_empty() {
            id.insert("claims".into(), Value::Object(claims));
        }
        self.identity = Some(Arc::new(Value::Object(id)));
        self
    }

    pub fn identity(&self) -> Option<&Value> {
        self.identity.as_deref()
    }

    pub fn sub(&self) -> &str {
        &self.sub
    }

    pub(crate) fn admit_message(&self) -> Result<(), HubError> {
        self.quota
            .as_ref()
            .map_or(Ok(()), |q| q.admit_message(&self.sub))
    }

    pub(crate) fn admit_run(&self) -> Result<(), HubError> {
        self.quota
            .as_ref()
            .map_or(Ok(()), |q| q.admit_run(&self.sub))
    }
}

impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caller")
            .field("sub", &self.sub)
            .field("limited", &self.quota.is_some())
            .finish()
    }
}

/// A user message, checked for shape and size: it can only be built valid.
#[derive(Debug, Clone, PartialEq)]
pub struct SendRequest {
    client_msg_id: String,
    text: String,
    on_busy: Option<BusyPolicy>,
    tools: Vec<ToolSpec>,
    context: Option<Value>,
    /// Context from the transport's other fields, by source key (`session::context`).
    context_sources: Map<String, Value>,
    /// The model id the message picked (checked against the agent's list by the session).
    model: Option<String>,
    /// The caller's identity, set by the session from the [`Caller`] on every send.
    identity: Option<Arc<Value>>,
}

impl SendRequest {
    /// `client_msg_id` of 1 to 256 bytes; `text` of at most `max_text_chars` Unicode scalar
    /// values; `on_busy` overrides the session's busy policy for this message.
    pub fn new(
        client_msg_id: impl Into<String>,
        text: impl Into<String>,
        on_busy: Option<BusyPolicy>,
        max_text_chars: usize,
    ) -> Result<Self, HubError> {
        let client_msg_id = client_msg_id.into();
        if client_msg_id.is_empty() || client_msg_id.len() > MAX_CLIENT_MSG_ID {
            return Err(HubError::BadRequest(format!(
                "`client_msg_id` must be 1 to {MAX_CLIENT_MSG_ID} bytes"
            )));
        }
        let text = text.into();
        if text.chars().count() > max_text_chars {
            return Err(HubError::TooLarge(format!(
                "`text` is longer than {max_text_chars} characters"
            )));
        }
        Ok(SendRequest {
            client_msg_id,
            text,
            on_busy,
            tools: Vec::new(),
            context: None,
            context_sources: Map::new(),
            model: None,
            identity: None,
        })
    }

    /// The client tools this message's run (and its continuations) may call: at most 64,
    /// names `[A-Za-z0-9_-]{1,64}` and unique, `parameters` a JSON Schema object, at most
    /// 64 KiB of definitions. (That none shadows a server tool is the session's check.)
    pub fn with_tools(mut self, tools: Vec<ToolSpec>) -> Result<Self, HubError> {
        if tools.len() > MAX_CLIENT_TOOLS {
            return Err(HubError::TooLarge(format!(
                "at most {MAX_CLIENT_TOOLS} tools per message"
            )));
        }
        let size = serde_json::to_vec(&tools).map_or(usize::MAX, |v| v.len());
        if size > MAX_TOOL_DEFS_BYTES {
            return Err(HubError::TooLarge(format!(
                "tool definitions are larger than {MAX_TOOL_DEFS_BYTES} bytes"
            )));
        }
        for (i, t) in tools.iter().enumerate() {
            if !crate::tools::valid_name(&t.name) {
                return Err(HubError::BadRequest(format!(
                    "tool name `{}` must be 1 to 64 of A-Z a-z 0-9 _ -",
                    t.name
                )));
            }
            if tools[..i].iter().any(|o| o.name == t.name) {
                return Err(HubError::BadRequest(format!(
                    "tool `{}` is declared twice",
                    t.name
                )));
            }
            if !t.parameters.is_object() {
                return Err(HubError::BadRequest(format!(
                    "the parameters of tool `{}` must be a JSON Schema object",
                    t.name
                )));
            }
        }
        self.tools = tools;
        Ok(self)
    }

    /// What the front end tells the model with this message (a JSON object of at most 16 KiB
    /// serialised); stored with the user item, never shown as text.
    pub fn with_context(mut self, context: Value) -> Result<Self, HubError> {
        if !context.is_object() {
            return Err(HubError::BadRequest(
                "`context` must be a JSON object".into(),
            ));
        }
        let size = serde_json::to_vec(&context).map_or(usize::MAX, |v| v.len());
        if size > MAX_CONTEXT_BYTES {
            return Err(HubError::TooLarge(format!(
                "`context` is larger than {MAX_CONTEXT_BYTES} bytes"
            )));
        }
        super::context::check(Some(&context), &self.context_sources)?;
        self.context = Some(context);
        Ok(self)
    }

    /// Context from one of the transport's other fields (`key`: one of the source keys of
    /// `session::context`); `too_large` when the message's context outgrows 16 KiB. A null or
    /// empty value adds nothing.
    pub fn with_context_source(mut self, key: &str, value: Value) -> Result<Self, HubError> {
        let empty = match &value {
            Value::Null => true,
            Value::Object(o) => o.is_empty(),
            Value::Array(a) => a.is_empty(),
            Value::String(s) => s.is_empty(),
            _ => false,
        };
        if empty {
            return Ok(self);
        }
        self.context_sources.insert(key.to_owned(), value);
        super::context::check(self.context.as_ref(), &self.context_sources)?;
        Ok(self)
    }

    /// The model id this message picks (PROTOCOL 1.2); unknown ids are refused by the hub.
    pub fn with_model(mut self, model: Option<String>) -> Self {
        self.model = model;
        self
    }

    pub fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }

    /// The caller's identity goes with the message (the session does this for every send).
    pub(crate) fn with_identity_of(mut self, caller: &Caller) -> Self {
        self.identity = caller.identity.clone();
        self
    }

    pub(crate) fn identity(&self) -> Option<&Value> {
        self.identity.as_deref()
    }

    pub fn context_sources(&self) -> &Map<String, Value> {
        &self.context_sources
    }

    pub fn tools(&self) -> &[ToolSpec] {
        &self.tools
    }

    pub fn context(&self) -> Option<&Value> {
        self.context.as_ref()
    }

    pub fn client_msg_id(&self) -> &str {
        &self.client_msg_id
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn on_busy(&self) -> Option<BusyPolicy> {
        self.on_busy
    }
}

/// Session metadata as REST and other listings show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SessionInfo {
    pub id: String,
    pub title: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
}

impl From<&SessionRecord> for SessionInfo {
    fn from(r: &SessionRecord) -> Self {
        SessionInfo {
            id: r.id.clone(),
            title: r.title.clone(),
            created_at: r.created_at.clone(),
            updated_at: r.updated_at.clone(),
            metadata: r.metadata.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemOrder {
    #[default]
    Asc,
    Desc,
}

/// A page request over a session's items, by item ids.
#[derive(Debug, Clone, Default)]
pub struct ItemsQuery {
    pub limit: usize,
    pub before: Option<String>,
    pub after: Option<String>,
    pub order: ItemOrder,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(description = "A page of a session's items, oldest first unless asked otherwise")]
pub struct ItemsPage {
    pub items: Vec<Item>,
    pub has_more: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_send_is_checked_once_for_shape_and_size() {
        assert!(SendRequest::new("c1", "hi", None, 10).is_ok());
        assert_eq!(
            SendRequest::new("", "hi", None, 10).unwrap_err().code(),
            "bad_request"
        );
        let long_id = "x".repeat(MAX_CLIENT_MSG_ID + 1);
        assert_eq!(
            SendRequest::new(long_id, "hi", None, 10)
                .unwrap_err()
                .code(),
            "bad_request"
        );
        // Unicode scalar values, not bytes.
        assert!(SendRequest::new("c1", "é".repeat(10), None, 10).is_ok());
        assert_eq!(
            SendRequest::new("c1", "é".repeat(11), None, 10)
                .unwrap_err()
                .code(),
            "too_large"
        );
    }
}
