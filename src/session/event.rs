//! The one event model every transport renders: items, sequenced events, snapshots, positions.
//!
//! A sequenced event is serialised to JSON exactly once, when the actor creates it; every
//! subscriber and every replay gets the same bytes (PROTOCOL.md: "An event is the same JSON
//! object, `ts` included, for every subscriber and in every replay").

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::domain::{Item, Position};

/// The error attached to `run.failed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunError {
    pub code: String,
    pub message: String,
    pub retryable: bool,
}

/// The body of a sequenced event, tagged by `type` on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum EventBody {
    #[serde(rename = "message")]
    Message { item: Item },
    #[serde(rename = "run.queued")]
    RunQueued { run_id: String, reply_to: String },
    #[serde(rename = "run.started")]
    RunStarted {
        run_id: String,
        item_id: String,
        reply_to: String,
        /// The run whose resolved tool calls this continuation run answers.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        continues: Option<String>,
    },
    #[serde(rename = "run.delta")]
    RunDelta {
        run_id: String,
        item_id: String,
        text: String,
    },
    #[serde(rename = "run.completed")]
    RunCompleted {
        run_id: String,
        item: Item,
        /// Calls of this run waiting for a client's result or an approval.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pending_tool_calls: Vec<String>,
    },
    #[serde(rename = "run.cancelled")]
    RunCancelled {
        run_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reply_to: Option<String>,
        item: Option<Item>,
    },
    #[serde(rename = "run.failed")]
    RunFailed {
        run_id: String,
        item: Item,
        error: RunError,
    },
    /// A later model turn's assistant item (the first one is announced by `run.started`).
    #[serde(rename = "item.started")]
    ItemStarted { run_id: String, item: Item },
    /// An assistant item that is not the run's last one ended.
    #[serde(rename = "item.completed")]
    ItemCompleted { run_id: String, item: Item },
    /// The model started a tool call; its arguments stream as `tool.delta`.
    #[serde(rename = "tool.started")]
    ToolStarted { run_id: String, item: Item },
    #[serde(rename = "tool.delta")]
    ToolDelta {
        run_id: String,
        item_id: String,
        arguments: String,
    },
    /// The call's arguments are complete; its status says what happens next.
    #[serde(rename = "tool.called")]
    ToolCalled { run_id: String, item: Item },
    /// The call's result (or its end: denied, cancelled, interrupted).
    #[serde(rename = "tool.result")]
    ToolResult { run_id: String, item: Item },
    /// Reasoning text of a streaming reasoning item (PROTOCOL 1.2): not part of any reply, so
    /// not a `run.delta`.
    #[serde(rename = "reasoning.delta")]
    ReasoningDelta {
        run_id: String,
        item_id: String,
        text: String,
    },
    #[serde(rename = "session.updated")]
    SessionUpdated { title: Option<String> },
    /// Items dropped from the history (a retry after an earlier message), oldest first.
    #[serde(rename = "items.removed")]
    ItemsRemoved { item_ids: Vec<String> },
    #[serde(rename = "session.deleted")]
    SessionDeleted {},
    /// The whole shared state document was replaced (PROTOCOL 1.2).
    #[serde(rename = "state.snapshot")]
    StateSnapshot {
        state: serde_json::Value,
        version: u64,
    },
    /// The shared state document changed by an RFC 6902 JSON Patch (PROTOCOL 1.2).
    #[serde(rename = "state.delta")]
    StateDelta {
        patch: serde_json::Value,
        version: u64,
    },
}

impl EventBody {
    /// The wire `type` of this event.
    pub fn kind(&self) -> &'static str {
        match self {
            EventBody::Message { .. } => "message",
            EventBody::RunQueued { .. } => "run.queued",
            EventBody::RunStarted { .. } => "run.started",
            EventBody::RunDelta { .. } => "run.delta",
            EventBody::RunCompleted { .. } => "run.completed",
            EventBody::RunCancelled { .. } => "run.cancelled",
            EventBody::RunFailed { .. } => "run.failed",
            EventBody::ItemStarted { .. } => "item.started",
            EventBody::ItemCompleted { .. } => "item.completed",
            EventBody::ToolStarted { .. } => "tool.started",
            EventBody::ToolDelta { .. } => "tool.delta",
            EventBody::ToolCalled { .. } => "tool.called",
            EventBody::ToolResult { .. } => "tool.result",
            EventBody::ReasoningDelta { .. } => "reasoning.delta",
            EventBody::SessionUpdated { .. } => "session.updated",
            EventBody::ItemsRemoved { .. } => "items.removed",
            EventBody::SessionDeleted {} => "session.deleted",
            EventBody::StateSnapshot { .. } => "state.snapshot",
            EventBody::StateDelta { .. } => "state.delta",
        }
    }

    /// The run this event belongs to, if any.
    pub fn run_id(&self) -> Option<&str> {
        match self {
            EventBody::RunQueued { run_id, .. }
            | EventBody::RunStarted { run_id, .. }
            | EventBody::RunDelta { run_id, .. }
            | EventBody::RunCompleted { run_id, .. }
            | EventBody::RunCancelled { run_id, .. }
            | EventBody::RunFailed { run_id, .. }
            | EventBody::ItemStarted { run_id, .. }
            | EventBody::ItemCompleted { run_id, .. }
            | EventBody::ToolStarted { run_id, .. }
            | EventBody::ToolDelta { run_id, .. }
            | EventBody::ToolCalled { run_id, .. }
            | EventBody::ToolResult { run_id, .. }
            | EventBody::ReasoningDelta { run_id, .. } => Some(run_id),
            _ => None,
        }
    }

    /// True for the three events that end a run.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            EventBody::RunCompleted { .. }
                | EventBody::RunCancelled { .. }
                | EventBody::RunFailed { .. }
        )
    }
}

