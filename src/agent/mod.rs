//! The agent boundary: what a session actor asks of a model, and what it gets back.
//!
//! A run is one call to [`Agent::stream`]. The returned stream yields text deltas and ends with
//! exactly one [`AgentChunk::Finished`] on success, or an [`AgentError`]. Dropping the stream
//! cancels the run: an implementation must stop its upstream work (close the HTTP request) when
//! its stream is dropped.

pub mod openai;
pub mod scripted;

use crate::domain::Item;
pub use crate::domain::{FinishReason, Usage};
use futures::stream::BoxStream;

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
