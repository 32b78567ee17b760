//! User messages inside the session actor: idempotency by `client_msg_id`, the busy policy,
//! the durable write before the ack, the ack on the sender's connection before the `message`
//! event, the first message's title, and starting or queueing the run.

use super::actor::Actor;
use super::event::{now_rfc3339, Ack, EventBody, Item, ItemStatus, Role};
use super::hub::SendRequest;
use super::new_id;
use super::outbox::{AckReply, Outbound};
use super::run::{CancelReason, PendingRun};
use crate::config::BusyPolicy;
use crate::error::HubError;
use crate::store::{IdemRecord, StoredItem, WriteBatch};

impl Actor {
    pub(super) async fn send(&mut self, req: SendRequest) -> Result<Ack, HubError> {
        if self.stopping.is_some() {
            return Err(HubError::Unavailable("the hub is shutting down".into()));
        }
        if let Some(orig) = self.shared.store.get_idem(&self.id, &req.client_msg_id)? {
            if orig.text != req.text {
                return Err(HubError::BadRequest(
                    "client_msg_id was already used with a different text".into(),
                ));
            }
            let ack = Ack {
                session: self.id.clone(),
                client_msg_id: req.client_msg_id.clone(),
                item_id: orig.item_id,
                epoch: orig.epoch,
                seq: orig.seq,
                duplicate: true,
                run_id: orig.run_id,
            };
            self.push_ack(&req, &ack);
            return Ok(ack);
        }
        let policy = req.on_busy.unwrap_or(self.shared.config.busy_policy);
        let busy = self.active.is_some();
        if busy && policy == BusyPolicy::Reject {
            return Err(HubError::Busy);
        }
        let now = now_rfc3339();
        let ord = self.record.next_ord;
        let item = Item {
            id: new_id("itm"),
            role: Role::User,
            text: req.text.clone(),
            status: ItemStatus::Complete,
            created_at: now.clone(),
            client_msg_id: Some(req.client_msg_id.clone()),
            run_id: None,
            reply_to: None,
            finish_reason: None,
            usage: None,
            error_code: None,
        };
        let run_id = new_id("run");
        let seq = self.record.head_seq + 1;
        let first_message = self.record.title.is_none() && ord == 0;
        let mut record = self.record.clone();
        record.next_ord += 1;
        record.updated_at = now;
        if first_message {
            record.title = Some(title_from(&req.text));
        }
        let idem = IdemRecord {
            item_id: item.id.clone(),
            epoch: record.epoch.clone(),
            seq,
            text: req.text.clone(),
            run_id: Some(run_id.clone()),
        };
        self.shared.store.write(WriteBatch {
            session: Some(record.clone()),
            items: vec![StoredItem {
                ord,
                item: item.clone(),
            }],
            idem: vec![(self.id.clone(), req.client_msg_id.clone(), idem)],
            ..Default::default()
        })?;
        self.shared.store.barrier().await?;
        self.record = record;
        let ack = Ack {
            session: self.id.clone(),
            client_msg_id: req.client_msg_id.clone(),
            item_id: item.id.clone(),
            epoch: self.record.epoch.clone(),
            seq,
            duplicate: false,
            run_id: Some(run_id.clone()),
        };
        self.push_ack(&req, &ack);
        let item_id = item.id.clone();
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
        };
        if !busy {
            self.start_run(pending);
        } else if policy == BusyPolicy::Interrupt {
            self.cancel_active(CancelReason::Interrupted).await;
            self.start_run(pending);
        } else {
            self.emit(EventBody::RunQueued {
                run_id: pending.run_id.clone(),
                reply_to: pending.reply_to.clone(),
            });
            self.queue.push_back(pending);
        }
        Ok(ack)
    }

    /// On the sender's connection the ack goes just before the `message` event.
    fn push_ack(&self, req: &SendRequest, ack: &Ack) {
        let Some(to) = &req.ack_to else { return };
        if let Some(s) = self.subscribers.iter().find(|s| s.conn_id() == to.conn_id) {
            let _ = s.outbox.try_push(Outbound::Ack(Box::new(AckReply {
                ack: ack.clone(),
                reply_ref: to.reply_ref.clone(),
            })));
        }
    }
}

/// A title from a first message: its first line, cut at a word boundary near 48 characters.
fn title_from(text: &str) -> String {
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
