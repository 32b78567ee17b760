//! Reasoning items (PROTOCOL 1.2) as ChatKit shows thinking: a `workflow` item of type
//! `reasoning` holding one `thought` task. Streamed as the SDK streams a reasoning workflow:
//! `thread.item.added` (no task yet), `workflow.task.added` with the first text, then
//! `workflow.task.updated` with the thought's whole text so far (ChatKit has no text delta for
//! tasks), and `thread.item.done` with the final, collapsed workflow before the reply starts.
//! Listings show the same finished workflow.

use serde_json::{json, Value};

use super::wire::item_updated;
use crate::domain::{Item, ItemStatus};

/// A reasoning item as a ChatKit `workflow` thread item.
pub(super) fn workflow(thread_id: &str, item: &Item) -> Value {
    let streaming = item.status == ItemStatus::Streaming;
    let tasks: Vec<Value> = (!item.text.is_empty())
        .then(|| thought(&item.text, streaming))
        .into_iter()
        .collect();
    json!({
        "id": item.id, "thread_id": thread_id, "created_at": item.created_at,
        "type": "workflow",
        "workflow": {"type": "reasoning", "tasks": tasks, "expanded": streaming},
    })
}

/// The `thought` task of a reasoning text (loading while it streams).
fn thought(text: &str, streaming: bool) -> Value {
    let indicator = if streaming { "loading" } else { "complete" };
    json!({"type": "thought", "content": text, "status_indicator": indicator})
}

/// The reasoning item a stream is showing, and its text so far.
#[derive(Default)]
pub(super) struct Thought {
    current: Option<(String, String)>,
}

impl Thought {
    /// `item.started` of a reasoning item: its empty workflow.
    pub(super) fn start(&mut self, thread_id: &str, item: &Item) -> Value {
        self.current = Some((item.id.clone(), String::new()));
        json!({"type": "thread.item.added", "item": workflow(thread_id, item)})
    }

    /// `reasoning.delta`: the thought task added (first text) or updated to its text so far.
    /// `None` for a delta of an item this stream did not see start.
    pub(super) fn delta(&mut self, item_id: &str, text: &str) -> Option<Value> {
        let (id, so_far) = self.current.as_mut().filter(|(id, _)| id == item_id)?;
        let first = so_far.is_empty();
        so_far.push_str(text);
        let kind = if first {
            "workflow.task.added"
        } else {
            "workflow.task.updated"
        };
        let update = json!({"type": kind, "task_index": 0, "task": thought(so_far, true)});
        Some(item_updated(id, update))
    }

    /// `item.completed` of a reasoning item: the final workflow.
    pub(super) fn done(&mut self, thread_id: &str, item: &Item) -> Value {
        self.current = None;
        json!({"type": "thread.item.done", "item": workflow(thread_id, item)})
    }
}
