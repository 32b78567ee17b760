//! Session id -> actor handle, spawning actors on demand and forgetting evicted ones.
//! Synchronous methods that return cloned handles: no map guard is ever held across `.await`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use dashmap::mapref::entry::Entry;
use dashmap::DashMap;
use tokio::sync::oneshot;

use super::actor::{Actor, Shared};
use super::handle::{Command, SessionHandle};
use crate::error::HubError;

pub(crate) struct Registry {
    map: DashMap<String, SessionHandle>,
    shared: Arc<Shared>,
    next_actor: AtomicU64,
    closing: AtomicBool,
    /// Handed to actors so they can remove themselves on eviction.
    me: Weak<Registry>,
}

impl Registry {
    pub(crate) fn new(shared: Arc<Shared>) -> Arc<Self> {
        Arc::new_cyclic(|me| Registry {
            map: DashMap::new(),
            shared,
            next_actor: AtomicU64::new(1),
            closing: AtomicBool::new(false),
            me: me.clone(),
        })
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The live actor for `id`, loading it from the store if needed.
    pub(crate) fn get_or_load(&self, id: &str) -> Result<SessionHandle, HubError> {
        if let Some(h) = self.map.get(id) {
            return Ok(h.clone());
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
            Entry::Occupied(o) => o.get().clone(),
            Entry::Vacant(v) => {
                let actor_id = self.next_actor.fetch_add(1, Ordering::Relaxed);
                let handle = Actor::spawn(record, self.shared.clone(), self.me.clone(), actor_id);
                v.insert(handle.clone());
                handle
            }
        };
        Ok(handle)
    }

    /// Forget `id` if it still maps to the actor `actor_id`.
    pub(crate) fn remove(&self, id: &str, actor_id: u64) {
        self.map.remove_if(id, |_, h| h.actor_id == actor_id);
    }

    pub(crate) fn live(&self) -> usize {
        self.map.len()
    }

    /// Refuse new actors, then ask every live actor to drain and stop; wait for all of them.
    pub(crate) async fn shutdown_all(&self) {
        self.closing.store(true, Ordering::Release);
        let handles: Vec<SessionHandle> = self.map.iter().map(|e| e.value().clone()).collect();
        let waits = handles.into_iter().map(|h| async move {
            let (tx, rx) = oneshot::channel();
            h.call(Command::Shutdown { respond_to: tx }, rx).await;
        });
        futures::future::join_all(waits).await;
    }
}
