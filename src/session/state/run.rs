//! The run lifecycle rules: start, stream, checkpoint, cancel, finish, and what starts next.

use super::{Effect, PendingRun, RunState, SessionState};
use crate::domain::{new_id, now_rfc3339, FinishReason, Item, ItemStatus, Usage};
use crate::error::HubError;
use crate::session::event::{ActiveRun, EventBody, QueuedRun, RunError};
use crate::store::{StoredItem, TextChunk, WriteBatch};

/// How a run ended.
enum Outcome {
    Completed,
    Cancelled,
    Failed(RunError),
}

/// What may start once the active run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Next {
    /// The next queued run (unless the session is stopping).
    Queued,
    /// Nothing: the caller starts a run of its own (an `interrupt`) or the session is going.
    Hold,
}

impl SessionState {
    /// Start `pending` now: its assistant item is stored as streaming (recovered as
    /// `interrupted` after a crash), the agent starts, and `run.started` announces the item.
    pub(super) fn start_run(&mut self, pending: PendingRun) {
        let ord = self.record.next_ord;
        self.record.next_ord += 1;
        let item = Item::streaming_reply(
            new_id("itm"),
            pending.run_id.clone(),
            pending.reply_to.clone(),
            now_rfc3339(),
        );
        self.write(WriteBatch {
            session: Some(self.record.clone()),
            items: vec![StoredItem {
                ord,
                item: item.clone(),
            }],
            streaming_started: vec![(self.record.id.clone(), ord)],
            ..Default::default()
        });
        self.effects.push_back(Effect::StartAgent {
            run_id: pending.run_id.clone(),
            reply_ord: pending.reply_ord,
        });
        let item_id = item.id.clone();
        self.active = Some(RunState {
            run_id: pending.run_id.clone(),
            item,
            ord,
            checkpointed: 0,
            chunks: 0,
        });
        self.emit(EventBody::RunStarted {
            run_id: pending.run_id,
            item_id,
            reply_to: pending.reply_to,
        });
    }

    /// Text from the agent: appended to the item and fanned out as `run.delta`.
    pub(crate) fn on_delta(&mut self, text: String) {
        let Some(run) = self.active.as_mut() else {
            return;
        };
        if text.is_empty() {
            return;
        }
        run.item.text.push_str(&text);
        let body = EventBody::RunDelta {
            run_id: run.run_id.clone(),
            item_id: run.item.id.clone(),
            text,
        };
        self.emit(body);
    }

    pub(crate) fn on_usage(&mut self, usage: Usage) {
        if let Some(run) = self.active.as_mut() {
            run.item.usage = Some(usage);
        }
    }

    /// The agent finished: the item completes (saying so when the model hit its length limit).
    pub(crate) fn on_finished(&mut self, reason: FinishReason) {
        let Some(run) = self.active.as_mut() else {
            return;
        };
        run.item.status = ItemStatus::Complete;
        if reason == FinishReason::Length {
            run.item.finish_reason = Some(reason);
        }
        self.finish(Outcome::Completed, Next::Queued);
    }

    /// The agent failed: the partial text is kept as a `failed` item with the error's code.
    pub(crate) fn on_failed(&mut self, error: RunError) {
        let Some(run) = self.active.as_mut() else {
            return;
        };
        run.item.status = ItemStatus::Failed;
        run.item.error_code = Some(error.code.clone());
        self.finish(Outcome::Failed(error), Next::Queued);
    }

    /// The new text since the last checkpoint, if any (no barrier: a crash keeps what the
    /// checkpoints wrote). Append-only, so a checkpoint costs the new text, not the whole item.
    pub(crate) fn take_checkpoint(&mut self) -> Option<TextChunk> {
        let session = self.record.id.clone();
        let run = self.active.as_mut()?;
        if run.checkpointed == run.item.text.len() {
            return None;
        }
        let chunk = TextChunk {
            session,
            ord: run.ord,
            n: run.chunks,
            text: run.item.text[run.checkpointed..].to_owned(),
        };
        run.checkpointed = run.item.text.len();
        run.chunks += 1;
        Some(chunk)
    }

    /// The checkpoint writer had no room: the text goes with the next checkpoint instead.
    pub(crate) fn return_checkpoint(&mut self, chunk: TextChunk) {
        if let Some(run) = self.active.as_mut() {
            if run.ord == chunk.ord && run.chunks == chunk.n + 1 {
                run.checkpointed -= chunk.text.len();
                run.chunks -= 1;
            }
        }
    }

