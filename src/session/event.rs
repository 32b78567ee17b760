//! The one event model every transport renders: items, sequenced events, snapshots, positions.
//!
//! A sequenced event is serialised to JSON exactly once, when the actor creates it; every
//! subscriber and every replay gets the same bytes (PROTOCOL.md: "An event is the same JSON
//! object, `ts` included, for every subscriber and in every replay").

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::agent::{FinishReason, Usage};

#[derive(utoipa::ToSchema)]
/// Who wrote an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    User,
    Assistant,
}

#[derive(utoipa::ToSchema)]
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

#[derive(utoipa::ToSchema)]
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

/// A point in a session's event stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub epoch: String,
    pub seq: u64,
}

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
    },
    #[serde(rename = "run.delta")]
    RunDelta {
        run_id: String,
        item_id: String,
        text: String,
    },
    #[serde(rename = "run.completed")]
    RunCompleted { run_id: String, item: Item },
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
    #[serde(rename = "session.updated")]
    SessionUpdated { title: Option<String> },
    /// Items dropped from the history (a retry after an earlier message), oldest first.
    #[serde(rename = "items.removed")]
    ItemsRemoved { item_ids: Vec<String> },
    #[serde(rename = "session.deleted")]
    SessionDeleted {},
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
            EventBody::SessionUpdated { .. } => "session.updated",
            EventBody::ItemsRemoved { .. } => "items.removed",
            EventBody::SessionDeleted {} => "session.deleted",
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
            | EventBody::RunFailed { run_id, .. } => Some(run_id),
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

/// Current time as Unix milliseconds.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Current time as RFC 3339 UTC with millisecond precision.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
