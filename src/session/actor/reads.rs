//! Commands whose rules need the store first: subscribe (a snapshot's items), send (the
//! idempotency key, then the durable write before the state commits), title and metadata
//! updates, item pages, ChatKit's retry and feedback.

use serde_json::Value;

use super::Actor;
use crate::domain::{Position, Role};
use crate::error::HubError;
use crate::session::event::Ack;
use crate::session::handle::ToolReply;
use crate::session::outbox::Subscriber;
use crate::session::outbox::{Outbound, SubscribedReply};
use crate::session::request::{Caller, ItemOrder, ItemsPage, ItemsQuery, SendRequest};
use crate::session::state::{Accepted, Call, Resolve, Resolved, Resume};
use crate::store::{ItemRange, SessionRecord, WriteBatch};

impl Actor {
    /// Queue the `subscribed` reply, then the replay or a snapshot, on the subscriber's
    /// outbox; live events follow. Subscribing again on the same connection starts afresh.
    pub(super) fn subscribe(
        &mut self,
        sub: Subscriber,
        since: Option<Position>,
        reply_ref: Option<Value>,
    ) -> Result<(), HubError> {
        self.state.check_subscribe()?;
        self.state.unpack_tail();
        self.subscribers.retain(|s| s.conn_id() != sub.conn_id());
        let resume = self.state.resume(since.as_ref());
        let record = self.state.record();
        let mut frames = vec![Outbound::Subscribed(Box::new(SubscribedReply {
            session: record.id.clone(),
            epoch: record.epoch.clone(),
            head_seq: record.head_seq,
            resume: resume.kind(),
            reply_ref,
        }))];
        match resume {
            Resume::Replay { after } => {
                frames.extend(self.state.replay(after).map(Outbound::Event))
            }
            Resume::Snapshot => {
                let (page, more) = self.shared.store.list_items(
                    self.state.id(),
                    &ItemRange {
                        limit: self.state.snapshot_read(),
                        descending: true,
                        ..Default::default()
                    },
                )?;
                let newest = page.into_iter().map(|s| s.item).collect();
                frames.push(Outbound::Snapshot(std::sync::Arc::new(
                    self.state.snapshot(newest, more),
                )));
            }
        }
        for f in frames {
            if sub.outbox.try_push(f).is_err() {
                return Ok(());
            }
        }
        self.subscribers.push(sub);
        Ok(())
    }

    /// One idempotency lookup, the state's decision, the durable write, then the commit.
    /// Every transport's message passes here: it runs with the model it picked, or the
    /// default (an unknown id is `bad_request`, nothing stored), and carries the caller's
    /// identity as context (PROTOCOL 1.2).
    pub(super) async fn send(
        &mut self,
        caller: &Caller,
        req: &SendRequest,
    ) -> Result<Ack, HubError> {
        let model = crate::session::context::pick_model(&self.shared.agent.models(), req.model())?;
        let req = &req.clone().with_model(Some(model)).with_identity_of(caller);
        let existing = self
            .shared
            .store
            .get_idem(self.state.id(), req.client_msg_id())?;
        let tools = self.shared.tools.clone();
        match self
            .state
            .send(req, existing, tools.as_ref(), || caller.admit_message())?
        {
            Accepted::Duplicate(ack) => {
                self.deliver_ack(ack.clone());
                Ok(ack)
            }
            Accepted::New(mut msg) => {
                self.shared.store.write(std::mem::take(&mut msg.batch))?;
                self.shared.store.barrier().await?;
                let ack = msg.ack().clone();
                self.state.commit_message(msg);
                self.apply().await;
                Ok(ack)
            }
        }
    }

    pub(super) async fn update(
        &mut self,
        title: Option<Option<String>>,
        metadata: Option<Value>,
    ) -> Result<SessionRecord, HubError> {
        let (record, title_changed) = self.state.update(title, metadata);
        self.shared.store.write(WriteBatch {
            session: Some(record.clone()),
            ..Default::default()
        })?;
        self.shared.store.barrier().await?;
        self.state.commit_update(record, title_changed);
        self.apply().await;
        Ok(self.state.record().clone())
    }

    pub(super) fn items(&self, q: &ItemsQuery) -> Result<ItemsPage, HubError> {
        let store = &self.shared.store;
        let id = self.state.id();
        let ord_of = |item: &Option<String>| -> Result<Option<u64>, HubError> {
            match item {
                None => Ok(None),
                Some(item) => store
                    .item_ord(id, item)?
                    .map(Some)
                    .ok_or_else(|| HubError::BadRequest(format!("unknown item id {item}"))),
            }
        };
        let (before, after) = (ord_of(&q.before)?, ord_of(&q.after)?);
        // Oldest first with only `before` pages backwards: the `limit` items just before it,
        // read newest first from the store and turned around.
        let backwards = q.order == ItemOrder::Asc && before.is_some() && after.is_none();
        let range = ItemRange {
            before,
            after,
            limit: q.limit,
            descending: q.order == ItemOrder::Desc || backwards,
        };
        let (mut page, has_more) = store.list_items(id, &range)?;
        if backwards {
            page.reverse();
        }
        let items = page
            .into_iter()
            .map(|s| self.state.live_item(s.item))
            .collect();
        Ok(ItemsPage { items, has_more })
    }

