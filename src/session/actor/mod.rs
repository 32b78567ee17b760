//! The session actor: a thin loop around [`SessionState`]. It owns the I/O of one session:
//! its command channel, its subscribers' outboxes, the running agent task, the store and the
//! checkpoint writer. Every command or agent chunk goes to the state, and the effects the
//! state queues are executed here in order (`effects.rs`); reads the rules need are done
//! first (`reads.rs`). One command at a time, so events get gap-free seqs and every
//! subscriber sees them in one order.

mod agent_task;
mod effects;
mod reads;
mod shared_state;
mod tool_tasks;

use std::sync::Arc;

use futures::FutureExt;
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::time::Instant;

use super::budget::Budget;
use super::checkpoint::Checkpointer;
use super::handle::{Command, SendReply, SessionHandle, ToolReply};
use super::outbox::Subscriber;
use super::state::{Rules, SessionState, ToolPolicy};
use super::tail::SESSION_OVERHEAD_BYTES;
use crate::agent::{Agent, AgentChunk};
use crate::config::Config;
use crate::domain::sleep_until_opt;
use crate::session::event::RunError;
use crate::store::{SessionRecord, Store};
use crate::telemetry::Metrics;
use crate::tools::Tools;
use agent_task::AgentTask;
use effects::AckRoute;
use tool_tasks::ToolTasks;

/// What every actor shares: the store, the agent, the config and the metrics.
pub(crate) struct Shared {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) agent: Arc<dyn Agent>,
    pub(crate) config: Arc<Config>,
    pub(crate) metrics: Arc<Metrics>,
    /// Writes streaming text for every actor, off the tokio workers.
    pub(crate) checkpoints: Checkpointer,
    /// The server tools (MCP): what the model is offered, what needs approval.
    pub(crate) tools: Arc<Tools>,
    /// The memory budget of all loaded sessions (`--sessions-memory-mb`).
    pub(crate) budget: Budget,
}

/// How long a session stays quiet (no command, chunk or tool outcome, no run) before its
/// replay tail is packed.
const PACK_AFTER: std::time::Duration = std::time::Duration::from_secs(2);

impl ToolPolicy for Tools {
    fn is_server_tool(&self, name: &str) -> bool {
        self.has(name)
    }
    fn needs_approval(&self, name: &str) -> bool {
        Tools::needs_approval(self, name)
    }
}

pub(crate) struct Actor {
    state: SessionState,
    shared: Arc<Shared>,
    /// Commands from every `SessionHandle` clone (the registry's and callers'). Closed when
    /// the actor stops; commands still queued are dropped unanswered, and their callers retry
    /// on a fresh actor.
    rx: mpsc::Receiver<Box<Command>>,
    /// Connections subscribed to this session. Each outbox's receiver is its connection's
    /// writer; a full outbox is a slow consumer, dropped here and closed there (4008).
    subscribers: Vec<Subscriber>,
    /// The active run's agent: a task streaming from the model, whose chunks come back here.
    /// Dropping it (cancel, finish) aborts the task and with it the upstream request.
    agent: Option<AgentTask>,
    /// Where the ack of the send being handled goes (consumed by the `Ack` effect).
    ack_route: AckRoute,
    /// Server tool calls in flight; their outcomes come back here.
    tool_tasks: ToolTasks,
    /// Who waits for the ack of a tool call's resolution (the resolving frame, and repeats of
    /// an approval whose call still runs: `true`, answered with `duplicate: true`), answered by
    /// the `ToolAck` effect.
    tool_waiters: Vec<(String, ToolReply, bool)>,
    last_activity: Instant,
    /// Which budget [`Budget`] counts this actor under; the other end of `unload` is kept there
    /// while the session is quiet, and told when the hub is over its budget.
    actor_id: u64,
    unload: Arc<Notify>,
    /// Whether the budget last counted this session quiet (None: not counted yet).
    counted_quiet: Option<bool>,
    /// Set once a shutdown was asked for; the registry's `shutdown_all` waits on the other end,
    /// answered when the actor stops.
    stop_reply: Option<oneshot::Sender<()>>,
    stop_deadline: Option<Instant>,
}

/// Why the actor's loop ends.
enum Exit {
    Evicted,
    Deleted,
    Stopped,
}

