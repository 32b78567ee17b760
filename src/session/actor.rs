//! The session actor: owns one session's record, subscribers, replay tail, active run and
//! queue. Everything that changes the session happens here, one command at a time, so events
//! get gap-free seqs and every subscriber sees them in one order.

use std::collections::VecDeque;
use std::sync::{Arc, Weak};

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::event::{now_ms, now_rfc3339, Event, EventBody};
use super::handle::{Command, SessionHandle};
use super::hub::{ItemOrder, ItemsPage, ItemsQuery};
use super::new_epoch;
use super::outbox::{Outbound, PushError, Subscriber};
use super::registry::Registry;
use super::run::{ActiveRun, PendingRun};
use crate::agent::Agent;
use crate::config::Config;
use crate::error::HubError;
use crate::store::{ItemRange, SessionRecord, Store, WriteBatch};
use crate::telemetry::Metrics;

/// What every actor shares: the store, the agent, the config and the metrics.
pub(crate) struct Shared {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) agent: Arc<dyn Agent>,
    pub(crate) config: Arc<Config>,
    pub(crate) metrics: Arc<Metrics>,
    /// Writes streaming text for every actor, off the tokio workers.
    pub(crate) checkpoints: super::checkpoint::Checkpointer,
}

pub(crate) struct Actor {
    pub(super) id: String,
    pub(super) record: SessionRecord,
    pub(super) shared: Arc<Shared>,
    registry: Weak<Registry>,
    actor_id: u64,
    /// Commands from handles; closed when the actor stops.
    rx: mpsc::Receiver<Command>,
    pub(super) subscribers: Vec<Subscriber>,
    /// The most recent events, for replay on resume.
    pub(super) tail: VecDeque<Arc<Event>>,
    pub(super) active: Option<ActiveRun>,
    pub(super) queue: VecDeque<PendingRun>,
    last_activity: Instant,
    /// Set once a shutdown was asked for; answered when the actor stops.
    pub(super) stopping: Option<tokio::sync::oneshot::Sender<()>>,
    stop_deadline: Option<Instant>,
}

/// Why the actor's loop ends.
enum Exit {
    Evicted,
    Deleted,
    Stopped,
}

impl Actor {
    pub(crate) fn spawn(
        mut record: SessionRecord,
        shared: Arc<Shared>,
        registry: Weak<Registry>,
        actor_id: u64,
    ) -> SessionHandle {
        // A record from an earlier generation (the process crashed since it was written) may be
        // behind the seqs clients saw: continuity is not guaranteed, so start a new epoch.
        let generation = shared.store.generation();
        if record.generation != generation {
            record.epoch = new_epoch();
            record.head_seq = 0;
            record.generation = generation;
        }
        let (tx, rx) = mpsc::channel(shared.config.command_queue);
        let handle = SessionHandle {
            owner: record.owner.as_str().into(),
            actor_id,
            tx,
        };
        let actor = Actor {
            id: record.id.clone(),
            record,
            shared,
            registry,
            actor_id,
            rx,
            subscribers: Vec::new(),
            tail: VecDeque::new(),
            active: None,
            queue: VecDeque::new(),
            last_activity: Instant::now(),
            stopping: None,
            stop_deadline: None,
        };
        let span = tracing::info_span!("session", session_id = %actor.id);
        tokio::spawn(tracing::Instrument::instrument(actor.run(), span));
        handle
    }

    async fn run(mut self) {
        self.shared.metrics.sessions_live.inc();
        let mut checkpoint = tokio::time::interval(self.shared.config.checkpoint());
        checkpoint.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let exit = loop {
            let idle_at = self.last_activity + self.shared.config.idle_evict();
            let evictable = self.is_idle();
            let stop_at = self.stop_deadline;
            tokio::select! {
                cmd = self.rx.recv() => {
                    self.last_activity = Instant::now();
                    match cmd {
                        Some(cmd) => if let Some(exit) = self.handle(cmd).await { break exit },
                        None => break Exit::Stopped,
                    }
                }
                msg = ActiveRun::recv(&mut self.active) => {
                    self.last_activity = Instant::now();
                    self.on_run_msg(msg).await;
                    if self.stopping.is_some() && self.active.is_none() { break Exit::Stopped }
                }
                _ = checkpoint.tick(), if self.active.is_some() => self.checkpoint(),
                _ = tokio::time::sleep_until(idle_at), if evictable => {
                    self.prune_closed();
                    if self.is_idle() && self.rx.is_empty() { break Exit::Evicted }
                    self.last_activity = Instant::now();
                }
                _ = sleep_until_opt(stop_at), if stop_at.is_some() => {
                    self.interrupt_for_shutdown().await;
                    break Exit::Stopped;
                }
            }
        };
        self.stop(exit);
    }

    fn is_idle(&self) -> bool {
        self.active.is_none()
            && self.queue.is_empty()
            && self.stopping.is_none()
            && self.subscribers.iter().all(|s| s.outbox.is_closed())
    }

    fn prune_closed(&mut self) {
        self.subscribers.retain(|s| !s.outbox.is_closed());
    }

    /// Leave the registry and drop unanswered commands (their callers retry on a new actor).
    fn stop(mut self, exit: Exit) {
        if !matches!(exit, Exit::Deleted) {
            self.persist_record();
        }
        if let Some(reg) = self.registry.upgrade() {
            reg.remove(&self.id, self.actor_id);
        }
        self.rx.close();
        while self.rx.try_recv().is_ok() {}
        if let Some(done) = self.stopping.take() {
            let _ = done.send(());
        }
        self.shared.metrics.sessions_live.dec();
    }