    /// Drop every item after the user message `item_id`, durably, then start its new run.
    pub(super) async fn retry_after(
        &mut self,
        caller: &Caller,
        item_id: &str,
    ) -> Result<String, HubError> {
        self.state.check_retry()?;
        let store = &self.shared.store;
        let id = self.state.id().to_owned();
        let not_found = || HubError::NotFound(format!("no item {item_id} in this session"));
        let ord = store.item_ord(&id, item_id)?.ok_or_else(not_found)?;
        let item = store.get_item(&id, ord)?.ok_or_else(not_found)?;
        if item.role != Role::User {
            return Err(HubError::BadRequest(format!(
                "item {item_id} is not a user message"
            )));
        }
        caller.admit_run()?;
        // No run is active or queued, so no item is streaming: every later item is final.
        let range = ItemRange {
            after: Some(ord),
            limit: self.state.record().next_ord as usize,
            ..Default::default()
        };
        let (later, _) = store.list_items(&id, &range)?;
        let removed: Vec<String> = later.iter().map(|s| s.item.id.clone()).collect();
        if !later.is_empty() {
            let removed_items = later
                .into_iter()
                .map(|s| (id.clone(), s.ord, s.item.id))
                .collect();
            store.write(WriteBatch {
                removed_items,
                ..Default::default()
            })?;
            store.barrier().await?;
        }
        let run_id = self.state.commit_retry(&item, ord, removed);
        self.apply().await;
        Ok(run_id)
    }

    /// Store `kind` on every item of `item_ids`; nothing is stored unless all exist.
    pub(super) async fn set_feedback(
        &mut self,
        item_ids: &[String],
        kind: String,
    ) -> Result<(), HubError> {
        let store = &self.shared.store;
        let id = self.state.id();
        for item in item_ids {
            if store.item_ord(id, item)?.is_none() {
                return Err(HubError::NotFound(format!(
                    "no item {item} in this session"
                )));
            }
        }
        let feedback = item_ids
            .iter()
            .map(|item| (id.to_owned(), item.clone(), kind.clone()))
            .collect();
        store.write(WriteBatch {
            feedback,
            ..Default::default()
        })?;
        store.barrier().await?;
        Ok(())
    }

    /// One call-record lookup, the state's decision, then the commit; the ack goes to the
    /// waiter when the `ToolAck` effect names the call.
    pub(super) async fn resolve(&mut self, call_id: String, how: Resolve, reply: ToolReply) {
        let record = match self.shared.store.get_call(self.state.id(), &call_id) {
            Ok(r) => r,
            Err(e) => return self.answer_tool(reply, Err(e.into())),
        };
        match self.state.resolve(&call_id, how, record) {
            Err(e) => self.answer_tool(reply, Err(e)),
            Ok(Resolved::Duplicate(ack)) => self.answer_tool(reply, Ok(ack)),
            // The same approval again while its tool runs: the same ack, as a duplicate.
            Ok(Resolved::Deferred) => {
                self.tool_waiters.push((call_id.clone(), reply, true));
                self.release_readers(&call_id);
            }
            Ok(Resolved::New(how)) => {
                self.tool_waiters.push((call_id.clone(), reply, false));
                self.state.commit_resolution(&call_id, how);
                self.apply().await;
                // An approval's ack waits for the tool; its reader does not.
                self.release_readers(&call_id);
            }
        }
    }

    /// After a restart or a reload: the calls the last run left waiting, from the store.
    pub(super) fn restore_waiting(&mut self) {
        let Some(w) = self.state.record().waiting.clone() else {
            return;
        };
        let store = &self.shared.store;
        let id = self.state.id().to_owned();
        let calls = w
            .call_ords
            .iter()
            .filter_map(|ord| match store.get_item(&id, *ord) {
                Ok(Some(item)) if item.call.is_some() => Some(Call { item, ord: *ord }),
                Ok(_) => None,
                Err(e) => {
                    tracing::error!(session_id = %id, error = %e, "reading a waiting tool call failed");
                    None
                }
            })
            .collect();
        let client_tools = match store.get_item(&id, w.reply_ord) {
            Ok(Some(item)) => item.tools.unwrap_or_default(),
            _ => Vec::new(),
        };
        self.state.restore_waiting(calls, client_tools);
    }
}
