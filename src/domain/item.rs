//! Items: the messages of a session, as stored, listed and carried by events.

use serde::{Deserialize, Serialize};

/// Who wrote an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    User,
    Assistant,
}

/// Lifecycle of an item (PROTOCOL.md, the session model).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemStatus {
    Complete,
    Streaming,
    Cancelled,
    Failed,
    Interrupted,
}

/// Token accounting reported by an upstream model, stored on the assistant item.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
}

/// Why a reply ended normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// The model finished its reply.
    Stop,
    /// The reply was cut at the model's length limit; the item completes and says so.
    Length,
}

/// A user or assistant message, as stored and as sent in events and listings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub id: String,
    pub role: Role,
    pub text: String,
    pub status: ItemStatus,
    /// RFC 3339 UTC.
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_msg_id: Option<String>,
    /// The run that produced an assistant item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// The user item an assistant item answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    /// Set when the model stopped at its length limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<FinishReason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// Error code of a failed run, kept with the partial text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
}

impl Item {
    /// A complete user message.
    pub fn user(id: String, text: String, client_msg_id: String, created_at: String) -> Self {
        Item {
            id,
            role: Role::User,
            text,
            status: ItemStatus::Complete,
            created_at,
            client_msg_id: Some(client_msg_id),
            run_id: None,
            reply_to: None,
            finish_reason: None,
            usage: None,
            error_code: None,
        }
    }

    /// An empty assistant item that starts streaming now, for `run_id` answering `reply_to`.
    pub fn streaming_reply(
        id: String,
        run_id: String,
        reply_to: String,
        created_at: String,
    ) -> Self {
        Item {
            id,
            role: Role::Assistant,
            text: String::new(),
            status: ItemStatus::Streaming,
            created_at,
            client_msg_id: None,
            run_id: Some(run_id),
            reply_to: Some(reply_to),
            finish_reason: None,
            usage: None,
            error_code: None,
        }
    }
}