    pub(super) fn persist_record(&self) {
        let batch = WriteBatch {
            session: Some(self.record.clone()),
            ..Default::default()
        };
        if let Err(e) = self.shared.store.write(batch) {
            tracing::error!(session_id = %self.id, error = %e, "persisting session record failed");
        }
    }

    async fn handle(&mut self, cmd: Command) -> Option<Exit> {
        match cmd {
            Command::Subscribe {
                sub,
                since,
                reply_ref,
                respond_to,
            } => {
                let _ = respond_to.send(self.subscribe(sub, since, reply_ref));
            }
            Command::Unsubscribe {
                conn_id,
                respond_to,
            } => {
                let before = self.subscribers.len();
                self.subscribers.retain(|s| s.conn_id() != conn_id);
                let _ = respond_to.send(before != self.subscribers.len());
            }
            Command::Send { req, respond_to } => {
                let r = self.send(req).await;
                let _ = respond_to.send(r);
            }
            Command::Cancel { run_id, respond_to } => {
                let r = self.cancel(run_id).await;
                let _ = respond_to.send(r);
            }
            Command::Info { respond_to } => {
                let _ = respond_to.send(self.record.clone());
            }
            Command::Update {
                title,
                metadata,
                respond_to,
            } => {
                let r = self.update(title, metadata).await;
                let _ = respond_to.send(r);
            }
            Command::Items { query, respond_to } => {
                let _ = respond_to.send(self.items(&query));
            }
            Command::Delete { respond_to } => {
                self.delete().await;
                let _ = respond_to.send(());
                return Some(Exit::Deleted);
            }
            Command::RetryAfter {
                item_id,
                respond_to,
            } => {
                let _ = respond_to.send(self.retry_after(&item_id).await);
            }
            Command::Feedback {
                item_ids,
                kind,
                respond_to,
            } => {
                let _ = respond_to.send(self.set_feedback(&item_ids, kind).await);
            }
            Command::Shutdown { respond_to } => {
                self.stopping = Some(respond_to);
                self.begin_shutdown();
                if self.active.is_none() {
                    return Some(Exit::Stopped);
                }
                self.stop_deadline = Some(Instant::now() + self.shared.config.drain());
            }
        }
        None
    }

    /// Sequence an event, keep it for replay and queue it to every subscriber without waiting.
    pub(super) fn emit(&mut self, body: EventBody) -> Arc<Event> {
        self.record.head_seq += 1;
        let ev = Arc::new(Event::new(
            &self.id,
            &self.record.epoch,
            self.record.head_seq,
            now_ms(),
            body,
        ));
        self.tail.push_back(ev.clone());
        while self.tail.len() > self.shared.config.replay_tail {
            self.tail.pop_front();
        }
        let mut delivered = 0u64;
        self.subscribers.retain(|s| match s.outbox.try_push(Outbound::Event(ev.clone())) {
            Ok(()) => {
                delivered += 1;
                true
            }
            Err(PushError::Overflow) => {
                tracing::info!(session_id = %ev.session, conn_id = s.conn_id(), "slow consumer dropped");
                false
            }
            Err(PushError::Closed) => false,
        });
        self.shared.metrics.events_fanned_out.inc_by(delivered);
        ev
    }

    async fn update(
        &mut self,
        title: Option<Option<String>>,
        metadata: Option<serde_json::Value>,
    ) -> Result<SessionRecord, HubError> {
        let title_changed = title.as_ref().is_some_and(|t| *t != self.record.title);
        if let Some(t) = title {
            self.record.title = t;
        }
        if metadata.is_some() {
            self.record.metadata = metadata;
        }
        self.record.updated_at = now_rfc3339();
        self.persist_record();
        self.shared.store.barrier().await?;
        if title_changed {
            self.emit(EventBody::SessionUpdated {
                title: self.record.title.clone(),
            });
        }
        Ok(self.record.clone())
    }

    fn items(&self, q: &ItemsQuery) -> Result<ItemsPage, HubError> {
        let store = &self.shared.store;
        let ord_of = |id: &Option<String>| -> Result<Option<u64>, HubError> {
            match id {
                None => Ok(None),
                Some(id) => store
                    .item_ord(&self.id, id)?
                    .map(Some)
                    .ok_or_else(|| HubError::BadRequest(format!("unknown item id {id}"))),
            }
        };
        let (before, after) = (ord_of(&q.before)?, ord_of(&q.after)?);
        // Oldest first with only `before` pages backwards: the `limit` items just before it,
        // read newest first from the store and turned around.
        let backwards = q.order == ItemOrder::Asc && before.is_some() && after.is_none();
        let range = ItemRange {
            before,
            after,
            limit: q.limit,
            descending: q.order == ItemOrder::Desc || backwards,
        };
        let (mut page, has_more) = store.list_items(&self.id, &range)?;
        if backwards {
            page.reverse();
        }
        let items = page
            .into_iter()
            .map(|s| match &self.active {
                Some(a) if a.item.id == s.item.id => a.item.clone(),
                _ => s.item,
            })
            .collect();
        Ok(ItemsPage { items, has_more })
    }

    /// Every run still ends with a terminal event (queued ones `run.cancelled` with no item, the
    /// active one `run.cancelled` with its partial text), then `session.deleted`.
    async fn delete(&mut self) {
        self.begin_shutdown();
        self.cancel_active(super::run::CancelReason::Requested)
            .await;
        if let Err(e) = self.shared.store.delete_session(&self.record) {
            tracing::error!(session_id = %self.id, error = %e, "deleting session failed");
        }
        let _ = self.shared.store.barrier().await;
        self.emit(EventBody::SessionDeleted {});
        self.subscribers.clear();
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => futures::future::pending().await,
    }
}
