//! Reasoning items (PROTOCOL 1.2) as ChatKit shows thinking: a `workflow` item of type
//! `reasoning` holding one `thought` task. Streamed as the SDK streams a reasoning workflow:
//! `thread.item.added` (no task yet), `workflow.task.added` with the first text, then
//! `workflow.task.updated` with the thought's whole text so far (ChatKit has no text delta for
//! tasks), and `thread.item.done` with the final, collapsed workflow before the reply starts.
//! Listings show the same finished workflow, placed before the reply it preceded (the hub stores
//! it after: the reply's item exists from the run's start).

use serde_json::{json, Value};

use super::wire::item_updated;
use crate::domain::{Item, ItemStatus, Role};

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

/// A page of items (newest first when `desc`) with each reasoning item moved before its reply,
/// when the reply is on the page, as ChatKit showed them while they streamed.
pub(super) fn before_answers(items: &[Item], desc: bool) -> Vec<&Item> {
    let mut out: Vec<&Item> = items.iter().collect();
    if desc {
        out.reverse();
    }
    for i in 0..out.len() {
        if out[i].role != Role::Reasoning {
            continue;
        }
        let answer = out[..i]
            .iter()
            .position(|x| out[i].answer_id.as_deref() == Some(x.id.as_str()));
        if let Some(at) = answer {
            let thought = out.remove(i);
            out.insert(at, thought);
        }
    }
    if desc {
        out.reverse();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str, role: Role, answer: Option<&str>) -> Item {
        Item {
            answer_id: answer.map(str::to_owned),
            ..Item::new(
                id.into(),
                role,
                "t".into(),
                ItemStatus::Complete,
                "now".into(),
            )
        }
    }

    #[test]
    fn reasoning_goes_before_its_reply_in_either_order() {
        let page = [
            item("u", Role::User, None),
            item("a", Role::Assistant, None),
            item("r1", Role::Reasoning, Some("a")),
            item("r2", Role::Reasoning, Some("a")),
            item("r3", Role::Reasoning, Some("gone")),
        ];
        let ids = |v: Vec<&Item>| v.iter().map(|i| i.id.clone()).collect::<Vec<_>>();
        assert_eq!(
            ids(before_answers(&page, false)),
            ["u", "r1", "r2", "a", "r3"]
        );
        let mut desc = page.clone();
        desc.reverse();
        assert_eq!(
            ids(before_answers(&desc, true)),
            ["r3", "a", "r2", "r1", "u"]
        );
    }
}
