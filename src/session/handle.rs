//! `SessionHandle`: the only way into a session actor. A cheap clone around a bounded command
//! channel; every command carries a oneshot for its reply.

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use super::event::{Ack, Position};
use super::hub::{ItemsPage, ItemsQuery, SendRequest};
use super::outbox::Subscriber;
use crate::error::HubError;
use crate::store::SessionRecord;

/// What an actor can be asked. Each `respond_to` is awaited by exactly one caller; dropping it
/// unanswered (the actor stopped) makes the caller retry on a fresh actor.
#[derive(Debug)]
pub(crate) enum Command {
    Subscribe {
        sub: Subscriber,
        since: Option<Position>,
        reply_ref: Option<Value>,
        respond_to: oneshot::Sender<Result<(), HubError>>,
    },
    Unsubscribe {
        conn_id: u64,
        respond_to: oneshot::Sender<bool>,
    },
    Send {
        req: SendRequest,
        respond_to: oneshot::Sender<Result<Ack, HubError>>,
    },
    Cancel {
        run_id: Option<String>,
        respond_to: oneshot::Sender<Result<(), HubError>>,
    },
    Info {
        respond_to: oneshot::Sender<SessionRecord>,
    },
    Update {
        title: Option<Option<String>>,
        metadata: Option<Value>,
        respond_to: oneshot::Sender<Result<SessionRecord, HubError>>,
    },
    Delete {
        respond_to: oneshot::Sender<()>,
    },
    Items {
        query: ItemsQuery,
        respond_to: oneshot::Sender<Result<ItemsPage, HubError>>,
    },
    Shutdown {
        respond_to: oneshot::Sender<()>,
    },
    /// Drop the items after a user message and answer it again (ChatKit retry).
    RetryAfter {
        item_id: String,
        respond_to: oneshot::Sender<Result<String, HubError>>,
    },
    /// Store feedback on items (ChatKit `items.feedback`).
    Feedback {
        item_ids: Vec<String>,
        kind: String,
        respond_to: oneshot::Sender<Result<(), HubError>>,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct SessionHandle {
    pub(crate) owner: Arc<str>,
    /// Tells this actor apart from a later one for the same session (eviction races).
    pub(crate) actor_id: u64,
    pub(crate) tx: mpsc::Sender<Command>,
}

impl SessionHandle {
    /// Send a command and wait for its reply. `None` means the actor stopped before answering
    /// (evicted or deleted): the caller looks the session up again.
    pub(crate) async fn call<T>(&self, cmd: Command, reply: oneshot::Receiver<T>) -> Option<T> {
        self.tx.send(cmd).await.ok()?;
        reply.await.ok()
    }
}
