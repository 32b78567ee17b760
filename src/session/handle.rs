//! `SessionHandle`: the only way into a session actor, and the seam a remote handle (a session
//! owned by another node) will replace. A cheap clone around the actor's bounded command
//! channel; every method sends one command carrying a oneshot for its reply and waits.
//! `Err(Gone)` means the actor stopped before answering (evicted, deleted, shut down): the
//! `Hub` looks the session up again and retries.

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use super::event::{Ack, StateAck, ToolAck};
use super::outbox::Subscriber;
use super::request::{Caller, ItemsPage, ItemsQuery, SendRequest};
use super::state::{Resolve, StateChange};
use crate::domain::Position;
use crate::error::HubError;
use crate::store::SessionRecord;

type Reply<T> = oneshot::Sender<Result<T, HubError>>;

/// Where the ack of a send goes: exactly one place.
#[derive(Debug)]
pub(crate) enum SendReply {
    /// Back to the caller (REST, SSE POST, ChatKit, AG-UI).
    Caller(Reply<Ack>),
    /// Onto the subscribed connection's outbox, just before the `message` event (WebSocket);
    /// the caller learns only whether the send failed.
    Connection {
        conn_id: u64,
        reply_ref: Option<Value>,
        respond_to: Reply<()>,
    },
}

/// Where the ack of a `tool_result` or `tool_approval` goes: exactly one place, like a send's.
#[derive(Debug)]
pub(crate) enum ToolReply {
    Caller(Reply<ToolAck>),
    /// The ack is queued on the connection. `respond_to` tells the connection's reader that
    /// the frame was taken (or why not); it is answered as soon as the frame is accepted, even
    /// when the ack waits for an approved tool to run, so the reader goes on reading (`None`
    /// once answered).
    Connection {
        conn_id: u64,
        reply_ref: Option<Value>,
        respond_to: Option<Reply<()>>,
    },
}

/// Where the ack of a shared-state change goes: back to the caller (REST, AG-UI), or onto the
/// subscribed connection just before the event announcing the change (WebSocket).
#[derive(Debug)]
pub(crate) enum StateReply {
    Caller(Reply<Option<StateAck>>),
    Connection {
        conn_id: u64,
        reply_ref: Option<Value>,
        respond_to: Reply<()>,
    },
}

/// What an actor can be asked. Each `respond_to` is awaited by exactly one caller; dropping it
/// unanswered (the actor stopped) makes the caller retry on a fresh actor.
#[derive(Debug)]
pub(crate) enum Command {
    Subscribe {
        sub: Subscriber,
        since: Option<Position>,
        reply_ref: Option<Value>,
        respond_to: Reply<()>,
    },
    Unsubscribe {
        conn_id: u64,
        respond_to: oneshot::Sender<bool>,
    },
    /// A `Subscription` was dropped: forget the subscribers whose `Subscription` is gone (and
    /// look again at whether the session is idle). No reply.
    Prune,
    Send {
        caller: Caller,
        req: SendRequest,
        reply: SendReply,
    },
    Cancel {
        run_id: Option<String>,
        respond_to: Reply<()>,
    },
    /// A client's result for a pending call, or a person's decision on an approval.
    Resolve {
        call_id: String,
        how: Resolve,
        reply: ToolReply,
    },
    Info {
        respond_to: oneshot::Sender<SessionRecord>,
    },
    Update {
        title: Option<Option<String>>,
        metadata: Option<Value>,
        respond_to: Reply<SessionRecord>,
    },
    Delete {
        respond_to: oneshot::Sender<()>,
    },
    Items {
        query: ItemsQuery,
        respond_to: Reply<ItemsPage>,
    },
    Shutdown {
        respond_to: oneshot::Sender<()>,
    },
    /// Drop the items after a user message and answer it again (ChatKit retry).
    RetryAfter {
        caller: Caller,
        item_id: String,
        respond_to: Reply<String>,
    },
    /// Change the shared state document (PROTOCOL 1.2); `base` is the version it replaces
    /// (none: adopt the document, AG-UI's run input).
    SetState {
        change: StateChange,
        base: Option<u64>,
        reply: StateReply,
    },
    /// Store feedback on items (ChatKit `items.feedback`).
    Feedback {
        item_ids: Vec<String>,
        kind: String,
        respond_to: Reply<()>,
    },
}

/// The actor stopped before it answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Gone;

#[derive(Debug, Clone)]
pub(crate) struct SessionHandle {
    owner: Arc<str>,
    /// Tells this actor apart from a later one for the same session (eviction races).
    pub(crate) actor_id: u64,
    /// The actor holds the receiver; it closes it when it stops. Commands travel boxed: a
    /// channel allocates its slots 32 at a time, and 32 inline commands took 7 kB in every
    /// loaded session, idle or not.
    tx: mpsc::Sender<Box<Command>>,
}

impl SessionHandle {
    pub(crate) fn new(owner: Arc<str>, actor_id: u64, tx: mpsc::Sender<Box<Command>>) -> Self {
        SessionHandle {
            owner,
            actor_id,
            tx,
        }
    }

    /// The user the session belongs to.
    pub(crate) fn owner(&self) -> &str {
        &self.owner
    }

