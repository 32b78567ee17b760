//! Items: the messages of a session, as stored, listed and carried by events.

use serde::{Deserialize, Serialize};

/// Who wrote an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    User,
    Assistant,
    /// One tool call and its result (PROTOCOL 1.1).
    Tool,
    /// What a reasoning model thought before a turn's reply (PROTOCOL 1.2): shown, stored,
    /// never sent back to the model.
    Reasoning,
}

/// Lifecycle of an item (PROTOCOL.md, the session model).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ItemStatus {
    Complete,
    /// Text (or a tool call's arguments) still arriving.
    Streaming,
    Cancelled,
    /// A run's error, or a tool that reported an error or timed out.
    Failed,
    /// Cut by a crash or a shutdown.
    Interrupted,
    /// A server tool is executing.
    Running,
    /// A client tool call waiting for a front end's result.
    Pending,
    /// A server tool call waiting for a person's approval.
    AwaitingApproval,
    /// A call a person denied: it never ran.
    Denied,
}

impl ItemStatus {
    /// A tool call waiting for someone outside the hub (a client's result or an approval):
    /// it survives a crash and can still be resolved.
    pub fn is_waiting(self) -> bool {
        matches!(self, ItemStatus::Pending | ItemStatus::AwaitingApproval)
    }
}

/// Token accounting reported by an upstream model, stored on the assistant item.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
}

/// Why a reply ended normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// The model finished its reply.
    Stop,
    /// The reply was cut at the model's length limit; the item completes and says so.
    Length,
    /// The model's turn ended with tool calls: their results go back to it.
    ToolCalls,
}

/// A user or assistant message, as stored and as sent in events and listings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
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
    /// A user item's context (a JSON object), given to the model with the message and never
    /// shown as text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<serde_json::Value>,
    /// A user item's context from everywhere but native `send.context` (PROTOCOL 1.2,
    /// "Context"): a JSON object with the keys `chatkit_metadata`, `quoted_text`, `tags`,
    /// `agui_context`, `forwarded_props`, `session_metadata`, `identity`, each present only
    /// when its source gave something. Given to the model with `context`, never shown as text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_sources: Option<serde_json::Value>,
    /// The model id (PROTOCOL 1.2, "Model choice"): on a user item the one its runs use, on
    /// an assistant item the one that wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// A user item's client tools: what its run and continuations may call on the front end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<ToolSpec>>,
    /// A tool item's call, when the item is one (`role: "tool"`).
    #[serde(default, flatten)]
    pub call: Option<ToolCall>,
    /// A reasoning item's turn: the assistant item whose reply the reasoning preceded. (Not
    /// `parent_id`: a tool item's flattened call owns that key when items are read back.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer_id: Option<String>,
}

/// A tool the model may call: a name (`[A-Za-z0-9_-]{1,64}`), what it does, and a JSON Schema
/// object for its arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ToolSpec {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub parameters: serde_json::Value,
}

/// Who runs a tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Executor {
    /// The hub (an MCP tool).
    Server,
    /// A front end.
    Client,
}

/// The call a tool item stands for, and its result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ToolCall {
    /// The assistant item of the model turn that made the call.
    pub parent_id: String,
    /// The id the model gave the call (made up when it gave none).
    pub call_id: String,
    pub name: String,
    /// The arguments' JSON text, as the model wrote it (or as an approval replaced it).
    pub arguments: String,
    pub executor: Executor,
    /// The result, absent until there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
}

impl Item {
    /// An item with no optional field set.
    pub fn new(
        id: String,
        role: Role,
        text: String,
        status: ItemStatus,
        created_at: String,
    ) -> Self {
        Item {
            id,
            role,
            text,
            status,
            created_at,
            client_msg_id: None,
            run_id: None,
            reply_to: None,
            finish_reason: None,
            usage: None,
            error_code: None,
            context: None,
            context_sources: None,
            model: None,
            tools: None,
            call: None,
            answer_id: None,
        }
    }

    /// A complete user message.
    pub fn user(id: String, text: String, client_msg_id: String, created_at: String) -> Self {
        Item {
            client_msg_id: Some(client_msg_id),
            ..Item::new(id, Role::User, text, ItemStatus::Complete, created_at)
        }
    }

    /// An empty reasoning item that starts streaming now, before the reply `answer_id` of
    /// `run_id` answering `reply_to`.
    pub fn streaming_reasoning(
        id: String,
        run_id: String,
        reply_to: String,
        answer_id: String,
        created_at: String,
    ) -> Self {
        Item {
            run_id: Some(run_id),
            reply_to: Some(reply_to),
            answer_id: Some(answer_id),
            ..Item::new(
                id,
                Role::Reasoning,
                String::new(),
                ItemStatus::Streaming,
                created_at,
            )
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
            run_id: Some(run_id),
            reply_to: Some(reply_to),
            ..Item::new(
                id,
                Role::Assistant,
                String::new(),
                ItemStatus::Streaming,
                created_at,
            )
        }
    }
}
