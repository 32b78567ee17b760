//! The run lifecycle rules: start, stream, checkpoint, cancel, finish, and what starts next.

use super::{Checkpoint, Effect, PendingRun, RunState, SessionState, ToolPolicy};
use crate::domain::{new_id, now_rfc3339, FinishReason, Item, ItemStatus, Usage};
use crate::error::HubError;
use crate::session::event::{ActiveRun, EventBody, QueuedRun, RunError};
use crate::store::{StoredItem, TextChunk, WriteBatch};

/// How a run ended.
pub(super) enum Outcome {
    /// With the ids of its calls still waiting for a client or an approval, if any.
    Completed(Vec<String>),
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
        self.write_streaming(ord, &item);
        self.effects.push_back(Effect::StartAgent {
            run_id: pending.run_id.clone(),
            reply_to: pending.reply_to.clone(),
            reply_ord: pending.reply_ord,
            until_ord: ord,
            client_tools: pending.client_tools.clone(),
        });
        let item_id = item.id.clone();
        self.active = Some(RunState {
            run_id: pending.run_id.clone(),
            item,
            ord,
            checkpoint: Checkpoint::default(),
            reply_to: pending.reply_to.clone(),
            reply_ord: pending.reply_ord,
            client_tools: pending.client_tools,
            calls: Vec::new(),
            turns: 1,
            in_tools: false,
            reasoning: None,
        });
        self.emit(EventBody::RunStarted {
            run_id: pending.run_id,
            item_id,
            reply_to: pending.reply_to,
            continues: pending.continues,
        });
    }

    /// Text from the agent: appended to the item and fanned out as `run.delta`.
    pub(crate) fn on_delta(&mut self, text: String) {
        if self.active.is_none() || text.is_empty() {
            return;
        }
        // The reply begins: the turn's reasoning is over.
        self.end_reasoning(ItemStatus::Complete);
        let run = self.active.as_mut().expect("checked above");
        run.item.text.push_str(&text);
        let body = EventBody::RunDelta {
            run_id: run.run_id.clone(),
            item_id: run.item.id.clone(),
            text,
        };
        self.emit(body);
    }

    /// The model id the active run's current turn uses (PROTOCOL 1.2): kept on its assistant
    /// item.
    pub(crate) fn on_model(&mut self, model: String) {
        if let Some(run) = self.active.as_mut() {
            run.item.model = Some(model);
        }
    }

    pub(crate) fn on_usage(&mut self, usage: Usage) {
        if let Some(run) = self.active.as_mut() {
            run.item.usage = Some(usage);
        }
    }

    /// The model's turn finished: a turn that called tools goes on with them; otherwise the
    /// item completes (saying so when the model hit its length limit) and so does the run.
    pub(crate) fn on_finished(&mut self, reason: FinishReason, tools: &dyn ToolPolicy) {
        let Some(run) = self.active.as_mut() else {
            return;
        };
        if run.in_tools {
            return;
        }
        self.end_reasoning(ItemStatus::Complete);
        let run = self.active.as_mut().expect("checked above");
        run.item.status = ItemStatus::Complete;
        if reason == FinishReason::Length {
            run.item.finish_reason = Some(reason);
        }
        if !run.calls.is_empty() {
            self.end_turn_with_calls(tools);
            return;
        }
        self.finish(Outcome::Completed(Vec::new()), Next::Queued);
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
        let run = self.active.as_mut()?;
        match run
            .checkpoint
            .take(&self.record.id, run.ord, &run.item.text)
        {
            Some(chunk) => Some(chunk),
            None => self.take_reasoning_checkpoint(),
        }
    }

    /// The checkpoint writer had no room: the text goes with the next checkpoint instead.
    pub(crate) fn return_checkpoint(&mut self, chunk: TextChunk) {
        if self.return_reasoning_checkpoint(&chunk) {
            return;
        }
        if let Some(run) = self.active.as_mut() {
            run.checkpoint.give_back(run.ord, &chunk);
        }
    }

    /// End the active run: its item durably stored, then its terminal event, then (with
    /// `Next::Queued`, unless stopping) the next queued run.
    pub(super) fn finish(&mut self, outcome: Outcome, next: Next) {
        let Some(mut run) = self.active.take() else {
            return;
        };
        self.effects.push_back(Effect::StopAgent);
        if let Some(thinking) = run.reasoning.take() {
            self.close_thinking(thinking, super::reasoning::ended_status(run.item.status));
        }
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
            Outcome::Completed(pending_tool_calls) => (
                "completed",
                EventBody::RunCompleted {
                    run_id: run.run_id,
                    item: run.item,
                    pending_tool_calls,
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
                // A message queued while this run streamed answers a new user message: the
                // calls the run left waiting are cancelled first, as for a message sent while
                // they wait (PROTOCOL 1.1).
                if pending.continues.is_none() && self.waiting.is_some() {
                    self.cancel_waiting();
                }
                self.start_run(pending);
            }
        }
    }

    /// Cancel the active run (no `run_id`, or its id) or a queued one (its id). A queued run
    /// leaves the queue with `run.cancelled` (`reply_to`, `item: null`); its message stays.
    /// With no active run, the calls the last run left waiting (no `run_id`, or that run's id)
    /// are cancelled, each with `tool.result`, and no continuation follows.
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
        let waiting_matches = self
            .waiting
            .as_ref()
            .is_some_and(|w| run_id.is_none_or(|r| r == w.run_id));
        if self.active.is_none() && waiting_matches {
            self.cancel_waiting();
            return Ok(());
        }
        Err(HubError::NoActiveRun)
    }

    /// Stop the active run's agent and its tool calls (each told with `tool.result`) and keep
    /// its partial text as a `cancelled` item.
    pub(super) fn cancel_active(&mut self, next: Next) {
        let Some(run) = self.active.as_mut() else {
            return;
        };
        if run.item.status == ItemStatus::Streaming {
            run.item.status = ItemStatus::Cancelled;
        }
        self.end_active_calls(ItemStatus::Cancelled);
        self.finish(Outcome::Cancelled, next);
    }

    /// The drain timeout passed at shutdown: the active run ends `run.failed` with code
    /// `interrupted` (retryable) and its item `interrupted`.
    pub(crate) fn interrupt_for_shutdown(&mut self) {
        if self.active.is_none() {
            return;
        }
        self.end_active_calls(ItemStatus::Interrupted);
        let run = self.active.as_mut().expect("checked above");
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
            reasoning: self.live_reasoning().cloned(),
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

    /// A stored item as a listing shows it now: the streaming item with its current text, a
    /// tool call with its current arguments and status.
    pub(crate) fn live_item(&self, stored: Item) -> Item {
        let Some(a) = &self.active else {
            return stored;
        };
        if a.item.id == stored.id {
            return a.item.clone();
        }
        if let Some(r) = self.live_reasoning().filter(|r| r.id == stored.id) {
            return r.clone();
        }
        match a.calls.iter().find(|c| c.item.id == stored.id) {
            Some(c) => c.item.clone(),
            None => stored,
        }
    }
}
