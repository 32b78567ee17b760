//! The types every room shares: ids, items, positions, usage, time. A leaf: it imports
//! nothing of the project's other rooms, so `store`, `agent`, `session` and the transports
//! can all depend on it without depending on each other.

mod item;
mod time;

pub use item::{Executor, FinishReason, Item, ItemStatus, Role, ToolCall, ToolSpec, Usage};
pub use time::{now_ms, now_rfc3339, sleep_until_opt};

use serde::{Deserialize, Serialize};

/// A point in a session's event stream: `seq` counts events within one `epoch`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub epoch: String,
    pub seq: u64,
}

/// A new opaque id with a readable prefix, time-ordered (UUID v7).
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

/// A new epoch: 16 characters of `[0-9a-f]`.
pub fn new_epoch() -> String {
    format!("{:016x}", rand::random::<u64>())
}
