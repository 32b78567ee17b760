//! The agent boundary: what a session actor asks of a model, and what it gets back.
//!
//! A run is one call to [`Agent::stream`]. The returned stream yields text deltas and ends with
//! exactly one [`AgentChunk::Finished`] on success, or an [`AgentError`]. Dropping the stream
//! cancels the run: an implementation must stop its upstream work (close the HTTP request) when
//! its stream is dropped.

pub mod models;
pub mod openai;
pub mod scripted;

pub use crate::domain::{FinishReason, Usage};
use crate::domain::{Item, ToolSpec};
use futures::stream::BoxStream;
pub use models::ModelList;

/// One piece of a streamed reply.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentChunk {
    /// Text to append to the reply, fanned out as `run.delta`.
    Delta(String),
    /// Reasoning text the model streamed before (or between) its reply: a reasoning item's
    /// next piece, fanned out as `reasoning.delta`, never part of the reply (PROTOCOL 1.2).
    Reasoning(String),
    /// The model started a tool call. `call_id` is the model's id for it (the agent makes one
    /// up when the model gives none); ids are unique within the turn.
    ToolCallStarted { call_id: String, name: String },
    /// The next fragment of a started call's arguments (JSON text), in order; the fragments
    /// concatenate to the arguments.
    ToolCallDelta { call_id: String, arguments: String },
    /// Token usage, when the upstream reports it.
    Usage(Usage),
    /// The turn is over (`ToolCalls`: it ended with the calls started above). Nothing follows.
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
    /// The conversation so far, oldest first: user, assistant and tool items. The turn answers
    /// the last user message, or (a later turn of a run, a continuation) the tool results
    /// after it. Assistant items may be `cancelled`, `failed` or `interrupted` with partial
    /// text; every tool item has a final status and its output (a denied, cancelled or
    /// interrupted call says so).
    pub history: Vec<Item>,
    /// The tools the model may call in this turn: the hub's server tools and the client tools
    /// of the message being answered.
    pub tools: Vec<ToolSpec>,
    /// The model id the run uses (PROTOCOL 1.2, "Model choice"): the one its user message
    /// picked, resolved against [`Agent::models`] (the session always sets it; `None` means
    /// the default).
    pub model: Option<String>,
}

pub type AgentStream = BoxStream<'static, Result<AgentChunk, AgentError>>;

/// A model the hub can run. Held as `Arc<dyn Agent>` in the hub state.
pub trait Agent: Send + Sync + 'static {
    /// Start a reply. Must not block; all work happens as the stream is polled.
    fn stream(&self, request: AgentRequest) -> AgentStream;

    /// The model ids a message may pick, and the default. An agent with one model lists it
    /// under the id `default` unless it says otherwise.
    fn models(&self) -> ModelList {
        ModelList::single("default")
    }
}
