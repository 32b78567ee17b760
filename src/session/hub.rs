//! `Hub`: the facade every transport goes through. It checks ownership, finds (or loads) the
//! session's actor and forwards the request, retrying once on an actor that was just evicted.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::oneshot;

use super::actor::Shared;
use super::event::{now_ms, now_rfc3339, Ack, Item, Position};
use super::handle::{Command, SessionHandle};
use super::outbox::Subscriber;
use super::registry::Registry;
use super::{new_epoch, new_id};
use crate::agent::Agent;
use crate::auth::Principal;
use crate::config::{BusyPolicy, Config};
use crate::error::HubError;
use crate::store::{SessionRecord, Store, WriteBatch};
use crate::telemetry::Metrics;

/// Where the ack of a send also goes, so that it precedes the `message` event on that connection.
#[derive(Debug, Clone)]
pub struct AckTo {
    pub conn_id: u64,
    pub reply_ref: Option<Value>,
}

/// A user message to store and answer.
#[derive(Debug, Clone)]
pub struct SendRequest {
    pub client_msg_id: String,
    pub text: String,
    /// Overrides the session's busy policy for this message.
    pub on_busy: Option<BusyPolicy>,
    pub ack_to: Option<AckTo>,
}

#[derive(utoipa::ToSchema)]
/// Session metadata as REST and other listings show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionInfo {
    pub id: String,
    pub title: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
}

