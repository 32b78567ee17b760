//! History edits the ChatKit front end asks for: retry after a user message (later items are
//! dropped and the message is answered again) and feedback on items.

use super::actor::Actor;
use super::event::{EventBody, Role};
use super::new_id;
use super::run::PendingRun;
use crate::error::HubError;
use crate::store::{ItemRange, WriteBatch};

impl Actor {
    /// Drop every item after the user message `item_id`, durably, then start its new run.
    pub(super) async fn retry_after(&mut self, item_id: &str) -> Result<String, HubError> {
        if self.stopping.is_some() {
            return Err(HubError::Unavailable("the hub is shutting down".into()));
        }
        if self.active.is_some() || !self.queue.is_empty() {
            return Err(HubError::Busy);
        }
        let store = &self.shared.store;
        let ord = store
            .item_ord(&self.id, item_id)?
            .ok_or_else(|| HubError::NotFound(format!("no item {item_id} in this session")))?;
        let item = store
            .get_item(&self.id, ord)?
            .ok_or_else(|| HubError::NotFound(format!("no item {item_id} in this session")))?;
        if item.role != Role::User {
            return Err(HubError::BadRequest(format!(
                "item {item_id} is not a user message"
            )));
        }
        // No run is active or queued, so no item is streaming: every later item is final.
        let range = ItemRange {
            after: Some(ord),
            limit: self.record.next_ord as usize,
            ..Default::default()
        };
        let (later, _) = store.list_items(&self.id, &range)?;
        if !later.is_empty() {
            let item_ids: Vec<String> = later.iter().map(|s| s.item.id.clone()).collect();
            let removed_items = later
                .into_iter()
                .map(|s| (self.id.clone(), s.ord, s.item.id))
                .collect();
            store.write(WriteBatch {
                removed_items,
                ..Default::default()
            })?;
            store.barrier().await?;
            // Every subscriber drops them too, so all transports keep telling the same story.
            self.emit(EventBody::ItemsRemoved { item_ids });
        }
        let run_id = new_id("run");
        self.start_run(PendingRun {
            run_id: run_id.clone(),
            reply_to: item.id,
            reply_ord: ord,
        });
        Ok(run_id)
    }

    /// Store `kind` on every item of `item_ids`; nothing is stored unless all exist.
    pub(super) async fn set_feedback(
        &mut self,
        item_ids: &[String],
        kind: String,
    ) -> Result<(), HubError> {
        let store = &self.shared.store;
        for id in item_ids {
            if store.item_ord(&self.id, id)?.is_none() {
                return Err(HubError::NotFound(format!("no item {id} in this session")));
            }
        }
        let feedback = item_ids
            .iter()
            .map(|id| (self.id.clone(), id.clone(), kind.clone()))
            .collect();
        store.write(WriteBatch {
            feedback,
            ..Default::default()
        })?;
        store.barrier().await?;
        Ok(())
    }
}