impl Actor {
    /// The actor of a session loaded from `record`, and the first handle to it. The caller
    /// spawns [`Actor::run`].
    pub(crate) fn new(
        record: SessionRecord,
        shared: Arc<Shared>,
        actor_id: u64,
    ) -> (Actor, SessionHandle) {
        let state = SessionState::load(
            record,
            shared.store.generation(),
            Rules::from_config(&shared.config),
        );
        let (tx, rx) = mpsc::channel(shared.config.command_queue);
        let handle = SessionHandle::new(state.record().owner.as_str().into(), actor_id, tx);
        let actor = Actor {
            state,
            shared,
            rx,
            subscribers: Vec::new(),
            agent: None,
            ack_route: AckRoute::None,
            tool_tasks: ToolTasks::new(),
            tool_waiters: Vec::new(),
            last_activity: Instant::now(),
            actor_id,
            unload: Arc::new(Notify::new()),
            counted_quiet: None,
            stop_reply: None,
            stop_deadline: None,
        };
        (actor, handle)
    }

    pub(crate) fn session_id(&self) -> &str {
        self.state.id()
    }

    /// Serve commands and agent chunks until evicted, deleted or stopped. What a command or
    /// chunk awaits (store reads, barriers) is boxed: this future lives as long as the session
    /// is loaded, and inline those states made every idle actor's task about 8 kB.
    pub(crate) async fn run(mut self) {
        self.shared.metrics.sessions_live.inc();
        self.restore_waiting();
        let mut checkpoint = tokio::time::interval(self.shared.config.checkpoint());
        checkpoint.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let exit = loop {
            self.count_memory();
            let idle_at = self.last_activity + self.shared.config.idle_evict();
            let evictable = self.is_idle();
            let pack_at = self.last_activity + PACK_AFTER;
            let packable = self.state.is_idle() && self.state.tail_can_pack();
            let stop_at = self.stop_deadline;
            tokio::select! {
                cmd = self.rx.recv() => {
                    self.last_activity = Instant::now();
                    match cmd {
                        Some(cmd) => if let Some(exit) = Box::pin(self.handle(*cmd)).await { break exit },
                        None => break Exit::Stopped,
                    }
                }
                chunk = AgentTask::recv(&mut self.agent) => {
                    self.last_activity = Instant::now();
                    self.on_chunk(chunk);
                    Box::pin(self.apply()).await;
                    if self.stop_reply.is_some() && !self.state.has_active_run() {
                        break Exit::Stopped;
                    }
                }
                (call_id, outcome) = self.tool_tasks.next() => {
                    self.last_activity = Instant::now();
                    self.state.on_tool_outcome(&call_id, outcome);
                    Box::pin(self.apply()).await;
                }
                _ = checkpoint.tick(), if self.state.has_active_run() => self.checkpoint(),
                _ = tokio::time::sleep_until(idle_at), if evictable => {
                    self.subscribers.retain(Subscriber::is_live);
                    if self.is_idle() && self.rx.is_empty() { break Exit::Evicted }
                    self.last_activity = Instant::now();
                }
                _ = tokio::time::sleep_until(pack_at), if packable => {
                    self.state.pack_tail();
                    self.subscribers.retain(Subscriber::is_live);
                    let too_big = self.state.tail_bytes() > self.shared.config.replay_tail_bytes;
                    if too_big && self.is_idle() && self.rx.is_empty() { break Exit::Evicted }
                }
                _ = self.unload.notified(), if evictable => {
                    self.subscribers.retain(Subscriber::is_live);
                    if self.is_idle() && self.rx.is_empty() { break Exit::Evicted }
                    // Busy again: the next quiet turn is counted anew.
                    self.counted_quiet = None;
                }
                _ = sleep_until_opt(stop_at), if stop_at.is_some() => {
                    self.state.interrupt_for_shutdown();
                    Box::pin(self.apply()).await;
                    break Exit::Stopped;
                }
            }
        };
        Box::pin(self.stop(exit)).await;
    }

    fn is_idle(&self) -> bool {
        self.state.is_idle() && !self.subscribers.iter().any(Subscriber::is_live)
    }

    /// Tell the budget when the session turned quiet (no run, tail packed or empty) or busy.
    fn count_memory(&mut self) {
        let quiet = self.state.is_idle() && !self.state.tail_can_pack();
        if self.counted_quiet == Some(quiet) {
            return;
        }
        self.counted_quiet = Some(quiet);
        let bytes = self.state.tail_bytes() + SESSION_OVERHEAD_BYTES;
        if quiet {
            self.shared.budget.quiet(self.actor_id, bytes, &self.unload);
        } else {
            // A signal left from an earlier quiet turn must not unload it later.
            let _ = self.unload.notified().now_or_never();
            self.shared.budget.busy(self.actor_id, bytes);
        }
        self.show_memory();
    }

