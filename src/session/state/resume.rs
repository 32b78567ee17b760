//! Subscribe and resume rules: replay the missed events from the tail when it holds them all
//! (and they fit a connection's queue comfortably), else a snapshot as of the head.

use std::sync::Arc;

use super::SessionState;
use crate::domain::{Item, ItemStatus, Position};
use crate::error::HubError;
use crate::session::event::{Event, ResumeKind, Snapshot};

/// How a subscribe is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resume {
    /// The events after this seq follow, then live ones.
    Replay { after: u64 },
    /// A snapshot as of the head follows, then live ones.
    Snapshot,
}

impl Resume {
    pub(crate) fn kind(self) -> ResumeKind {
        match self {
            Resume::Replay { .. } => ResumeKind::Replay,
            Resume::Snapshot => ResumeKind::Snapshot,
        }
    }
}

impl SessionState {
    /// A new subscription is refused only while the session is shutting down.
    pub(crate) fn check_subscribe(&self) -> Result<(), HubError> {
        self.refuse_if_stopping()
    }

    /// `since` names the last event the client holds. Replay covers `since.seq + 1 ..= head`
    /// (zero events when `since` is the head); a `since` beyond the head, older than the tail,
    /// of another epoch, or further back than a queue holds comfortably (in events or in
    /// bytes) gets a snapshot.
    pub(crate) fn resume(&self, since: Option<&Position>) -> Resume {
        let head = self.record.head_seq;
        let Some(since) = since else {
            return Resume::Snapshot;
        };
        if since.epoch != self.record.epoch || since.seq > head {
            return Resume::Snapshot;
        }
        if since.seq == head {
            return Resume::Replay { after: head };
        }
        let Some(oldest) = self.tail.oldest_seq() else {
            return Resume::Snapshot;
        };
        let missing = (head - since.seq) as usize;
        if since.seq + 1 < oldest || missing > self.rules.replay_max {
            return Resume::Snapshot;
        }
        if self.tail.bytes_after(since.seq) > self.rules.resume_bytes {
            return Resume::Snapshot;
        }
        Resume::Replay { after: since.seq }
    }

    /// The tail's events after `after`, in order.
    pub(crate) fn replay(&self, after: u64) -> impl Iterator<Item = Arc<Event>> {
        self.tail.after(after).into_iter()
    }

    /// How many of the newest stored items a snapshot needs read: one page, one more to tell
    /// whether older ones exist, one more for the streaming item (shown as `active_run`).
    pub(crate) fn snapshot_read(&self) -> usize {
        self.rules.snapshot_items + 2
    }

    /// The snapshot as of the head, from the newest stored items (newest first, as read) and
    /// whether the store holds more beyond them.
    pub(crate) fn snapshot(&self, newest_first: Vec<Item>, more_in_store: bool) -> Snapshot {
        let limit = self.rules.snapshot_items;
        let active_id = self.active.as_ref().map(|a| a.item.id.as_str());
        // Finished items and user messages: not the streaming item, nor tool calls under way
        // (running or waiting: those are in `pending_tool_calls` or come with `tool.result`).
        let finished = |i: &Item| {
            !matches!(i.status, ItemStatus::Streaming | ItemStatus::Running)
                && !i.status.is_waiting()
        };
        let mut items: Vec<Item> = newest_first
            .into_iter()
            .filter(|i| finished(i) && Some(i.id.as_str()) != active_id)
            .collect();
        let mut has_more = more_in_store || items.len() > limit;
        items.truncate(limit);
        // The newest items that fit the byte budget (the rest are paged through the items
        // endpoint, as items beyond the page are).
        let mut budget = self
            .rules
            .resume_bytes
            .saturating_sub(Snapshot::FIXED_BYTES + self.active_view().map_or(0, |a| a.text.len()))
            .saturating_sub(
                self.record
                    .state
                    .as_ref()
                    .map_or(0, |s| s.to_string().len()),
            );
        let fit = items
            .iter()
            .take_while(|i| {
                let cost = Snapshot::item_bytes(i);
                let fits = cost <= budget;
                budget = budget.saturating_sub(cost);
                fits
            })
            .count();
        has_more |= fit < items.len();
        items.truncate(fit);
        items.reverse();
        Snapshot {
            session: self.record.id.clone(),
            epoch: self.record.epoch.clone(),
            seq: self.record.head_seq,
            title: self.record.title.clone(),
            items,
            has_more,
            active_run: self.active_view(),
            queued: self.queued_view(),
            pending_tool_calls: self.pending_tool_calls(),
            state: self.record.state.clone(),
            state_version: self.record.state_version,
        }
    }
}
