//! Calls a run left waiting (PROTOCOL 1.1): the run ends with them, a client result or an
//! approval resolves them (`resolve.rs`), the last resolution starts a continuation run; a
//! cancel or a new message ends them instead; a restart restores them from the store.

use super::run::{Next, Outcome};
use super::{Call, Effect, PendingRun, SessionState, Waiting};
use crate::domain::{new_id, Item, ItemStatus, ToolSpec};
use crate::session::event::EventBody;
use crate::store::{CallRecord, Resolution, StoredItem, WriteBatch};

/// The digest a call resolved by cancellation keeps (any later result differs from it).
pub(super) const CANCELLED: &str = "cancelled";

impl Waiting {
    pub(super) fn has_running(&self) -> bool {
        self.calls
            .iter()
            .any(|c| c.item.status == ItemStatus::Running)
    }

    fn open(&self) -> bool {
        self.calls
            .iter()
            .any(|c| c.item.status.is_waiting() || c.item.status == ItemStatus::Running)
    }
}

impl SessionState {
    /// The run ends with calls waiting (`record.waiting` already says which): they move to
    /// `Waiting` and the run completes naming them.
    pub(super) fn end_with_waiting(&mut self) {
        let run = self.active.as_mut().expect("a run is active");
        let pending: Vec<String> = run
            .calls
            .iter()
            .filter(|c| c.item.status.is_waiting())
            .map(|c| c.call().call_id.clone())
            .collect();
        self.waiting = Some(Waiting {
            run_id: run.run_id.clone(),
            reply_to: run.reply_to.clone(),
            reply_ord: run.reply_ord,
            client_tools: run.client_tools.clone(),
            calls: std::mem::take(&mut run.calls),
            approvals: Vec::new(),
        });
        self.finish(Outcome::Completed(pending), Next::Queued);
    }

    /// Cancel every call the last run left waiting (and any approved one still running), each
    /// told with `tool.result` once durable; no continuation follows.
    pub(super) fn cancel_waiting(&mut self) {
        let batch = self.cancel_waiting_batch();
        self.write(batch);
        self.effects.push_back(Effect::Barrier);
        self.commit_cancel_waiting();
    }

    /// The waiting calls' cancellation is durable: stop the running ones, tell every one.
    pub(super) fn commit_cancel_waiting(&mut self) {
        let Some(w) = self.waiting.take() else {
            return;
        };
        self.record.waiting = None;
        let (run_id, items) = cancelled_items(&w);
        let mut running = Vec::new();
        for c in w
            .calls
            .iter()
            .filter(|c| c.item.status == ItemStatus::Running)
        {
            running.push(c.call().call_id.clone());
            self.effects.push_back(Effect::StopTool {
                call_id: c.call().call_id.clone(),
            });
        }
        for item in items {
            let call_id = &item.call.as_ref().expect("a tool item").call_id;
            if running.contains(call_id) {
                // A running call was approved, and its approval's ack waits for the call's
                // result: this `tool.result` is it.
                self.ack_next_result(call_id);
            }
            self.emit(EventBody::ToolResult {
                run_id: run_id.clone(),
                item,
            });
        }
    }

    /// The writes that cancel the waiting calls (no state change): for a new message's batch.
    pub(super) fn cancel_waiting_batch(&self) -> WriteBatch {
        let id = self.record.id.clone();
        let Some(w) = &self.waiting else {
            return WriteBatch::default();
        };
        let (_, items) = cancelled_items(w);
        let ords: Vec<u64> = w
            .calls
            .iter()
            .filter(|c| c.item.status.is_waiting() || c.item.status == ItemStatus::Running)
            .map(|c| c.ord)
            .collect();
        let mut record = self.record.clone();
        record.waiting = None;
        WriteBatch {
            session: Some(record),
            items: ords
                .iter()
                .zip(&items)
                .map(|(ord, item)| StoredItem {
                    ord: *ord,
                    item: item.clone(),
                })
                .collect(),
            streaming_ended: ords.iter().map(|o| (id.clone(), *o)).collect(),
            calls: ords
                .iter()
                .zip(&items)
                .map(|(ord, item)| {
                    let call_id = item.call.as_ref().expect("tool item").call_id.clone();
                    (id.clone(), call_id, cancelled_record(*ord))
                })
                .collect(),
            ..Default::default()
        }
    }

    /// Waiting calls that a new message cancels, as their `tool.result` events will carry them.
    pub(super) fn waiting_to_cancel(&self) -> usize {
        self.waiting
            .as_ref()
            .map_or(0, |w| cancelled_items(w).1.len())
    }

    /// At deletion: approved calls still running are stopped.
    pub(super) fn stop_waiting_tools(&mut self) {
        if let Some(w) = self.waiting.take() {
            for c in w
                .calls
                .iter()
                .filter(|c| c.item.status == ItemStatus::Running)
            {
                self.effects.push_back(Effect::StopTool {
                    call_id: c.call().call_id.clone(),
                });
            }
        }
    }

    /// The last waiting call was resolved: a continuation run answers the same message with
    /// the results (`run.started` with `continues`), following the busy policy like any run.
    pub(super) fn maybe_continue(&mut self) {
        if self.waiting.as_ref().is_none_or(Waiting::open) {
            return;
        }
        let w = self.waiting.take().expect("checked above");
        self.record.waiting = None;
        let pending = PendingRun {
            run_id: new_id("run"),
            reply_to: w.reply_to,
            reply_ord: w.reply_ord,
            continues: Some(w.run_id),
            client_tools: w.client_tools,
        };
        if self.active.is_some() || self.stopping {
            self.emit(EventBody::RunQueued {
                run_id: pending.run_id.clone(),
                reply_to: pending.reply_to.clone(),
            });
            self.queue.push_back(pending);
        } else {
            self.start_run(pending);
        }
    }

    /// After a restart or a reload: the calls the last run left waiting, read back from the
    /// store, with the client tools of the message they answer.
    pub(crate) fn restore_waiting(&mut self, calls: Vec<Call>, client_tools: Vec<ToolSpec>) {
        let Some(w) = self.record.waiting.clone() else {
            return;
        };
        self.waiting = Some(Waiting {
            run_id: w.run_id,
            reply_to: w.reply_to,
            reply_ord: w.reply_ord,
            client_tools,
            calls,
            approvals: Vec::new(),
        });
        // Everything was resolved before the process stopped: nothing waits any more.
        if !self.waiting.as_ref().is_some_and(Waiting::open) {
            self.waiting = None;
            self.record.waiting = None;
        }
    }

    /// The tool items waiting for a client's result or an approval, oldest first.
    pub(crate) fn pending_tool_calls(&self) -> Vec<Item> {
        let active = self.active.iter().flat_map(|r| r.calls.iter());
        let waiting = self.waiting.iter().flat_map(|w| w.calls.iter());
        waiting
            .chain(active)
            .filter(|c| c.item.status.is_waiting())
            .map(|c| c.item.clone())
            .collect()
    }
}

pub(super) fn cancelled_record(ord: u64) -> CallRecord {
    CallRecord {
        ord,
        resolved: Some(Resolution {
            digest: CANCELLED.into(),
            epoch: None,
            seq: None,
        }),
    }
}

/// The waiting run's open calls as `cancelled` items.
fn cancelled_items(w: &Waiting) -> (String, Vec<Item>) {
    let items = w
        .calls
        .iter()
        .filter(|c| c.item.status.is_waiting() || c.item.status == ItemStatus::Running)
        .map(|c| Item {
            status: ItemStatus::Cancelled,
            ..c.item.clone()
        })
        .collect();
    (w.run_id.clone(), items)
}