/// A sequenced event: the body plus its place in the session's stream, and its JSON rendering.
#[derive(Debug, Clone)]
pub struct Event {
    pub session: String,
    pub epoch: String,
    pub seq: u64,
    /// Server time, Unix milliseconds.
    pub ts: i64,
    pub body: EventBody,
    /// The complete wire object, rendered once.
    pub json: Bytes,
}

#[derive(Serialize)]
struct EventWire<'a> {
    #[serde(flatten)]
    body: &'a EventBody,
    session: &'a str,
    epoch: &'a str,
    seq: u64,
    ts: i64,
}

impl Event {
    pub fn new(session: &str, epoch: &str, seq: u64, ts: i64, body: EventBody) -> Self {
        let json = serde_json::to_vec(&EventWire {
            body: &body,
            session,
            epoch,
            seq,
            ts,
        })
        .expect("event serialisation cannot fail");
        Event {
            session: session.to_owned(),
            epoch: epoch.to_owned(),
            seq,
            ts,
            body,
            json: Bytes::from(json),
        }
    }

    pub fn position(&self) -> Position {
        Position {
            epoch: self.epoch.clone(),
            seq: self.seq,
        }
    }
}

/// The run in progress, as shown in a snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActiveRun {
    pub run_id: String,
    pub item_id: String,
    pub reply_to: String,
    pub text: String,
    /// The run's reasoning item while it streams (PROTOCOL 1.2), with its text so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<Item>,
}

/// A run waiting for the active one to end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedRun {
    pub run_id: String,
    pub reply_to: String,
}

/// The state of a session as of `seq` (PROTOCOL.md, the snapshot).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub session: String,
    pub epoch: String,
    pub seq: u64,
    pub title: Option<String>,
    pub items: Vec<Item>,
    pub has_more: bool,
    pub active_run: Option<ActiveRun>,
    pub queued: Vec<QueuedRun>,
    /// Tool items waiting for a client's result or an approval (PROTOCOL 1.1).
    pub pending_tool_calls: Vec<Item>,
    /// The shared state document as of `seq` (PROTOCOL 1.2): `null` when the session has none.
    #[serde(default)]
    pub state: Option<serde_json::Value>,
    #[serde(default)]
    pub state_version: u64,
}

impl Snapshot {
    /// About what a snapshot takes on the wire besides its items and active text.
    pub const FIXED_BYTES: usize = 256;

    /// About what one item takes in a snapshot on the wire.
    pub fn item_bytes(item: &Item) -> usize {
        item.text.len() + 160
    }

    /// About what the whole snapshot takes on the wire (for the connection queue's bound).
    pub fn approx_bytes(&self) -> usize {
        let items = self.items.iter().chain(&self.pending_tool_calls);
        Self::FIXED_BYTES
            + items.map(Self::item_bytes).sum::<usize>()
            + self.active_run.as_ref().map_or(0, |a| {
                a.text.len() + a.reasoning.as_ref().map_or(0, Self::item_bytes)
            })
            + self.state.as_ref().map_or(0, |s| s.to_string().len())
    }
}

/// The acknowledgement of a `tool_result` or `tool_approval`: the position of the call's
/// `tool.result` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ToolAck {
    pub session: String,
    pub call_id: String,
    pub epoch: String,
    pub seq: u64,
    pub duplicate: bool,
}

/// The acknowledgement of a shared-state change (`state_set`, `state_patch`, the REST route):
/// the new version and the position of the `state.snapshot` / `state.delta` announcing it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StateAck {
    pub session: String,
    pub state_version: u64,
    pub epoch: String,
    pub seq: u64,
    /// Always false: a repeated change names a stale version and gets `conflict`.
    pub duplicate: bool,
}

/// How a subscribe was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResumeKind {
    Replay,
    Snapshot,
}

#[derive(utoipa::ToSchema)]
/// The acknowledgement of a stored user message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    pub session: String,
    pub client_msg_id: String,
    pub item_id: String,
    pub epoch: String,
    pub seq: u64,
    pub duplicate: bool,
    /// The run this message started or queued (absent for a duplicate whose run is unknown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
}
