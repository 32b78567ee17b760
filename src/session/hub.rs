//! `Hub`: the one entry transports use. It finds (or loads) a session's actor, checks that the
//! caller owns it, and forwards the request through the session's [`SessionHandle`],
//! following a session whose actor was just evicted to its new actor. Requests that need no
//! actor go to the [`Directory`].

use std::future::Future;
use std::sync::Arc;

use serde_json::Value;

use super::actor::Shared;
use super::budget::Budget;
use super::checkpoint::Checkpointer;
use super::directory::Directory;
use super::event::{Ack, StateAck, ToolAck};
use super::handle::{Gone, SessionHandle};
use super::outbox::Outbox;
use super::outbox::Subscriber;
use super::registry::Registry;
use super::request::{Caller, ItemsPage, ItemsQuery, SendRequest, SessionInfo};
use super::state::{Resolve as ToolResolution, StateChange, ToolPolicy};
use super::subscription::Subscription;
use crate::agent::Agent;
use crate::config::Config;
use crate::domain::{Position, ToolSpec};
use crate::error::HubError;
use crate::store::Store;
use crate::telemetry::Metrics;
use crate::tools::Tools;

/// The hub: sessions, their actors and the shared services. Cheap to clone.
#[derive(Clone)]
pub struct Hub {
    registry: Arc<Registry>,
    directory: Arc<Directory>,
}

/// How often a request follows a session whose actor stopped under it (evicted) to a new one.
const ATTEMPTS: usize = 3;

impl Hub {
    pub fn new(
        config: Arc<Config>,
        store: Arc<dyn Store>,
        agent: Arc<dyn Agent>,
        tools: Arc<Tools>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let shared = Arc::new(Shared {
            tools,
            budget: Budget::new(config.sessions_memory_mb.saturating_mul(1024 * 1024)),
            checkpoints: Checkpointer::spawn(&store),
            store: store.clone(),
            agent,
            config,
            metrics,
        });
        Hub {
            registry: Arc::new(Registry::new(shared)),
            directory: Arc::new(Directory::new(store)),
        }
    }

    pub fn config(&self) -> &Arc<Config> {
        &self.registry.shared().config
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.registry.shared().metrics
    }

    /// The client tools every ChatKit run offers (`--chatkit-client-tools`).
    pub fn chatkit_client_tools(&self) -> &[crate::domain::ToolSpec] {
        self.registry.shared().tools.chatkit_client_tools()
    }

    /// Wait (bounded) until every MCP server had its first connection attempt, so the first
    /// runs are offered the tools of the servers that are up.
    pub async fn tools_ready(&self) {
        self.registry.shared().tools.ready().await;
    }

    /// Session actors loaded right now.
    pub fn live_sessions(&self) -> usize {
        self.registry.live()
    }

    /// The actor of a session `caller` owns; someone else's session is `not_found`.
    fn handle(&self, caller: &Caller, id: &str) -> Result<SessionHandle, HubError> {
        let h = self.registry.get_or_load(id)?;
        if h.owner() != caller.sub() {
            return Err(HubError::session_not_found());
        }
        Ok(h)
    }

    /// Ask the session's actor, following it to a fresh actor when it stopped under us.
    async fn ask<T, F, Fut>(&self, caller: &Caller, id: &str, call: F) -> Result<T, HubError>
    where
        F: Fn(SessionHandle) -> Fut,
        Fut: Future<Output = Result<T, Gone>>,
    {
        for _ in 0..ATTEMPTS {
            if let Ok(v) = call(self.handle(caller, id)?).await {
                return Ok(v);
            }
        }
        Err(HubError::Unavailable(
            "the session is restarting, try again".into(),
        ))
    }

    pub async fn create_session(
        &self,
        caller: &Caller,
        title: Option<String>,
        metadata: Option<Value>,
    ) -> Result<SessionInfo, HubError> {
        self.directory.create(caller, title, metadata).await
    }

