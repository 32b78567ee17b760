//! A connection's membership in one session, seen from the caller's end.
//!
//! The caller holds a [`Subscription`]; the actor holds the matching `Subscriber` (in
//! `outbox.rs`: the connection's outbox, plus a weak link back). Dropping the `Subscription` ends the
//! membership: the actor sees the link gone before its next push and forgets the subscriber,
//! so no transport keeps a list of what to unsubscribe. When the actor ends a membership
//! itself (the session was deleted) it marks the link, and the holder sees
//! [`Subscription::is_ended`].

use std::sync::Arc;

use serde_json::Value;

use super::handle::{Gone, SessionHandle};
use super::outbox::Link;
use super::request::{Caller, SendRequest};
use crate::error::HubError;

/// The caller's end: held for as long as the connection wants the session's events.
#[derive(Debug)]
pub struct Subscription {
    session: String,
    caller: Caller,
    handle: SessionHandle,
    conn_id: u64,
    /// The strong end of the link; released first when dropped, so the actor's `Prune` sees
    /// this subscription gone.
    link: Option<Arc<Link>>,
}

impl Subscription {
    pub(crate) fn new(
        session: String,
        caller: Caller,
        handle: SessionHandle,
        conn_id: u64,
        link: Arc<Link>,
    ) -> Self {
        Subscription {
            session,
            caller,
            handle,
            conn_id,
            link: Some(link),
        }
    }

    pub fn session(&self) -> &str {
        &self.session
    }

    /// The session dropped this subscription (it was deleted): nothing more will come.
    pub fn is_ended(&self) -> bool {
        self.link.as_ref().is_some_and(|l| l.is_ended())
    }

    /// Store a user message; its `ack` is queued on this connection before the `message`
    /// event (direct replies and events share the one outbox).
    pub async fn send(&self, req: SendRequest, reply_ref: Option<Value>) -> Result<(), HubError> {
        let r = self
            .handle
            .send_on(self.caller.clone(), req, self.conn_id, reply_ref)
            .await;
        self.answered(r)
    }

    /// Resolve a waiting tool call; its `ack` is queued on this connection just before the
    /// call's `tool.result`.
    pub async fn resolve_tool(
        &self,
        call_id: String,
        how: crate::session::ToolResolution,
        reply_ref: Option<Value>,
    ) -> Result<(), HubError> {
        let r = self
            .handle
            .resolve_on(call_id, how, self.conn_id, reply_ref)
            .await;
        self.answered(r)
    }

    /// Change the shared state from the version `base`; the `ack` is queued on this
    /// connection just before the `state.snapshot` / `state.delta` announcing the change.
    pub async fn set_state(
        &self,
        change: crate::session::StateChange,
        base: u64,
        reply_ref: Option<Value>,
    ) -> Result<(), HubError> {
        let r = self
            .handle
            .set_state_on(change, base, self.conn_id, reply_ref)
            .await;
        self.answered(r)
    }

    /// Cancel the active run, or the named run (active or queued).
    pub async fn cancel(&self, run_id: Option<String>) -> Result<(), HubError> {
        let r = self.handle.cancel(run_id).await;
        self.answered(r)
    }

    /// End the membership now: once this returns, the actor queues nothing more for it.
    pub async fn unsubscribe(mut self) -> Result<(), HubError> {
        let r = self.handle.unsubscribe(self.conn_id).await.map(|_| ());
        let r = self.answered(r.map(Ok));
        // Already forgotten by the actor: no `Prune` needed when this is dropped.
        self.link = None;
        r
    }

    fn answered<T>(&self, r: Result<Result<T, HubError>, Gone>) -> Result<T, HubError> {
        r.unwrap_or_else(|Gone| Err(self.gone()))
    }

    /// A subscribed session's actor only stops when the session is deleted or the hub shuts
    /// down.
    fn gone(&self) -> HubError {
        if self.is_ended() {
            HubError::session_not_found()
        } else {
            HubError::Unavailable("the session is restarting, try again".into())
        }
    }
}

impl Drop for Subscription {
    /// Ending a subscription needs no await: release the link, then nudge the actor.
    fn drop(&mut self) {
        if self.link.take().is_some() {
            self.handle.prune();
        }
    }
}
