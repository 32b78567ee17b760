//! Subscribe and resume inside the session actor: the `subscribed` reply, then either the
//! missed events from the replay tail or a snapshot, then live events.

use std::sync::Arc;

use super::actor::Actor;
use super::event::{Item, ItemStatus, Position, ResumeKind, Snapshot};
use super::outbox::{Outbound, SubscribedReply, Subscriber};
use crate::error::HubError;
use crate::store::ItemRange;

impl Actor {
    pub(super) fn subscribe(
        &mut self,
        sub: Subscriber,
        since: Option<Position>,
        reply_ref: Option<serde_json::Value>,
    ) -> Result<(), HubError> {
        if self.stopping.is_some() {
            return Err(HubError::Unavailable("the hub is shutting down".into()));
        }
        self.subscribers.retain(|s| s.conn_id() != sub.conn_id());
        let head = self.record.head_seq;
        let replay_from = since.and_then(|p| self.replay_start(&p, head));
        let resume = if replay_from.is_some() {
            ResumeKind::Replay
        } else {
            ResumeKind::Snapshot
        };
        let mut frames = vec![Outbound::Subscribed(Box::new(SubscribedReply {
            session: self.id.clone(),
            epoch: self.record.epoch.clone(),
            head_seq: head,
            resume,
            reply_ref,
        }))];
        match replay_from {
            Some(after) => frames.extend(
                self.tail
                    .iter()
                    .filter(|e| e.seq > after)
                    .map(|e| Outbound::Event(e.clone())),
            ),
            None => frames.push(Outbound::Snapshot(Arc::new(self.snapshot()?))),
        }
        for f in frames {
            if sub.outbox.try_push(f).is_err() {
                return Ok(());
            }
        }
        self.subscribers.push(sub);
        Ok(())
    }

    /// The seq after which replay starts, when the tail can serve `since`.
    fn replay_start(&self, since: &Position, head: u64) -> Option<u64> {
        if since.epoch != self.record.epoch || since.seq > head {
            return None;
        }
        if since.seq == head {
            return Some(head);
        }
        let oldest = self.tail.front()?.seq;
        let missing = (head - since.seq) as usize;
        // Replay only what fits comfortably in the connection's queue; beyond that a snapshot
        // is both smaller and safer.
        (since.seq + 1 >= oldest && missing <= self.shared.config.outbound_frames / 2)
            .then_some(since.seq)
    }

    fn snapshot(&self) -> Result<Snapshot, HubError> {
        let limit = self.shared.config.snapshot_items;
        // One more than the page tells whether older items exist; one more again covers the
        // streaming item, which is shown as `active_run` instead.
        let (page, more_in_store) = self.shared.store.list_items(
            &self.id,
            &ItemRange {
                limit: limit + 2,
                descending: true,
                ..Default::default()
            },
        )?;
        let active_id = self.active.as_ref().map(|a| a.item.id.as_str());
        let mut items: Vec<Item> = page
            .into_iter()
            .map(|s| s.item)
            .filter(|i| i.status != ItemStatus::Streaming && Some(i.id.as_str()) != active_id)
            .collect();
        let has_more = more_in_store || items.len() > limit;
        items.truncate(limit);
        items.reverse();
        Ok(Snapshot {
            session: self.id.clone(),
            epoch: self.record.epoch.clone(),
            seq: self.record.head_seq,
            title: self.record.title.clone(),
            items,
            has_more,
            active_run: self.active.as_ref().map(|a| a.snapshot()),
            queued: self.queue.iter().map(|q| q.snapshot()).collect(),
        })
    }
}
