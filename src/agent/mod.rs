//! The agent boundary: what a session actor asks of a model, and what it gets back.
//!
//! A run is one call to [`Agent::stream`]. The returned stream yields text deltas and ends with
//! exactly one [`AgentChunk::Finished`] on success, or an [`AgentError`]. Dropping the stream
//! cancels the run: an implementation must stop its upstream work (close the HTTP request) when
//! its stream is dropped.

pub mod openai;
pub mod scripted;

use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};

use crate::session::event::Item;

#[derive(utoipa::ToSchema)]
/// Token accounting reported by an upstream model, stored on the assistant item.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
}

#[derive(utoipa::ToSchema)]
/// Why a reply ended normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// The model finished its reply.
    Stop,
    /// The reply was cut at the model's length limit; the item completes and says so.
    Length,
}

/// One piece of a streamed reply.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentChunk {
    /// Text to append to the reply, fanned out as `run.delta`.
    Delta(String),
    /// Token usage, when the upstream reports it.
    Usage(Usage),
    /// The reply is over. Nothing follows.
    Finished(FinishReason),
}

/// A failed run, with a stable code (`upstream_unavailable`, `upstream_timeout`, ...).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct AgentError {
    pub code: String,
    pub message: String,
    pub retryable: bool,
}

impl AgentError {
    pub fn new(code: impl Into<String>, message: impl Into<String>, retryable: bool) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            retryable,
        }
    }
}

/// What a run is asked to answer.
#[derive(Debug, Clone)]
pub struct AgentRequest {
    pub session_id: String,
    pub run_id: String,
    /// The conversation so far, oldest first: user and assistant items. The last item is the
    /// user message this run replies to. Assistant items may be `cancelled`, `failed` or
    /// `interrupted` with partial text.
    pub history: Vec<Item>,
}

pub type AgentStream = BoxStream<'static, Result<AgentChunk, AgentError>>;

/// A model the hub can run. Held as `Arc<dyn Agent>` in the hub state.
pub trait Agent: Send + Sync + 'static {
    /// Start a reply. Must not block; all work happens as the stream is polled.
    fn stream(&self, request: AgentRequest) -> AgentStream;
}
