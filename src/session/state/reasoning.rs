//! Reasoning inside a model turn (PROTOCOL 1.2): the reasoning text a model streams before its
//! reply becomes a reasoning item of its own, announced by `item.started`, streamed as
//! `reasoning.delta`, checkpointed like reply text, and ended by `item.completed` with its
//! final status once the turn's reply (text or a tool call) starts, the turn finishes, or the
//! run is cancelled, fails or is interrupted. A crash brings it back `interrupted` with the
//! text the checkpoints kept. It is never part of the reply and never sent back to the model.

use super::{Checkpoint, Effect, SessionState};
use crate::domain::{new_id, now_rfc3339, Item, ItemStatus};
use crate::session::event::EventBody;
use crate::store::{StoredItem, TextChunk, WriteBatch};

/// The streaming reasoning item of the active run's current turn.
#[derive(Debug)]
pub(crate) struct Thinking {
    pub(crate) item: Item,
    pub(crate) ord: u64,
    /// How much of `item.text` the checkpoint writer has.
    checkpoint: Checkpoint,
}

impl SessionState {
    /// Reasoning text from the agent. The turn's first opens a reasoning item (stored as
    /// streaming, announced by `item.started`); each is fanned out as `reasoning.delta`.
    /// Reasoning that comes after the turn's reply began opens a new item.
    pub(crate) fn on_reasoning(&mut self, text: String) {
        let Some(run) = self.active.as_mut() else {
            return;
        };
        if text.is_empty() || run.in_tools {
            return;
        }
        if run.reasoning.is_none() {
            let item = Item::streaming_reasoning(
                new_id("itm"),
                run.run_id.clone(),
                run.reply_to.clone(),
                run.item.id.clone(),
                now_rfc3339(),
            );
            let ord = self.record.next_ord;
            self.record.next_ord += 1;
            run.reasoning = Some(Thinking {
                item: item.clone(),
                ord,
                checkpoint: Checkpoint::default(),
            });
            let run_id = run.run_id.clone();
            self.write_streaming(ord, &item);
            self.emit(EventBody::ItemStarted { run_id, item });
        }
        let run = self.active.as_mut().expect("checked above");
        let thinking = run.reasoning.as_mut().expect("opened above");
        thinking.item.text.push_str(&text);
        let body = EventBody::ReasoningDelta {
            run_id: run.run_id.clone(),
            item_id: thinking.item.id.clone(),
            text,
        };
        self.emit(body);
    }

    /// End the active run's streaming reasoning item, if there is one, with `status`: durably
    /// stored (no late checkpoint overtaking the write), then `item.completed`.
    pub(super) fn end_reasoning(&mut self, status: ItemStatus) {
        let Some(thinking) = self.active.as_mut().and_then(|r| r.reasoning.take()) else {
            return;
        };
        self.close_thinking(thinking, status);
    }

    /// [`Self::end_reasoning`] for a reasoning item already taken out of its run.
    pub(super) fn close_thinking(&mut self, thinking: Thinking, status: ItemStatus) {
        let Thinking { mut item, ord, .. } = thinking;
        item.status = status;
        self.effects.push_back(Effect::SettleCheckpoints { ord });
        self.write(WriteBatch {
            session: Some(self.record.clone()),
            items: vec![StoredItem {
                ord,
                item: item.clone(),
            }],
            streaming_ended: vec![(self.record.id.clone(), ord)],
            ..Default::default()
        });
        self.effects.push_back(Effect::Barrier);
        let run_id = item.run_id.clone().unwrap_or_default();
        self.emit(EventBody::ItemCompleted { run_id, item });
    }

    /// The new reasoning text since its last checkpoint, if any (see `take_checkpoint`).
    pub(super) fn take_reasoning_checkpoint(&mut self) -> Option<TextChunk> {
        let t = self.active.as_mut()?.reasoning.as_mut()?;
        t.checkpoint.take(&self.record.id, t.ord, &t.item.text)
    }

    /// A reasoning checkpoint the writer had no room for: its text goes with the next one.
    /// False when the chunk is not the reasoning item's last.
    pub(super) fn return_reasoning_checkpoint(&mut self, chunk: &TextChunk) -> bool {
        let Some(t) = self.active.as_mut().and_then(|r| r.reasoning.as_mut()) else {
            return false;
        };
        t.checkpoint.give_back(t.ord, chunk)
    }

    /// The streaming reasoning item as listings and snapshots show it now.
    pub(super) fn live_reasoning(&self) -> Option<&Item> {
        self.active.as_ref()?.reasoning.as_ref().map(|t| &t.item)
    }
}

/// The status a reasoning item ends with when its run ends: the status the run's assistant
/// item ends with (`complete`, `cancelled`, `failed`, `interrupted`).
pub(super) fn ended_status(assistant: ItemStatus) -> ItemStatus {
    match assistant {
        ItemStatus::Complete
        | ItemStatus::Cancelled
        | ItemStatus::Failed
        | ItemStatus::Interrupted => assistant,
        _ => ItemStatus::Cancelled,
    }
}