impl From<&SessionRecord> for SessionInfo {
    fn from(r: &SessionRecord) -> Self {
        SessionInfo {
            id: r.id.clone(),
            title: r.title.clone(),
            created_at: r.created_at.clone(),
            updated_at: r.updated_at.clone(),
            metadata: r.metadata.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemOrder {
    #[default]
    Asc,
    Desc,
}

/// A page request over a session's items, by item ids.
#[derive(Debug, Clone, Default)]
pub struct ItemsQuery {
    pub limit: usize,
    pub before: Option<String>,
    pub after: Option<String>,
    pub order: ItemOrder,
}

#[derive(utoipa::ToSchema)]
#[schema(description = "A page of a session's items, oldest first unless asked otherwise")]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemsPage {
    pub items: Vec<Item>,
    pub has_more: bool,
}

/// The hub: sessions, their actors and the shared services. Cheap to clone.
#[derive(Clone)]
pub struct Hub {
    registry: Arc<Registry>,
}

/// How often a request follows a session whose actor stopped under it (evicted) to a new one.
const ATTEMPTS: usize = 3;

impl Hub {
    pub fn new(
        config: Arc<Config>,
        store: Arc<dyn Store>,
        agent: Arc<dyn Agent>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let checkpoints = super::checkpoint::Checkpointer::spawn(&store);
        let shared = Arc::new(Shared {
            store,
            agent,
            config,
            metrics,
            checkpoints,
        });
        Hub {
            registry: Registry::new(shared),
        }
    }

    pub fn config(&self) -> &Arc<Config> {
        &self.registry.shared().config
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.registry.shared().metrics
    }

    /// Session actors loaded right now.
    pub fn live_sessions(&self) -> usize {
        self.registry.live()
    }

    fn store(&self) -> &Arc<dyn Store> {
        &self.registry.shared().store
    }

    /// The actor of a session `who` owns; someone else's session is `not_found`.
    fn handle(&self, who: &Principal, id: &str) -> Result<SessionHandle, HubError> {
        let h = self.registry.get_or_load(id)?;
        if *h.owner != *who.sub {
            return Err(HubError::session_not_found());
        }
        Ok(h)
    }

    /// Ask the session's actor; `build` makes the command for each attempt.
    async fn ask<T>(
        &self,
        who: &Principal,
        id: &str,
        build: impl Fn(oneshot::Sender<T>) -> Command,
    ) -> Result<T, HubError> {
        for _ in 0..ATTEMPTS {
            let h = self.handle(who, id)?;
            let (tx, rx) = oneshot::channel();
            if let Some(v) = h.call(build(tx), rx).await {
                return Ok(v);
            }
        }
        Err(HubError::Unavailable(
            "the session is restarting, try again".into(),
        ))
    }

    /// The record of a new, empty session.
    fn new_record(
        &self,
        who: &Principal,
        id: String,
        title: Option<String>,
        metadata: Option<Value>,
    ) -> SessionRecord {
        let now = now_rfc3339();
        SessionRecord {
            id,
            owner: who.sub.clone(),
            title,
            metadata,
            created_at: now.clone(),
            created_ms: now_ms(),
            updated_at: now,
            epoch: new_epoch(),
            head_seq: 0,
            generation: self.store().generation(),
            next_ord: 0,
        }
    }

    pub async fn create_session(
        &self,
        who: &Principal,
        title: Option<String>,
        metadata: Option<Value>,
    ) -> Result<SessionInfo, HubError> {
        let record = self.new_record(who, new_id("ses"), title, metadata);
        self.store().write(WriteBatch {
            session: Some(record.clone()),
            ..Default::default()
        })?;
        self.store().barrier().await?;
        Ok(SessionInfo::from(&record))
    }

    /// Make sure the session `id` exists for `who`, creating it under that id if it does not
    /// (AG-UI threads are named by the client). Returns true when it was created now; a
    /// session of someone else is `not_found`.
    pub async fn open_session(&self, who: &Principal, id: &str) -> Result<bool, HubError> {
        // Creations by name are serialised, so two first requests on one thread make one
        // session; the common case (it exists) never takes the lock.
        static CREATE_BY_ID: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
        let owned = |r: &SessionRecord| {
            if r.owner == who.sub {
                Ok(false)
            } else {
                Err(HubError::session_not_found())
            }
        };
        if let Some(r) = self.store().load_session(id)? {
            return owned(&r);
        }
        let _guard = CREATE_BY_ID.lock().await;
        if let Some(r) = self.store().load_session(id)? {
            return owned(&r);
        }
        let record = self.new_record(who, id.to_owned(), None, None);
        self.store().write(WriteBatch {
            session: Some(record),
            ..Default::default()
        })?;
        self.store().barrier().await?;
        Ok(true)
    }

    /// `who`'s sessions, newest first, older than the session `before`.
    pub async fn list_sessions(
        &self,
        who: &Principal,
        limit: usize,
        before: Option<&str>,
    ) -> Result<(Vec<SessionInfo>, bool), HubError> {
        let before = match before {
            Some(id) => match self.store().load_session(id)? {
                Some(r) if r.owner == who.sub => Some(r),
                _ => {
                    return Err(HubError::BadRequest(
                        "unknown session id in `before`".into(),
                    ))
                }
            },
            None => None,
        };
        let (records, more) = self
            .store()
            .list_sessions(&who.sub, before.as_ref(), limit)?;
        Ok((records.iter().map(SessionInfo::from).collect(), more))
    }

    pub async fn get_session(&self, who: &Principal, id: &str) -> Result<SessionInfo, HubError> {
        let rec = self
            .ask(who, id, |tx| Command::Info { respond_to: tx })
            .await?;
        Ok(SessionInfo::from(&rec))
    }

    /// Change the title (`Some(None)` clears it) and/or the metadata.
    pub async fn update_session(
        &self,
        who: &Principal,
        id: &str,
        title: Option<Option<String>>,
        metadata: Option<Value>,
    ) -> Result<SessionInfo, HubError> {
        let rec = self
            .ask(who, id, |tx| Command::Update {
                title: title.clone(),
                metadata: metadata.clone(),
                respond_to: tx,
            })
            .await??;
        Ok(SessionInfo::from(&rec))
    }

    /// Delete a session: subscribers get `session.deleted` and are dropped.
    pub async fn delete_session(&self, who: &Principal, id: &str) -> Result<(), HubError> {
        self.ask(who, id, |tx| Command::Delete { respond_to: tx })
            .await
    }

    pub async fn list_items(
        &self,
        who: &Principal,
        id: &str,
        query: ItemsQuery,
    ) -> Result<ItemsPage, HubError> {
        self.ask(who, id, |tx| Command::Items {
            query: query.clone(),
            respond_to: tx,
        })
        .await?
    }

    /// Register `sub` for the session's events. The actor queues the `subscribed` reply, then
    /// the replay or a snapshot, then live events, all on `sub`'s outbox.
    pub async fn subscribe(
        &self,
        who: &Principal,
        id: &str,
        sub: Subscriber,
        since: Option<Position>,
        reply_ref: Option<Value>,
    ) -> Result<(), HubError> {
        self.ask(who, id, |tx| Command::Subscribe {
            sub: sub.clone(),
            since: since.clone(),
            reply_ref: reply_ref.clone(),
            respond_to: tx,
        })
        .await?
    }

    /// Stop sending the session's events to the connection; false if it was not subscribed.
    pub async fn unsubscribe(
        &self,
        who: &Principal,
        id: &str,
        conn_id: u64,
    ) -> Result<bool, HubError> {
        self.ask(who, id, |tx| Command::Unsubscribe {
            conn_id,
            respond_to: tx,
        })
        .await
    }

    /// Store a user message durably and start (or queue) its run.
    pub async fn send(&self, who: &Principal, id: &str, req: SendRequest) -> Result<Ack, HubError> {
        if who.is_limited() {
            // Per-user limits (src/auth): existence and ownership first, so a quota never
            // reveals someone else's session; a duplicate costs nothing (AG-UI resends history).
            self.handle(who, id)?;
            if self.store().get_idem(id, &req.client_msg_id)?.is_none() {
                who.admit_message()?;
            }
        }
        self.ask(who, id, |tx| Command::Send {
            req: req.clone(),
            respond_to: tx,
        })
        .await?
    }

    /// Cancel the active run (or the named run, active or queued).
    pub async fn cancel(
        &self,
        who: &Principal,
        id: &str,
        run_id: Option<String>,
    ) -> Result<(), HubError> {
        self.ask(who, id, |tx| Command::Cancel {
            run_id: run_id.clone(),
            respond_to: tx,
        })
        .await?
    }

    /// Drop every item after the user message `item_id` and start a new run answering it;
    /// returns the run id. `busy` while a run is active or queued.
    pub async fn retry_after(
        &self,
        who: &Principal,
        id: &str,
        item_id: &str,
    ) -> Result<String, HubError> {
        if who.is_limited() {
            self.handle(who, id)?;
            who.admit_run()?;
        }
        self.ask(who, id, |tx| Command::RetryAfter {
            item_id: item_id.to_owned(),
            respond_to: tx,
        })
        .await?
    }

    /// Store feedback (`positive` / `negative`) on items of the session; all ids must exist.
    pub async fn set_feedback(
        &self,
        who: &Principal,
        id: &str,
        item_ids: &[String],
        kind: &str,
    ) -> Result<(), HubError> {
        self.ask(who, id, |tx| Command::Feedback {
            item_ids: item_ids.to_vec(),
            kind: kind.to_owned(),
            respond_to: tx,
        })
        .await?
    }

    /// The feedback stored on an item, if any.
    pub fn feedback(
        &self,
        who: &Principal,
        id: &str,
        item_id: &str,
    ) -> Result<Option<String>, HubError> {
        if !self.exists(who, id)? {
            return Err(HubError::session_not_found());
        }
        Ok(self.store().feedback(id, item_id)?)
    }

    /// Whether `id` is a session `who` can see (cheap: no actor is loaded for a miss).
    pub fn exists(&self, who: &Principal, id: &str) -> Result<bool, HubError> {
        Ok(self
            .store()
            .load_session(id)?
            .is_some_and(|r| r.owner == who.sub))
    }

    /// Drain every actor: queued runs are dropped, active runs get the drain timeout to finish,
    /// then the store records a clean shutdown.
    pub async fn shutdown(&self) {
        self.registry.shutdown_all().await;
        let store = self.store();
        if let Err(e) = store.mark_clean_shutdown() {
            tracing::error!(error = %e, "recording clean shutdown failed");
        }
        let _ = store.barrier().await;
        if let Err(e) = store.close() {
            tracing::error!(error = %e, "closing the store failed");
        }
    }
}