    /// End the active run: its item durably stored, then its terminal event, then (with
    /// `Next::Queued`, unless stopping) the next queued run.
    fn finish(&mut self, outcome: Outcome, next: Next) {
        let Some(run) = self.active.take() else {
            return;
        };
        self.effects.push_back(Effect::StopAgent);
        self.effects
            .push_back(Effect::SettleCheckpoints { ord: run.ord });
        self.write(WriteBatch {
            session: Some(self.record.clone()),
            items: vec![StoredItem {
                ord: run.ord,
                item: run.item.clone(),
            }],
            streaming_ended: vec![(self.record.id.clone(), run.ord)],
            ..Default::default()
        });
        self.effects.push_back(Effect::Barrier);
        let (label, body) = match outcome {
            Outcome::Completed => (
                "completed",
                EventBody::RunCompleted {
                    run_id: run.run_id,
                    item: run.item,
                },
            ),
            Outcome::Cancelled => (
                "cancelled",
                EventBody::RunCancelled {
                    run_id: run.run_id,
                    reply_to: None,
                    item: Some(run.item),
                },
            ),
            Outcome::Failed(error) => (
                "failed",
                EventBody::RunFailed {
                    run_id: run.run_id,
                    item: run.item,
                    error,
                },
            ),
        };
        self.effects.push_back(Effect::RunEnded(label));
        self.emit(body);
        if next == Next::Queued && !self.stopping {
            if let Some(pending) = self.queue.pop_front() {
                self.start_run(pending);
            }
        }
    }

    /// Cancel the active run (no `run_id`, or its id) or a queued one (its id). A queued run
    /// leaves the queue with `run.cancelled` (`reply_to`, `item: null`); its message stays.
    pub(crate) fn cancel(&mut self, run_id: Option<&str>) -> Result<(), HubError> {
        let active_matches = match (&self.active, run_id) {
            (Some(_), None) => true,
            (Some(a), Some(r)) => a.run_id == r,
            (None, _) => false,
        };
        if active_matches {
            self.cancel_active(Next::Queued);
            return Ok(());
        }
        if let Some(r) = run_id {
            if let Some(pos) = self.queue.iter().position(|q| q.run_id == r) {
                let q = self.queue.remove(pos).expect("position is in range");
                self.emit(EventBody::RunCancelled {
                    run_id: q.run_id,
                    reply_to: Some(q.reply_to),
                    item: None,
                });
                return Ok(());
            }
        }
        Err(HubError::NoActiveRun)
    }

    /// Stop the active run's agent and keep its partial text as a `cancelled` item.
    pub(super) fn cancel_active(&mut self, next: Next) {
        let Some(run) = self.active.as_mut() else {
            return;
        };
        run.item.status = ItemStatus::Cancelled;
        self.finish(Outcome::Cancelled, next);
    }

    /// The drain timeout passed at shutdown: the active run ends `run.failed` with code
    /// `interrupted` (retryable) and its item `interrupted`.
    pub(crate) fn interrupt_for_shutdown(&mut self) {
        let Some(run) = self.active.as_mut() else {
            return;
        };
        run.item.status = ItemStatus::Interrupted;
        run.item.error_code = Some("interrupted".into());
        let error = RunError {
            code: "interrupted".into(),
            message: "the hub is shutting down".into(),
            retryable: true,
        };
        self.finish(Outcome::Failed(error), Next::Hold);
    }

    /// The streaming run as a snapshot shows it.
    pub(crate) fn active_view(&self) -> Option<ActiveRun> {
        self.active.as_ref().map(|a| ActiveRun {
            run_id: a.run_id.clone(),
            item_id: a.item.id.clone(),
            reply_to: a.item.reply_to.clone().unwrap_or_default(),
            text: a.item.text.clone(),
        })
    }

    pub(crate) fn queued_view(&self) -> Vec<QueuedRun> {
        self.queue
            .iter()
            .map(|q| QueuedRun {
                run_id: q.run_id.clone(),
                reply_to: q.reply_to.clone(),
            })
            .collect()
    }

    /// A stored item as a listing shows it now: the streaming item with its current text.
    pub(crate) fn live_item(&self, stored: Item) -> Item {
        match &self.active {
            Some(a) if a.item.id == stored.id => a.item.clone(),
            _ => stored,
        }
    }
}
