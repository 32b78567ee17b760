//! The sessions a user has, as the store knows them, for requests that need no actor:
//! creating a session, opening one by a client-chosen id (AG-UI threads), listing, existence,
//! stored feedback and known tool calls.

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::Mutex;

use super::request::{Caller, SessionInfo};
use crate::domain::{new_epoch, new_id, now_ms, now_rfc3339};
use crate::error::HubError;
use crate::store::{SessionRecord, Store, WriteBatch};

pub(crate) struct Directory {
    store: Arc<dyn Store>,
    /// Creations by client-chosen id are serialised, so two first requests on one AG-UI
    /// thread make one session; the common case (it exists) never takes the lock.
    create_by_id: Mutex<()>,
}

impl Directory {
    pub(crate) fn new(store: Arc<dyn Store>) -> Self {
        Directory {
            store,
            create_by_id: Mutex::new(()),
        }
    }

    /// The record of a new, empty session.
    fn new_record(
        &self,
        caller: &Caller,
        id: String,
        title: Option<String>,
        metadata: Option<Value>,
    ) -> SessionRecord {
        let now = now_rfc3339();
        SessionRecord {
            id,
            owner: caller.sub().to_owned(),
            title,
            metadata,
            created_at: now.clone(),
            created_ms: now_ms(),
            updated_at: now,
            epoch: new_epoch(),
            head_seq: 0,
            generation: self.store.generation(),
            next_ord: 0,
            waiting: None,
            state: None,
            state_version: 0,
        }
    }

    async fn store_durably(&self, record: SessionRecord) -> Result<(), HubError> {
        self.store.write(WriteBatch {
            session: Some(record),
            ..Default::default()
        })?;
        self.store.barrier().await?;
        Ok(())
    }

    pub(crate) async fn create(
        &self,
        caller: &Caller,
        title: Option<String>,
        metadata: Option<Value>,
    ) -> Result<SessionInfo, HubError> {
        let record = self.new_record(caller, new_id("ses"), title, metadata);
        let info = SessionInfo::from(&record);
        self.store_durably(record).await?;
        Ok(info)
    }

    /// Make sure the session `id` exists for `caller`, creating it under that id if it does
    /// not. True when it was created now; a session of someone else is `not_found`.
    pub(crate) async fn open(&self, caller: &Caller, id: &str) -> Result<bool, HubError> {
        let owned = |r: &SessionRecord| {
            if r.owner == caller.sub() {
                Ok(false)
            } else {
                Err(HubError::session_not_found())
            }
        };
        if let Some(r) = self.store.load_session(id)? {
            return owned(&r);
        }
        let _guard = self.create_by_id.lock().await;
        if let Some(r) = self.store.load_session(id)? {
            return owned(&r);
        }
        self.store_durably(self.new_record(caller, id.to_owned(), None, None))
            .await?;
        Ok(true)
    }

    /// `caller`'s sessions, newest first, older than the session `before`.
    pub(crate) fn list(
        &self,
        caller: &Caller,
        limit: usize,
        before: Option<&str>,
    ) -> Result<(Vec<SessionInfo>, bool), HubError> {
        let before = match before {
            Some(id) => match self.store.load_session(id)? {
                Some(r) if r.owner == caller.sub() => Some(r),
                _ => {
                    return Err(HubError::BadRequest(
                        "unknown session id in `before`".into(),
                    ))
                }
            },
            None => None,
        };
        let (records, more) = self
            .store
            .list_sessions(caller.sub(), before.as_ref(), limit)?;
        Ok((records.iter().map(SessionInfo::from).collect(), more))
    }

    /// Whether `id` is a session `caller` can see (no actor is loaded for it).
    pub(crate) fn exists(&self, caller: &Caller, id: &str) -> Result<bool, HubError> {
        Ok(self
            .store
            .load_session(id)?
            .is_some_and(|r| r.owner == caller.sub()))
    }

    /// The feedback stored on an item, if any.
    pub(crate) fn feedback(
        &self,
        caller: &Caller,
        id: &str,
        item_id: &str,
    ) -> Result<Option<String>, HubError> {
        if !self.exists(caller, id)? {
            return Err(HubError::session_not_found());
        }
        Ok(self.store.feedback(id, item_id)?)
    }

    /// Whether the session `id` ever had the tool call `call_id` (every call is recorded once
    /// its arguments are complete).
    pub(crate) fn has_call(
        &self,
        caller: &Caller,
        id: &str,
        call_id: &str,
    ) -> Result<bool, HubError> {
        if !self.exists(caller, id)? {
            return Err(HubError::session_not_found());
        }
        Ok(self.store.get_call(id, call_id)?.is_some())
    }

    /// Record a clean shutdown, make it durable and close the store.
    pub(crate) async fn close(&self) {
        if let Err(e) = self.store.mark_clean_shutdown() {
            tracing::error!(error = %e, "recording clean shutdown failed");
        }
        let _ = self.store.barrier().await;
        if let Err(e) = self.store.close() {
            tracing::error!(error = %e, "closing the store failed");
        }
    }
}
