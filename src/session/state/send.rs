//! The rules of a user message and of the other history edits: idempotency by
//! `client_msg_id`, the busy policy, the durable write before the ack, the ack before the
//! `message` event, the first message's title, starting or queueing the run; title and
//! metadata updates; ChatKit's retry after an earlier message.

use serde_json::Value;

use super::run::Next;
use super::{Effect, PendingRun, SessionState, ToolPolicy};
use crate::config::BusyPolicy;
use crate::domain::{new_id, now_rfc3339, Item};
use crate::error::HubError;
use crate::session::event::{Ack, EventBody};
use crate::session::request::SendRequest;
use crate::store::{IdemRecord, SessionRecord, StoredItem, WriteBatch};

/// How a send was taken.
#[derive(Debug)]
pub(crate) enum Accepted {
    /// The `client_msg_id` was seen before: the original ack, nothing else happens.
    Duplicate(Ack),
    /// A new message: write `batch` durably, then [`SessionState::commit_message`].
    New(Box<NewMessage>),
}

/// A new message, decided but not yet durable: nothing in the state changed for it.
#[derive(Debug)]
pub(crate) struct NewMessage {
    /// What must be durable before the ack: the record, the item and the idempotency key.
    pub(crate) batch: WriteBatch,
    record: SessionRecord,
    item: Item,
    ord: u64,
    ack: Ack,
    policy: BusyPolicy,
    first_message: bool,
    /// Calls the last run left waiting are cancelled by this message (in `batch`).
    cancels_waiting: bool,
}

impl NewMessage {
    pub(crate) fn ack(&self) -> &Ack {
        &self.ack
    }
}

impl SessionState {
    /// Decide a send. `existing` is the idempotency record stored under the message's
    /// `client_msg_id`, if any; `admit` charges the caller's quota and is called only for a
    /// message that will really be stored. An error changes nothing and stores nothing.
    /// Client tools must not shadow the hub's server tools.
    pub(crate) fn send(
        &self,
        req: &SendRequest,
        existing: Option<IdemRecord>,
        tools: &dyn ToolPolicy,
        admit: impl FnOnce() -> Result<(), HubError>,
    ) -> Result<Accepted, HubError> {
        self.refuse_if_stopping()?;
        tools.refuse_shadowing(req.tools())?;
        if let Some(orig) = existing {
            if orig.text != req.text() {
                return Err(HubError::BadRequest(
                    "client_msg_id was already used with a different text".into(),
                ));
            }
            return Ok(Accepted::Duplicate(Ack {
                session: self.record.id.clone(),
                client_msg_id: req.client_msg_id().to_owned(),
                item_id: orig.item_id,
                epoch: orig.epoch,
                seq: orig.seq,
                duplicate: true,
                run_id: orig.run_id,
            }));
        }
        // The whole context (PROTOCOL 1.2) is bounded before anything is charged or stored.
        let context_sources = crate::session::context::gather(
            req.context(),
            req.context_sources(),
            self.record.metadata.as_ref(),
            req.identity(),
        )?;
        admit()?;
        let policy = req.on_busy().unwrap_or(self.rules.busy_policy);
        if self.active.is_some() && policy == BusyPolicy::Reject {
            return Err(HubError::Busy);
        }
        let now = now_rfc3339();
        let ord = self.record.next_ord;
        let item = Item {
            context: req.context().cloned(),
            context_sources,
            model: req.model().map(str::to_owned),
            tools: (!req.tools().is_empty()).then(|| req.tools().to_vec()),
            ..Item::user(
                new_id("itm"),
                req.text().to_owned(),
                req.client_msg_id().to_owned(),
                now.clone(),
            )
        };
        let run_id = new_id("run");
        // Calls the last run left waiting are cancelled first, each with its `tool.result`;
        // the `message` event follows them.
        let cancels = self.waiting_to_cancel();
        let seq = self.record.head_seq + cancels as u64 + 1;
        let first_message = self.record.title.is_none() && ord == 0;
        let mut record = self.record.clone();
        record.next_ord += 1;
        // The calls the last run left waiting are cancelled below; calls of the active run
        // (named already while its server calls run) are not this message's to end.
        if self.waiting.is_some() {
            record.waiting = None;
        }
        record.updated_at = now;
        if first_message {
            record.title = Some(title_from(req.text()));
        }
        let idem = IdemRecord {
            item_id: item.id.clone(),
            epoch: record.epoch.clone(),
            seq,
            text: req.text().to_owned(),
            run_id: Some(run_id.clone()),
        };
        let ack = Ack {
            session: record.id.clone(),
            client_msg_id: req.client_msg_id().to_owned(),
            item_id: item.id.clone(),
            epoch: record.epoch.clone(),
            seq,
            duplicate: false,
            run_id: Some(run_id),
        };
        let mut batch = self.cancel_waiting_batch();
        batch.session = Some(record.clone());
        batch.items.push(StoredItem {
            ord,
            item: item.clone(),
        });
        batch
            .idem
            .push((record.id.clone(), req.client_msg_id().to_owned(), idem));
        Ok(Accepted::New(Box::new(NewMessage {
            batch,
            record,
            item,
            ord,
            ack,
            policy,
            first_message,
            cancels_waiting: self.waiting.is_some(),
        })))
    }