    /// The actor has stopped: this handle can no longer reach it.
    pub(crate) fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    async fn call<T>(&self, build: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, Gone> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Box::new(build(tx))).await.map_err(|_| Gone)?;
        rx.await.map_err(|_| Gone)
    }

    pub(crate) async fn subscribe(
        &self,
        sub: Subscriber,
        since: Option<Position>,
        reply_ref: Option<Value>,
    ) -> Result<Result<(), HubError>, Gone> {
        self.call(|respond_to| Command::Subscribe {
            sub,
            since,
            reply_ref,
            respond_to,
        })
        .await
    }

    pub(crate) async fn unsubscribe(&self, conn_id: u64) -> Result<bool, Gone> {
        self.call(|respond_to| Command::Unsubscribe {
            conn_id,
            respond_to,
        })
        .await
    }

    /// Tell the actor a subscription was dropped, without waiting (from `Drop`). When its
    /// queue is full the actor is busy anyway and looks at its subscribers before it idles.
    pub(crate) fn prune(&self) {
        let _ = self.tx.try_send(Box::new(Command::Prune));
    }

    pub(crate) async fn send(
        &self,
        caller: Caller,
        req: SendRequest,
    ) -> Result<Result<Ack, HubError>, Gone> {
        self.call(|tx| Command::Send {
            caller,
            req,
            reply: SendReply::Caller(tx),
        })
        .await
    }

    /// Send with the ack queued on the connection `conn_id`, before the `message` event.
    pub(crate) async fn send_on(
        &self,
        caller: Caller,
        req: SendRequest,
        conn_id: u64,
        reply_ref: Option<Value>,
    ) -> Result<Result<(), HubError>, Gone> {
        self.call(|respond_to| Command::Send {
            caller,
            req,
            reply: SendReply::Connection {
                conn_id,
                reply_ref,
                respond_to,
            },
        })
        .await
    }

    pub(crate) async fn resolve(
        &self,
        call_id: String,
        how: Resolve,
    ) -> Result<Result<ToolAck, HubError>, Gone> {
        self.call(|tx| Command::Resolve {
            call_id,
            how,
            reply: ToolReply::Caller(tx),
        })
        .await
    }

    /// Resolve with the ack queued on the connection `conn_id`.
    pub(crate) async fn resolve_on(
        &self,
        call_id: String,
        how: Resolve,
        conn_id: u64,
        reply_ref: Option<Value>,
    ) -> Result<Result<(), HubError>, Gone> {
        self.call(|respond_to| Command::Resolve {
            call_id,
            how,
            reply: ToolReply::Connection {
                conn_id,
                reply_ref,
                respond_to: Some(respond_to),
            },
        })
        .await
    }

    pub(crate) async fn cancel(
        &self,
        run_id: Option<String>,
    ) -> Result<Result<(), HubError>, Gone> {
        self.call(|respond_to| Command::Cancel { run_id, respond_to })
            .await
    }

    pub(crate) async fn info(&self) -> Result<SessionRecord, Gone> {
        self.call(|respond_to| Command::Info { respond_to }).await
    }

    pub(crate) async fn update(
        &self,
        title: Option<Option<String>>,
        metadata: Option<Value>,
    ) -> Result<Result<SessionRecord, HubError>, Gone> {
        self.call(|respond_to| Command::Update {
            title,
            metadata,
            respond_to,
        })
        .await
    }

    pub(crate) async fn delete(&self) -> Result<(), Gone> {
        self.call(|respond_to| Command::Delete { respond_to }).await
    }

    pub(crate) async fn items(
        &self,
        query: ItemsQuery,
    ) -> Result<Result<ItemsPage, HubError>, Gone> {
        self.call(|respond_to| Command::Items { query, respond_to })
            .await
    }

    pub(crate) async fn retry_after(
        &self,
        caller: Caller,
        item_id: String,
    ) -> Result<Result<String, HubError>, Gone> {
        self.call(|respond_to| Command::RetryAfter {
            caller,
            item_id,
            respond_to,
        })
        .await
    }

    pub(crate) async fn feedback(
        &self,
        item_ids: Vec<String>,
        kind: String,
    ) -> Result<Result<(), HubError>, Gone> {
        self.call(|respond_to| Command::Feedback {
            item_ids,
            kind,
            respond_to,
        })
        .await
    }

    /// Change the shared state; the ack (none: an adopted document equal to the current one
    /// changed nothing) comes back once the change is durable.
    pub(crate) async fn set_state(
        &self,
        change: StateChange,
        base: Option<u64>,
    ) -> Result<Result<Option<StateAck>, HubError>, Gone> {
        self.call(|tx| Command::SetState {
            change,
            base,
            reply: StateReply::Caller(tx),
        })
        .await
    }

    /// Change the shared state with the ack queued on the connection `conn_id`.
    pub(crate) async fn set_state_on(
        &self,
        change: StateChange,
        base: u64,
        conn_id: u64,
        reply_ref: Option<Value>,
    ) -> Result<Result<(), HubError>, Gone> {
        self.call(|respond_to| Command::SetState {
            change,
            base: Some(base),
            reply: StateReply::Connection {
                conn_id,
                reply_ref,
                respond_to,
            },
        })
        .await
    }

    /// Drain and stop: queued runs are dropped, the active one gets the drain timeout.
    pub(crate) async fn shutdown(&self) -> Result<(), Gone> {
        self.call(|respond_to| Command::Shutdown { respond_to })
            .await
    }
}
