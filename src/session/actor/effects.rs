//! Executing what [`SessionState`](crate::session::state::SessionState) decided, in order:
//! store writes and barriers, checkpoint settling, the ack, fan-out, the agent.

use std::sync::Arc;

use serde_json::Value;

use super::agent_task::AgentTask;
use super::Actor;
use crate::agent::AgentRequest;
use crate::domain::ToolSpec;
use crate::error::HubError;
use crate::session::event::{Ack, Event, ToolAck};
use crate::session::handle::ToolReply;
use crate::session::outbox::{AckReply, Outbound, PushError, ToolAckReply};
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
    /// rest goes on, but no tool ack after it claims durability (a send's ack was made durable
    /// before the state committed it, see `reads.rs`).
    pub(super) async fn apply(&mut self) {
        let mut durable = true;
        while let Some(effect) = self.state.next_effect() {
            match effect {
                Effect::Emit(ev) => self.fan_out(&ev),
                Effect::Write(batch) => {
                    if let Err(e) = self.shared.store.write(*batch) {
                        durable = false;
                        tracing::error!(session_id = %self.state.id(), error = %e, "store write failed");
                    }
                }
                Effect::Barrier => {
                    if let Err(e) = self.shared.store.barrier().await {
                        durable = false;
                        tracing::error!(session_id = %self.state.id(), error = %e, "durability barrier failed");
                    }
                }
                Effect::ToolAck(ack) => {
                    let r = durable
                        .then_some(ack)
                        .ok_or_else(|| HubError::Internal("storage failure".into()));
                    self.deliver_tool_ack(r);
                }
                Effect::CallTool {
                    call_id,
                    name,
                    arguments,
                } => {
                    let tools = self.shared.tools.clone();
                    self.tool_tasks.start(&tools, call_id, &name, &arguments);
                }
                Effect::StopTool { call_id } => self.tool_tasks.stop(&call_id),
                Effect::SettleCheckpoints { ord } => {
                    let id = self.state.id().to_owned();
                    self.shared.checkpoints.settle(&id, ord).await;
                }
                Effect::Ack(ack) => self.deliver_ack(ack),
                Effect::StartAgent {
                    run_id,
                    reply_to,
                    reply_ord,
                    until_ord,
                    client_tools,
                } => self.start_agent(run_id, &reply_to, reply_ord, until_ord, client_tools),
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

    /// Start a model turn: the history is what precedes `until_ord` up to the user message
    /// at `reply_ord`, plus what answers that message (earlier turns, tool items, the run a
    /// continuation continues); later messages waiting in the queue are not part of it.
    fn start_agent(
        &mut self,
        run_id: String,
        reply_to: &str,
        reply_ord: u64,
        until_ord: u64,
        client_tools: Vec<ToolSpec>,
    ) {
        let id = self.state.id().to_owned();
        let range = ItemRange {
            before: Some(until_ord),
            limit: HISTORY_ITEMS,
            descending: true,
            ..Default::default()
        };
        let history = match self.shared.store.list_items(&id, &range) {
            Ok((mut page, _)) => {
                page.retain(|s| s.ord <= reply_ord || s.item.reply_to.as_deref() == Some(reply_to));
                page.reverse();
                page.into_iter().map(|s| s.item).collect()
            }
            Err(e) => {
                tracing::error!(session_id = %id, error = %e, "reading history failed");
                Vec::new()
            }
        };
        let mut tools = self.shared.tools.specs();
        let record = self.state.record();
        if let Some(doc) = &record.state {
            tools.push(crate::tools::state_patch::spec(doc, record.state_version));
        }
        tools.extend(client_tools);
        // The model its message picked (PROTOCOL 1.2), for every turn and continuation.
        let picked = history
            .iter()
            .find(|i| i.id == reply_to)
            .and_then(|i| i.model.as_deref());
        let model = self.shared.agent.models().resolve(picked);
        self.state.on_model(model.clone());
        let stream = self.shared.agent.stream(AgentRequest {
            session_id: id,
            run_id,
            history,
            tools,
            model: Some(model),
        });
        self.agent = Some(AgentTask::spawn(stream));
        self.shared.metrics.runs_active.inc();
    }

    /// The frames resolving `call_id` whose ack is still to come (an approved tool is running)
    /// are accepted: their connections' readers are told now and go on reading.
    pub(super) fn release_readers(&mut self, call_id: &str) {
        for (_, reply, _) in self
            .tool_waiters
            .iter_mut()
            .filter(|(id, ..)| id == call_id)
        {
            if let ToolReply::Connection { respond_to, .. } = reply {
                if let Some(tx) = respond_to.take() {
                    let _ = tx.send(Ok(()));
                }
            }
        }
    }

    /// The ack of a tool call's resolution, to everyone waiting for that call.
    fn deliver_tool_ack(&mut self, ack: Result<ToolAck, HubError>) {
        let call_id = match &ack {
            Ok(a) => a.call_id.clone(),
            // A failed write answers every waiter: they all wait on this session's store.
            Err(_) => String::new(),
        };
        let waiters = std::mem::take(&mut self.tool_waiters);
        for (id, reply, repeat) in waiters {
            if !call_id.is_empty() && id != call_id {
                self.tool_waiters.push((id, reply, repeat));
                continue;
            }
            let ack = ack.clone().map(|a| ToolAck {
                duplicate: a.duplicate || repeat,
                ..a
            });
            self.answer_tool(reply, ack);
        }
    }

    /// Answer one resolving frame: its ack goes back by its reply, or onto its connection
    /// (before the call's `tool.result`).
    pub(super) fn answer_tool(&mut self, reply: ToolReply, ack: Result<ToolAck, HubError>) {
        match reply {
            ToolReply::Caller(tx) => {
                let _ = tx.send(ack);
            }
            ToolReply::Connection {
                conn_id,
                reply_ref,
                respond_to,
            } => {
                if let Ok(ack) = &ack {
                    if let Some(s) = self.subscribers.iter().find(|s| s.conn_id() == conn_id) {
                        let _ = s.outbox.try_push(Outbound::ToolAck(Box::new(ToolAckReply {
                            ack: ack.clone(),
                            reply_ref,
                        })));
                    }
                }
                match (respond_to, ack) {
                    (Some(tx), ack) => {
                        let _ = tx.send(ack.map(|_| ()));
                    }
                    // Accepted earlier, then the store failed writing the call's result.
                    (None, Err(e)) => tracing::warn!(
                        conn_id,
                        error = %e,
                        "an accepted tool resolution could not be stored"
                    ),
                    (None, Ok(_)) => {}
                }
            }
        }
    }
}