    /// Make sure the session `id` exists for `caller`, creating it under that id if it does
    /// not (AG-UI threads are named by the client). True when it was created now.
    pub async fn open_session(&self, caller: &Caller, id: &str) -> Result<bool, HubError> {
        self.directory.open(caller, id).await
    }

    /// `caller`'s sessions, newest first, older than the session `before`.
    pub fn list_sessions(
        &self,
        caller: &Caller,
        limit: usize,
        before: Option<&str>,
    ) -> Result<(Vec<SessionInfo>, bool), HubError> {
        self.directory.list(caller, limit, before)
    }

    /// Whether `id` is a session `caller` can see (cheap: no actor is loaded for a miss).
    pub fn exists(&self, caller: &Caller, id: &str) -> Result<bool, HubError> {
        self.directory.exists(caller, id)
    }

    /// The feedback stored on an item, if any.
    pub fn feedback(
        &self,
        caller: &Caller,
        id: &str,
        item_id: &str,
    ) -> Result<Option<String>, HubError> {
        self.directory.feedback(caller, id, item_id)
    }

    /// Whether the session `id` ever had the tool call `call_id` (waiting, resolved or run):
    /// AG-UI tells a tool message of its history from one naming a call that never was.
    pub fn has_tool_call(
        &self,
        caller: &Caller,
        id: &str,
        call_id: &str,
    ) -> Result<bool, HubError> {
        self.directory.has_call(caller, id, call_id)
    }

    /// Refuse client tools that take a server tool's name, as a send would: AG-UI checks a
    /// request's tools before its answers change anything.
    pub fn check_client_tools(&self, client_tools: &[ToolSpec]) -> Result<(), HubError> {
        self.registry.shared().tools.refuse_shadowing(client_tools)
    }

    pub async fn get_session(&self, caller: &Caller, id: &str) -> Result<SessionInfo, HubError> {
        let rec = self
            .ask(caller, id, |h| async move { h.info().await })
            .await?;
        Ok(SessionInfo::from(&rec))
    }

    /// Change the title (`Some(None)` clears it) and/or the metadata.
    pub async fn update_session(
        &self,
        caller: &Caller,
        id: &str,
        title: Option<Option<String>>,
        metadata: Option<Value>,
    ) -> Result<SessionInfo, HubError> {
        let rec = self
            .ask(caller, id, |h| {
                let (title, metadata) = (title.clone(), metadata.clone());
                async move { h.update(title, metadata).await }
            })
            .await??;
        Ok(SessionInfo::from(&rec))
    }

    /// Delete a session: subscribers get `session.deleted` and are dropped.
    pub async fn delete_session(&self, caller: &Caller, id: &str) -> Result<(), HubError> {
        self.ask(caller, id, |h| async move { h.delete().await })
            .await
    }

    pub async fn list_items(
        &self,
        caller: &Caller,
        id: &str,
        query: ItemsQuery,
    ) -> Result<ItemsPage, HubError> {
        self.ask(caller, id, |h| {
            let query = query.clone();
            async move { h.items(query).await }
        })
        .await?
    }

    /// Subscribe the connection whose outbox this is: the actor queues the `subscribed` reply,
    /// then the replay or a snapshot, then live events, all on `outbox`. Dropping the returned
    /// [`Subscription`] ends it.
    pub async fn subscribe(
        &self,
        caller: &Caller,
        id: &str,
        outbox: Outbox,
        since: Option<Position>,
        reply_ref: Option<Value>,
    ) -> Result<Subscription, HubError> {
        let conn_id = outbox.conn_id();
        for _ in 0..ATTEMPTS {
            let handle = self.handle(caller, id)?;
            let (sub, link) = Subscriber::new(outbox.clone());
            match handle
                .subscribe(sub, since.clone(), reply_ref.clone())
                .await
            {
                Ok(r) => {
                    r?;
                    let caller = caller.clone();
                    return Ok(Subscription::new(
                        id.to_owned(),
                        caller,
                        handle,
                        conn_id,
                        link,
                    ));
                }
                Err(Gone) => continue,
            }
        }
        Err(HubError::Unavailable(
            "the session is restarting, try again".into(),
        ))
    }