    /// The message is durable: the ack, then `message` (and the title of a first message),
    /// then its run starts, queues (`run.queued`) or interrupts the active one (whose
    /// `run.cancelled` comes before the new `run.started`; queued runs stay queued).
    pub(crate) fn commit_message(&mut self, msg: Box<NewMessage>) {
        let NewMessage {
            record,
            item,
            ord,
            ack,
            policy,
            first_message,
            cancels_waiting,
            ..
        } = *msg;
        if cancels_waiting {
            self.commit_cancel_waiting();
        }
        // Only events may have moved the head since `send` decided, and none can have: the
        // actor commits before it handles anything else.
        debug_assert_eq!(ack.seq, self.record.head_seq + 1);
        // Keep the head seq the events moved; take everything else from the written record.
        let head_seq = self.record.head_seq;
        self.record = record;
        self.record.head_seq = head_seq;
        let run_id = ack.run_id.clone().expect("a new message names its run");
        self.effects.push_back(Effect::Ack(ack));
        let item_id = item.id.clone();
        let client_tools = item.tools.clone();
        self.emit(EventBody::Message { item });
        if first_message {
            self.emit(EventBody::SessionUpdated {
                title: self.record.title.clone(),
            });
        }
        let pending = PendingRun {
            run_id,
            reply_to: item_id,
            reply_ord: ord,
            continues: None,
            client_tools: client_tools.unwrap_or_default(),
        };
        if self.active.is_none() {
            self.start_run(pending);
        } else if policy == BusyPolicy::Interrupt {
            self.cancel_active(Next::Hold);
            self.start_run(pending);
        } else {
            self.emit(EventBody::RunQueued {
                run_id: pending.run_id.clone(),
                reply_to: pending.reply_to.clone(),
            });
            self.queue.push_back(pending);
        }
    }

    /// The record after a title (`Some(None)` clears it) and/or metadata change, to be written
    /// durably before [`SessionState::commit_update`]; and whether the title changed.
    pub(crate) fn update(
        &self,
        title: Option<Option<String>>,
        metadata: Option<Value>,
    ) -> (SessionRecord, bool) {
        let mut record = self.record.clone();
        let title_changed = title.as_ref().is_some_and(|t| *t != record.title);
        if let Some(t) = title {
            record.title = t;
        }
        if metadata.is_some() {
            record.metadata = metadata;
        }
        record.updated_at = now_rfc3339();
        (record, title_changed)
    }

    /// The updated record is durable: a new title is told with `session.updated`.
    pub(crate) fn commit_update(&mut self, record: SessionRecord, title_changed: bool) {
        let head_seq = self.record.head_seq;
        self.record = record;
        self.record.head_seq = head_seq;
        if title_changed {
            self.emit(EventBody::SessionUpdated {
                title: self.record.title.clone(),
            });
        }
    }

    /// A retry needs a quiet session: nothing active, queued or waiting for tools (so no item
    /// is streaming or waiting).
    pub(crate) fn check_retry(&self) -> Result<(), HubError> {
        self.refuse_if_stopping()?;
        if self.active.is_some() || !self.queue.is_empty() || self.waiting.is_some() {
            return Err(HubError::Busy);
        }
        Ok(())
    }

    /// The items after the user message at `reply_ord` were durably removed (`removed`, oldest
    /// first): every subscriber is told, then a new run answers the message. Returns its id.
    pub(crate) fn commit_retry(
        &mut self,
        reply_to: &Item,
        reply_ord: u64,
        removed: Vec<String>,
    ) -> String {
        if !removed.is_empty() {
            self.emit(EventBody::ItemsRemoved { item_ids: removed });
        }
        let run_id = new_id("run");
        self.start_run(PendingRun {
            run_id: run_id.clone(),
            reply_to: reply_to.id.clone(),
            reply_ord,
            continues: None,
            client_tools: reply_to.tools.clone().unwrap_or_default(),
        });
        run_id
    }
}

/// A title from a first message: its first line, cut at a word boundary near 48 characters.
pub(super) fn title_from(text: &str) -> String {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("New chat");
    if line.chars().count() <= 48 {
        return line.to_owned();
    }
    let cut: String = line.chars().take(48).collect();
    match cut.rfind(' ') {
        Some(i) if i > 16 => format!("{}…", &cut[..i]),
        _ => format!("{cut}…"),
    }
}
