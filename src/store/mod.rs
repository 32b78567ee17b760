//! Persistence boundary: sessions, items, counters and idempotency keys behind a small trait.
//!
//! Writes are applied with [`Store::write`] (atomic, not yet durable) and made durable with
//! [`Store::barrier`]. Acknowledgements and terminal events wait for a barrier; streaming
//! checkpoints do not.

mod sled_store;

pub use sled_store::{SledStore, DEFAULT_CACHE_BYTES};

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::domain::Item;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("corrupt record: {0}")]
    Corrupt(#[from] serde_json::Error),
    #[error("the store is closed")]
    Closed,
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A session's durable record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub id: String,
    pub owner: String,
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Value>,
    pub created_at: String,
    pub created_ms: i64,
    pub updated_at: String,
    pub epoch: String,
    /// The last seq emitted in `epoch`, as of the last time the record was written.
    pub head_seq: u64,
    /// The store generation the epoch belongs to; a crash bumps the store's generation.
    pub generation: u64,
    /// Position the next item gets in the session's order.
    pub next_ord: u64,
    /// The last run, when it ended with tool calls waiting for a client's result or a
    /// person's approval (PROTOCOL 1.1): they survive a restart and can still be resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<WaitingRun>,
    /// The session's shared state document (PROTOCOL 1.2), absent until first set. It lives
    /// in the record so every write of the record carries it and a reload brings it back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<serde_json::Value>,
    /// The version of `state`: 0 before any, one more with each change.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub state_version: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// A run that ended with tool calls still waiting, and where to find them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitingRun {
    pub run_id: String,
    /// The user message the run (and its continuation) answers, and its position.
    pub reply_to: String,
    pub reply_ord: u64,
    /// Positions of the run's last turn's tool items.
    pub call_ords: Vec<u64>,
}

/// What the store remembers of one tool call, by its `call_id`: where its item is, and how a
/// client resolved it (so the same `tool_result` or `tool_approval` again gets the original
/// ack, and a different one `bad_request`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallRecord {
    pub ord: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved: Option<Resolution>,
}

/// How a tool call was resolved, and the position of its `tool.result` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolution {
    /// The resolving frame's payload in a canonical form (or `cancelled`), compared on repeats.
    pub digest: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
}

/// What an idempotency key remembers: the original acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdemRecord {
    pub item_id: String,
    pub epoch: String,
    pub seq: u64,
    /// Text of the original message, to refuse a reuse with other text.
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
}

/// An item together with its place in the session's order.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredItem {
    pub ord: u64,
    pub item: Item,
}

/// One atomic write.
#[derive(Debug, Default)]
pub struct WriteBatch {
    pub session: Option<SessionRecord>,
    pub items: Vec<StoredItem>,
    pub idem: Vec<(String, String, IdemRecord)>,
    /// (session, ord) of items that start streaming: recovered as `interrupted` after a crash.
    pub streaming_started: Vec<(String, u64)>,
    /// (session, ord) of items that stopped streaming; their text chunks are dropped.
    pub streaming_ended: Vec<(String, u64)>,
    /// Text a streaming item gained since its last checkpoint (append-only, so a checkpoint
    /// costs the new text, not the whole reply).
    pub text_chunks: Vec<TextChunk>,
    /// (session, ord, item id) of items to delete (ChatKit's retry drops later items).
    pub removed_items: Vec<(String, u64, String)>,
    /// (session, item id, kind) of user feedback on items (ChatKit `items.feedback`).
    pub feedback: Vec<(String, String, String)>,
    /// (session, call id, record) of tool calls.
    pub calls: Vec<(String, String, CallRecord)>,
}

/// A piece of a streaming item's text, `n`-th since the run started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextChunk {
    pub session: String,
    pub ord: u64,
    pub n: u32,
    pub text: String,
}

/// Which slice of a session's items to read.
#[derive(Debug, Clone, Default)]
pub struct ItemRange {
    /// Only items before this position (exclusive).
    pub before: Option<u64>,
    /// Only items after this position (exclusive).
    pub after: Option<u64>,
    pub limit: usize,
    /// Newest first instead of oldest first.
    pub descending: bool,
}

/// What start-up recovery found.
#[derive(Debug, Clone, Default)]
pub struct Recovery {
    pub clean: bool,
    pub generation: u64,
    pub interrupted_items: usize,
}

/// The hub's persistence. Implemented by [`SledStore`]; tests may bring their own.
pub trait Store: Send + Sync + 'static {
    /// Start-up work: record whether the last shutdown was clean, bump the generation if it was
    /// not, and turn items left `streaming` (or tool items left `running`) into `interrupted`.
    fn recover(&self) -> StoreResult<Recovery>;
    fn generation(&self) -> u64;
    fn load_session(&self, id: &str) -> StoreResult<Option<SessionRecord>>;
    /// Sessions of `owner`, newest first, strictly older than `before`; and whether more exist.
    fn list_sessions(
        &self,
        owner: &str,
        before: Option<&SessionRecord>,
        limit: usize,
    ) -> StoreResult<(Vec<SessionRecord>, bool)>;
    fn delete_session(&self, record: &SessionRecord) -> StoreResult<()>;
    fn write(&self, batch: WriteBatch) -> StoreResult<()>;
    fn item_ord(&self, session: &str, item_id: &str) -> StoreResult<Option<u64>>;
    fn get_item(&self, session: &str, ord: u64) -> StoreResult<Option<Item>>;
    /// Items in order, and whether more exist beyond the page in the reading direction.
    fn list_items(&self, session: &str, range: &ItemRange) -> StoreResult<(Vec<StoredItem>, bool)>;
    fn get_idem(&self, session: &str, client_msg_id: &str) -> StoreResult<Option<IdemRecord>>;
    /// What is known of the tool call `call_id`.
    fn get_call(&self, session: &str, call_id: &str) -> StoreResult<Option<CallRecord>>;
    /// The feedback kind stored for an item (`positive` / `negative`), if any.
    fn feedback(&self, session: &str, item_id: &str) -> StoreResult<Option<String>>;
    /// Record that the process is stopping cleanly (epochs may survive the restart).
    fn mark_clean_shutdown(&self) -> StoreResult<()>;
    /// Flush and stop background work; barriers after this return at once. Called last at
    /// shutdown so a restart in the same process can open the same directory.
    fn close(&self) -> StoreResult<()>;
    /// Make everything written so far durable (flush plus fsync). Concurrent callers share one
    /// flush.
    fn barrier(&self) -> BoxFuture<'static, StoreResult<()>>;
}