    /// The models a message may pick (PROTOCOL 1.2, `GET /v1/models`).
    pub fn models(&self) -> crate::agent::ModelList {
        self.registry.shared().agent.models()
    }

    /// The model id a message runs with: `requested`, or the default; `bad_request` for an id
    /// the hub does not serve. Transports call it early to refuse before creating anything.
    pub fn pick_model(&self, requested: Option<&str>) -> Result<String, HubError> {
        super::context::pick_model(&self.models(), requested)
    }

    /// Store a user message durably and start (or queue) its run; the ack comes back here.
    pub async fn send(&self, caller: &Caller, id: &str, req: SendRequest) -> Result<Ack, HubError> {
        self.ask(caller, id, |h| {
            let (caller, req) = (caller.clone(), req.clone());
            async move { h.send(caller, req).await }
        })
        .await?
    }

    /// Resolve a waiting tool call (a client tool's result, or an approval); the ack names the
    /// call's `tool.result` and comes back here once it is durable.
    pub async fn resolve_tool(
        &self,
        caller: &Caller,
        id: &str,
        call_id: &str,
        how: ToolResolution,
    ) -> Result<ToolAck, HubError> {
        self.ask(caller, id, |h| {
            let (call_id, how) = (call_id.to_owned(), how.clone());
            async move { h.resolve(call_id, how).await }
        })
        .await?
    }

    /// Cancel the active run (or the named run, active or queued).
    pub async fn cancel(
        &self,
        caller: &Caller,
        id: &str,
        run_id: Option<String>,
    ) -> Result<(), HubError> {
        self.ask(caller, id, |h| {
            let run_id = run_id.clone();
            async move { h.cancel(run_id).await }
        })
        .await?
    }

    /// Drop every item after the user message `item_id` and start a new run answering it;
    /// returns the run id. `busy` while a run is active or queued.
    pub async fn retry_after(
        &self,
        caller: &Caller,
        id: &str,
        item_id: &str,
    ) -> Result<String, HubError> {
        self.ask(caller, id, |h| {
            let (caller, item_id) = (caller.clone(), item_id.to_owned());
            async move { h.retry_after(caller, item_id).await }
        })
        .await?
    }

    /// Store feedback (`positive` / `negative`) on items of the session; all ids must exist.
    pub async fn set_feedback(
        &self,
        caller: &Caller,
        id: &str,
        item_ids: &[String],
        kind: &str,
    ) -> Result<(), HubError> {
        self.ask(caller, id, |h| {
            let (item_ids, kind) = (item_ids.to_vec(), kind.to_owned());
            async move { h.feedback(item_ids, kind).await }
        })
        .await?
    }

    /// Change the session's shared state (PROTOCOL 1.2): `base` is the version the change
    /// replaces (another one is `conflict`); without it (AG-UI's run input) the document is
    /// adopted, and one equal to the current document changes nothing (`None`). The ack comes
    /// once the change is durable.
    pub async fn set_state(
        &self,
        caller: &Caller,
        id: &str,
        change: StateChange,
        base: Option<u64>,
    ) -> Result<Option<StateAck>, HubError> {
        self.ask(caller, id, |h| {
            let change = change.clone();
            async move { h.set_state(change, base).await }
        })
        .await?
    }

    /// The session's shared state document (`None` before any) and its version.
    pub async fn get_state(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<(Option<Value>, u64), HubError> {
        let rec = self
            .ask(caller, id, |h| async move { h.info().await })
            .await?;
        Ok((rec.state, rec.state_version))
    }

    /// Drain every actor: queued runs are dropped, active runs get the drain timeout to finish,
    /// then the store records a clean shutdown.
    pub async fn shutdown(&self) {
        self.registry.shutdown_all().await;
        self.directory.close().await;
    }
}
