//! Executing a client's shared-state change (PROTOCOL 1.2): the state decides, the record
//! with the new document is written and made durable, then the change is committed (its
//! event sequenced) and acknowledged; a refused change writes and emits nothing.

use super::Actor;
use crate::error::HubError;
use crate::session::event::StateAck;
use crate::session::handle::StateReply;
use crate::session::outbox::{Outbound, StateAckReply};
use crate::session::state::StateChange;

impl Actor {
    pub(super) async fn set_state(
        &mut self,
        change: StateChange,
        base: Option<u64>,
        reply: StateReply,
    ) {
        let ack = self.change_state(change, base).await;
        match reply {
            StateReply::Caller(tx) => {
                let _ = tx.send(ack);
            }
            StateReply::Connection {
                conn_id,
                reply_ref,
                respond_to,
            } => {
                if let Ok(Some(ack)) = &ack {
                    if let Some(s) = self.subscribers.iter().find(|s| s.conn_id() == conn_id) {
                        let _ = s
                            .outbox
                            .try_push(Outbound::StateAck(Box::new(StateAckReply {
                                ack: ack.clone(),
                                reply_ref,
                            })));
                    }
                }
                let _ = respond_to.send(ack.map(|_| ()));
            }
        }
        // The event goes out after the ack was queued on the asking connection.
        self.apply().await;
    }

    /// Decide, make durable, commit. The event is queued, not yet fanned out.
    async fn change_state(
        &mut self,
        change: StateChange,
        base: Option<u64>,
    ) -> Result<Option<StateAck>, HubError> {
        let Some(mut new) = self.state.decide_state(change, base)? else {
            return Ok(None);
        };
        self.shared.store.write(std::mem::take(&mut new.batch))?;
        self.shared.store.barrier().await?;
        Ok(Some(self.state.commit_state(new)))
    }
}