    fn show_memory(&self) {
        let (bytes, quiet) = self.shared.budget.counts();
        let m = &self.shared.metrics;
        m.sessions_memory_bytes.set(bytes as i64);
        m.sessions_quiet.set(quiet as i64);
    }

    /// Persist the record (unless deleted) and drop unanswered commands: their callers retry
    /// on a new actor.
    async fn stop(mut self, exit: Exit) {
        if !matches!(exit, Exit::Deleted) {
            self.state.persist_record();
            self.apply().await;
        }
        self.rx.close();
        while self.rx.try_recv().is_ok() {}
        if let Some(done) = self.stop_reply.take() {
            let _ = done.send(());
        }
        self.shared.budget.remove(self.actor_id);
        self.show_memory();
        self.shared.metrics.sessions_live.dec();
    }

    fn on_chunk(&mut self, chunk: Result<AgentChunk, crate::agent::AgentError>) {
        match chunk {
            Ok(AgentChunk::Delta(text)) => self.state.on_delta(text),
            Ok(AgentChunk::Reasoning(text)) => self.state.on_reasoning(text),
            Ok(AgentChunk::Usage(usage)) => {
                self.shared.metrics.count_usage(&usage);
                self.state.on_usage(usage);
            }
            Ok(AgentChunk::Finished(reason)) => {
                self.state.on_finished(reason, self.shared.tools.as_ref())
            }
            Ok(AgentChunk::ToolCallStarted { call_id, name }) => {
                self.state
                    .on_tool_started(call_id, name, self.shared.tools.as_ref())
            }
            Ok(AgentChunk::ToolCallDelta { call_id, arguments }) => {
                self.state.on_tool_delta(&call_id, arguments)
            }
            Err(e) => {
                tracing::warn!(session_id = %self.state.id(), code = %e.code, "run failed");
                self.state.on_failed(RunError {
                    code: e.code,
                    message: e.message,
                    retryable: e.retryable,
                });
            }
        }
    }

    /// Hand the streaming text to the checkpoint writer; when it has no room the text waits
    /// for the next tick (it is still in memory).
    fn checkpoint(&mut self) {
        if let Some(chunk) = self.state.take_checkpoint() {
            if let Err(chunk) = self.shared.checkpoints.offer(chunk) {
                self.state.return_checkpoint(chunk);
            }
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
            Command::Prune => self.subscribers.retain(Subscriber::is_live),
            Command::Send { caller, req, reply } => match reply {
                SendReply::Caller(respond_to) => {
                    self.ack_route = AckRoute::Caller;
                    let r = self.send(&caller, &req).await;
                    let _ = respond_to.send(r);
                }
                SendReply::Connection {
                    conn_id,
                    reply_ref,
                    respond_to,
                } => {
                    self.ack_route = AckRoute::Connection { conn_id, reply_ref };
                    let r = self.send(&caller, &req).await;
                    let _ = respond_to.send(r.map(|_| ()));
                }
            },
            Command::Resolve {
                call_id,
                how,
                reply,
            } => self.resolve(call_id, how, reply).await,
            Command::Cancel { run_id, respond_to } => {
                let r = self.state.cancel(run_id.as_deref());
                if r.is_ok() {
                    tracing::info!(session_id = %self.state.id(), "run cancelled");
                }
                self.apply().await;
                let _ = respond_to.send(r);
            }
            Command::Info { respond_to } => {
                let _ = respond_to.send(self.state.record().clone());
            }
            Command::Update {
                title,
                metadata,
                respond_to,
            } => {
                let _ = respond_to.send(self.update(title, metadata).await);
            }
            Command::Items { query, respond_to } => {
                let _ = respond_to.send(self.items(&query));
            }
            Command::Delete { respond_to } => {
                self.state.delete();
                self.apply().await;
                let _ = respond_to.send(());
                return Some(Exit::Deleted);
            }
            Command::RetryAfter {
                caller,
                item_id,
                respond_to,
            } => {
                let _ = respond_to.send(self.retry_after(&caller, &item_id).await);
            }
            Command::SetState {
                change,
                base,
                reply,
            } => self.set_state(change, base, reply).await,
            Command::Feedback {
                item_ids,
                kind,
                respond_to,
            } => {
                let _ = respond_to.send(self.set_feedback(&item_ids, kind).await);
            }
            Command::Shutdown { respond_to } => {
                self.stop_reply = Some(respond_to);
                self.state.begin_shutdown();
                self.apply().await;
                if !self.state.has_active_run() {
                    return Some(Exit::Stopped);
                }
                self.stop_deadline = Some(Instant::now() + self.shared.config.drain());
            }
        }
        None
    }
}
