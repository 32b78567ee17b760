//! Session id -> actor handle, spawning actors on demand. Synchronous methods that return
//! cloned handles: no map guard is ever held across `.await`. The registry forgets an actor
//! itself when the actor's task ends (its spawn wraps the actor's loop), so actors know
//! nothing of the registry.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use dashmap::mapref::entry::Entry;
use dashmap::DashMap;

use super::actor::{Actor, Shared};
use super::handle::SessionHandle;
use crate::error::HubError;

pub(crate) struct Registry {
    map: Arc<DashMap<String, SessionHandle>>,
    shared: Arc<Shared>,
    next_actor: AtomicU64,
    /// Set at shutdown: no new actors.
    closing: AtomicBool,
}

impl Registry {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Registry {
            map: Arc::new(DashMap::new()),
            shared,
            next_actor: AtomicU64::new(1),
            closing: AtomicBool::new(false),
        }
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The live actor for `id`, loading it from the store if needed. A handle whose actor has
    /// stopped (evicted a moment ago) is replaced by a fresh actor.
    pub(crate) fn get_or_load(&self, id: &str) -> Result<SessionHandle, HubError> {
        if let Some(h) = self.map.get(id).map(|h| h.clone()) {
            if !h.is_closed() {
                return Ok(h);
            }
        }
        if self.closing.load(Ordering::Acquire) {
            return Err(HubError::Unavailable("the hub is shutting down".into()));
        }
        let record = self
            .shared
            .store
            .load_session(id)?
            .ok_or_else(HubError::session_not_found)?;
        let handle = match self.map.entry(id.to_owned()) {
            Entry::Occupied(o) if !o.get().is_closed() => o.get().clone(),
            Entry::Occupied(mut o) => {
                let handle = self.spawn(record);
                o.insert(handle.clone());
                handle
            }
            Entry::Vacant(v) => {
                let handle = self.spawn(record);
                v.insert(handle.clone());
                handle
            }
        };
        Ok(handle)
    }

    /// Start an actor; when its loop ends, its entry is removed (if still its own).
    fn spawn(&self, record: crate::store::SessionRecord) -> SessionHandle {
        let actor_id = self.next_actor.fetch_add(1, Ordering::Relaxed);
        let (actor, handle) = Actor::new(record, self.shared.clone(), actor_id);
        let map = self.map.clone();
        let id = actor.session_id().to_owned();
        let span = tracing::info_span!("session", session_id = %id);
        tokio::spawn(tracing::Instrument::instrument(
            async move {
                actor.run().await;
                map.remove_if(&id, |_, h| h.actor_id == actor_id);
            },
            span,
        ));
        handle
    }

    pub(crate) fn live(&self) -> usize {
        self.map.len()
    }

    /// Refuse new actors, then ask every live actor to drain and stop; wait for all of them.
    pub(crate) async fn shutdown_all(&self) {
        self.closing.store(true, Ordering::Release);
        let handles: Vec<SessionHandle> = self.map.iter().map(|e| e.value().clone()).collect();
        futures::future::join_all(handles.iter().map(|h| h.shutdown())).await;
    }
}
