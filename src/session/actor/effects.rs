//! Executing what [`SessionState`](crate::session::state::SessionState) decided, in order:
//! store writes and barriers, checkpoint settling, the ack, fan-out, the agent.

use std::sync::Arc;

use serde_json::Value;

use super::agent_task::AgentTask;
use super::Actor;
use crate::agent::AgentRequest;
use crate::session::event::{Ack, Event};
use crate::session::outbox::{AckReply, Outbound, PushError};
use crate::session::state::Effect;
use crate::store::ItemRange;

/// Most history items handed to the agent (the agent applies its own budget on top).
const HISTORY_ITEMS: usize = 200;

/// Where the `Ack` effect of the send being handled delivers the ack.
#[derive(Debug)]
pub(super) enum AckRoute {
    /// No send is being handled.
    None,
    /// The ack is returned to the caller by its reply.
    Caller,
    /// The ack is queued on this connection, before the `message` event.
    Connection {
        conn_id: u64,
        reply_ref: Option<Value>,
    },
}

impl Actor {
    /// Execute every queued effect, in order. A failed write or barrier is logged and the
    /// rest goes on: what must not happen without durability (an ack) was made durable
    /// before the state committed it (see `reads.rs`).
    pub(super) async fn apply(&mut self) {
        while let Some(effect) = self.state.next_effect() {
            match effect {
                Effect::Emit(ev) => self.fan_out(&ev),
                Effect::Write(batch) => {
                    if let Err(e) = self.shared.store.write(*batch) {
                        tracing::error!(session_id = %self.state.id(), error = %e, "store write failed");
                    }
                }
                Effect::Barrier => {
                    if let Err(e) = self.shared.store.barrier().await {
                        tracing::error!(session_id = %self.state.id(), error = %e, "durability barrier failed");
                    }
                }
                Effect::SettleCheckpoints { ord } => {
                    let id = self.state.id().to_owned();
                    self.shared.checkpoints.settle(&id, ord).await;
                }
                Effect::Ack(ack) => self.deliver_ack(ack),
                Effect::StartAgent { run_id, reply_ord } => self.start_agent(run_id, reply_ord),
                Effect::StopAgent => self.agent = None,
                Effect::RunEnded(label) => {
                    self.shared.metrics.runs_active.dec();
                    self.shared.metrics.run_finished(label);
                }
                Effect::DeleteSession(record) => {
                    if let Err(e) = self.shared.store.delete_session(&record) {
                        tracing::error!(session_id = %self.state.id(), error = %e, "deleting session failed");
                    }
                }
                Effect::EndSubscriptions => {
                    for s in self.subscribers.drain(..) {
                        s.end();
                    }
                }
            }
        }
    }

    /// Queue an event to every live subscriber without waiting; a full queue drops that
    /// subscriber (its connection closes 4008), a dropped `Subscription` is forgotten.
    fn fan_out(&mut self, ev: &Arc<Event>) {
        let mut delivered = 0u64;
        self.subscribers.retain(|s| {
            if !s.is_live() {
                return false;
            }
            match s.outbox.try_push(Outbound::Event(ev.clone())) {
                Ok(()) => {
                    delivered += 1;
                    true
                }
                Err(PushError::Overflow) => {
                    tracing::info!(session_id = %ev.session, conn_id = s.conn_id(), "slow consumer dropped");
                    false
                }
                Err(PushError::Closed) => false,
            }
        });
        self.shared.metrics.events_fanned_out.inc_by(delivered);
    }

    /// On the sender's connection the ack goes just before the `message` event.
    pub(super) fn deliver_ack(&mut self, ack: Ack) {
        let route = std::mem::replace(&mut self.ack_route, AckRoute::None);
        let AckRoute::Connection { conn_id, reply_ref } = route else {
            return;
        };
        if let Some(s) = self.subscribers.iter().find(|s| s.conn_id() == conn_id) {
            let _ = s
                .outbox
                .try_push(Outbound::Ack(Box::new(AckReply { ack, reply_ref })));
        }
    }

    /// Start the agent on the history up to the user message at `reply_ord`.
    fn start_agent(&mut self, run_id: String, reply_ord: u64) {
        let id = self.state.id().to_owned();
        let range = ItemRange {
            before: Some(reply_ord + 1),
            limit: HISTORY_ITEMS,
            descending: true,
            ..Default::default()
        };
        let history = match self.shared.store.list_items(&id, &range) {
            Ok((mut page, _)) => {
                page.reverse();
                page.into_iter().map(|s| s.item).collect()
            }
            Err(e) => {
                tracing::error!(session_id = %id, error = %e, "reading history failed");
                Vec::new()
            }
        };
        let stream = self.shared.agent.stream(AgentRequest {
            session_id: id,
            run_id,
            history,
            tools: Vec::new(),
        });
        self.agent = Some(AgentTask::spawn(stream));
        self.shared.metrics.runs_active.inc();
    }
}
