//! `SessionState`: one session's protocol rules as a state machine that does no I/O.
//!
//! Each method takes a command, an agent chunk or a clock event, changes the state and queues
//! [`Effect`]s: store writes, durability barriers, events to fan out, the agent to start or
//! stop, the ack to deliver. The actor (`session::actor`) drains them with
//! [`SessionState::next_effect`] and executes them in order, so "the ack only after the
//! barrier" and "the terminal event only after the item is durable" are orderings in this
//! queue, checked by the unit tests in `tests.rs` without a runtime, a store or a socket.
//! Reads the rules need (an idempotency key, a page of items) are done by the actor first and
//! handed in as arguments.
//!
//! A run is a list of items (today: one assistant item per run; tool items join it later),
//! so continuation runs and runs with several items extend `RunState`, not the actor.

mod reasoning;
mod resolve;
mod resume;
mod run;
mod send;
mod shared;
#[cfg(test)]
mod tests;
mod tools;
mod waiting;

use std::collections::VecDeque;
use std::sync::Arc;

pub use resolve::Resolve;
pub(crate) use resolve::Resolved;
pub(crate) use resume::Resume;
pub(crate) use send::Accepted;
pub use shared::StateChange;

use super::event::{Ack, Event, EventBody, ToolAck};
use super::tail::Tail;
use crate::config::{BusyPolicy, Config};
use crate::domain::{new_epoch, now_ms, Item, ToolCall, ToolSpec};
use crate::error::HubError;
use crate::store::{SessionRecord, TextChunk, WriteBatch};

/// The limits and defaults the rules need, taken from the config once.
#[derive(Debug, Clone)]
pub(crate) struct Rules {
    /// Events kept for replay.
    pub(crate) replay_tail: usize,
    /// Most events one resume replays (beyond that a snapshot is smaller and safer).
    pub(crate) replay_max: usize,
    /// Most bytes one resume replays, and the most a snapshot's items may take: half a
    /// connection's queue, so the answer to a subscribe always fits behind the `subscribed`
    /// reply (a larger one would close every subscriber as a slow consumer, every time).
    pub(crate) resume_bytes: usize,
    pub(crate) busy_policy: BusyPolicy,
    /// Items in a snapshot page.
    pub(crate) snapshot_items: usize,
    /// Model turns a run may take after server tool results before it fails.
    pub(crate) max_tool_rounds: u32,
    /// Largest shared state document, serialised.
    pub(crate) state_max_bytes: usize,
}

impl Rules {
    pub(crate) fn from_config(cfg: &Config) -> Self {
        Rules {
            replay_tail: cfg.replay_tail,
            replay_max: cfg.outbound_frames / 2,
            resume_bytes: cfg.outbound_bytes / 2,
            busy_policy: cfg.busy_policy,
            snapshot_items: cfg.snapshot_items,
            max_tool_rounds: cfg.tools.max_tool_rounds,
            state_max_bytes: cfg.state_max_bytes,
        }
    }
}

/// Something the actor must do, in the order queued.
#[derive(Debug)]
pub(crate) enum Effect {
    /// Apply these writes atomically (not yet durable).
    Write(Box<WriteBatch>),
    /// Wait until every earlier write is durable.
    Barrier,
    /// Wait until no streaming checkpoint of the item at `ord` is pending or in flight, so the
    /// final write of that item cannot be overtaken by a late chunk.
    SettleCheckpoints { ord: u64 },
    /// Deliver the ack of the message being committed (before its `message` event).
    Ack(Ack),
    /// Fan a sequenced event out to every subscriber (it is already in the replay tail).
    Emit(Arc<Event>),
    /// Start a model turn of the active run: the history is the items before `until_ord`
    /// that are up to the user message at `reply_ord` or answer it (`reply_to`); the model
    /// may call the hub's server tools and `client_tools`.
    StartAgent {
        run_id: String,
        reply_to: String,
        reply_ord: u64,
        until_ord: u64,
        client_tools: Vec<ToolSpec>,
    },
    /// Run a server tool; its outcome comes back to [`SessionState::on_tool_outcome`].
    CallTool {
        call_id: String,
        name: String,
        arguments: String,
    },
    /// Cancel a running server tool call (the tool request is cancelled, not left running).
    StopTool { call_id: String },
    /// The `tool.result` of a call approved earlier was sent: the approvals waiting for it get
    /// this ack.
    ToolAck(ToolAck),
    /// Stop the active run's agent: its upstream request is dropped.
    StopAgent,
    /// A run ended this way (`completed`, `cancelled`, `failed`): for the metrics.
    RunEnded(&'static str),
    /// Remove the session and everything in it from the store.
    DeleteSession(Box<SessionRecord>),
    /// Tell every subscriber its subscription ended (the session is gone) and drop them.
    EndSubscriptions,
}

/// What the rules ask of the server tools: which names the hub runs, and which wait for a
/// person's approval. (`tools::Tools` in the hub; a fixed list in tests.)
pub(crate) trait ToolPolicy {
    fn is_server_tool(&self, name: &str) -> bool;
    fn needs_approval(&self, name: &str) -> bool;

    /// Client tools must not shadow the hub's server tools: the error for the first that does.
    fn refuse_shadowing(&self, client_tools: &[ToolSpec]) -> Result<(), HubError> {
        let server = |name: &str| {
            self.is_server_tool(name) || crate::tools::state_patch::is_state_tool(name)
        };
        match client_tools.iter().find(|t| server(&t.name)) {
            Some(t) => Err(HubError::BadRequest(format!(
                "client tool `{}` has the name of a server tool",
                t.name
            ))),
            None => Ok(()),
        }
    }
}

/// A run waiting for the active one to end.
#[derive(Debug, Clone)]
pub(crate) struct PendingRun {
    pub(crate) run_id: String,
    /// The user item it answers, and that item's place in the session's order.
    pub(crate) reply_to: String,
    pub(crate) reply_ord: u64,
    /// The run whose resolved tool calls it continues.
    pub(crate) continues: Option<String>,
    /// The client tools of the message it answers.
    pub(crate) client_tools: Vec<ToolSpec>,
}

/// A tool item and its place in the session's order.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub(crate) item: Item,
    pub(crate) ord: u64,
}

impl Call {
    pub(crate) fn call(&self) -> &ToolCall {
        self.item.call.as_ref().expect("a tool item has a call")
    }
    fn call_mut(&mut self) -> &mut ToolCall {
        self.item.call.as_mut().expect("a tool item has a call")
    }
}

/// The active run: its current model turn's assistant item (text so far, how much of it is
/// checkpointed) and tool calls, and what its later turns need.
#[derive(Debug)]
pub(crate) struct RunState {
    pub(crate) run_id: String,
    pub(crate) item: Item,
    pub(crate) ord: u64,
    /// How much of `item.text` the checkpoint writer has.
    checkpoint: Checkpoint,
    reply_to: String,
    reply_ord: u64,
    client_tools: Vec<ToolSpec>,
    /// This turn's tool calls, in the order the model made them.
    calls: Vec<Call>,
    /// Model turns taken so far, this one included.
    turns: u32,
    /// The turn ended and its server tools are running: no model turn is under way.
    in_tools: bool,
    /// This turn's reasoning item while it streams (PROTOCOL 1.2).
    reasoning: Option<reasoning::Thinking>,
}

/// How much of a streaming item's text was handed to the checkpoint writer, and in how many
/// chunks. Checkpoints are append-only: each carries only the text added since the last one.
#[derive(Debug, Default)]
pub(crate) struct Checkpoint {
    bytes: usize,
    chunks: u32,
}

impl Checkpoint {
    /// The text of the item at `ord` added since the last checkpoint, if any.
    fn take(&mut self, session: &str, ord: u64, text: &str) -> Option<TextChunk> {
        if self.bytes == text.len() {
            return None;
        }
        let chunk = TextChunk {
            session: session.to_owned(),
            ord,
            n: self.chunks,
            text: text[self.bytes..].to_owned(),
        };
        self.bytes = text.len();
        self.chunks += 1;
        Some(chunk)
    }

    /// The writer had no room for `chunk`: if it is this item's last, its text goes with the
    /// next checkpoint instead. False when it is not.
    fn give_back(&mut self, ord: u64, chunk: &TextChunk) -> bool {
        if ord != chunk.ord || self.chunks != chunk.n + 1 {
            return false;
        }
        self.bytes -= chunk.text.len();
        self.chunks -= 1;
        true
    }
}

/// The last run ended with tool calls waiting for a client's result or an approval.
#[derive(Debug)]
pub(crate) struct Waiting {
    pub(crate) run_id: String,
    reply_to: String,
    reply_ord: u64,
    client_tools: Vec<ToolSpec>,
    /// The run's last turn's calls (waiting, resolved, or approved and running).
    calls: Vec<Call>,
    /// (call id, digest) of approvals whose calls run now: their resolution is stored with
    /// the position of the call's `tool.result`.
    approvals: Vec<(String, String)>,
}

pub(crate) struct SessionState {
    record: SessionRecord,
    rules: Rules,
    /// The most recent events, oldest first, for replay on resume.
    tail: Tail,
    active: Option<RunState>,
    queue: VecDeque<PendingRun>,
    waiting: Option<Waiting>,
    /// Shutting down or deleted: no new messages, subscriptions or runs.
    stopping: bool,
    effects: VecDeque<Effect>,
}

impl SessionState {
    /// The state of a session loaded from its record. A record written in an earlier store
    /// generation (the process crashed since) may be behind the seqs clients saw: continuity
    /// is not guaranteed, so the session starts a new epoch at seq 0.
    pub(crate) fn load(mut record: SessionRecord, generation: u64, rules: Rules) -> Self {
        if record.generation != generation {
            record.epoch = new_epoch();
            record.head_seq = 0;
            record.generation = generation;
        }
        SessionState {
            record,
            tail: Tail::new(rules.replay_tail),
            rules,
            active: None,
            queue: VecDeque::new(),
            waiting: None,
            stopping: false,
            effects: VecDeque::new(),
        }
    }

    pub(crate) fn id(&self) -> &str {
        &self.record.id
    }

    pub(crate) fn record(&self) -> &SessionRecord {
        &self.record
    }

    /// The next thing the actor must do.
    pub(crate) fn next_effect(&mut self) -> Option<Effect> {
        self.effects.pop_front()
    }

    pub(crate) fn has_active_run(&self) -> bool {
        self.active.is_some()
    }

    /// Nothing running (no run, no approved tool call), nothing queued, not stopping: the
    /// actor may be evicted (waiting calls are reloaded from the store).
    pub(crate) fn is_idle(&self) -> bool {
        self.active.is_none()
            && self.queue.is_empty()
            && !self.stopping
            && !self.waiting.as_ref().is_some_and(Waiting::has_running)
    }

    /// Compact the replay tail while the session is quiet (see `session::tail`).
    pub(crate) fn pack_tail(&mut self) {
        self.tail.pack();
    }

    /// Bring the replay tail back to events (a subscriber is coming: resumes read it).
    pub(crate) fn unpack_tail(&mut self) {
        self.tail.unpack();
    }

    /// The tail holds events not packed yet.
    pub(crate) fn tail_can_pack(&self) -> bool {
        !self.tail.is_packed() && self.tail.len() > 0
    }

    /// Bytes the replay tail takes (compressed when packed).
    pub(crate) fn tail_bytes(&self) -> usize {
        self.tail.bytes()
    }

    /// Write the record as it is now (its head seq and next ord move without a write).
    pub(crate) fn persist_record(&mut self) {
        self.write(WriteBatch {
            session: Some(self.record.clone()),
            ..Default::default()
        });
    }

    /// Queue a store write. The store files items under the batch's session record and
    /// refuses a batch of items without one, so such a batch gets the current record here.
    fn write(&mut self, mut batch: WriteBatch) {
        if !batch.items.is_empty() && batch.session.is_none() {
            batch.session = Some(self.record.clone());
        }
        self.effects.push_back(Effect::Write(Box::new(batch)));
    }

    /// Store an item that starts streaming (an assistant turn, a tool call) with the record
    /// and a streaming marker: a crash brings it back `interrupted`.
    fn write_streaming(&mut self, ord: u64, item: &Item) {
        self.write(WriteBatch {
            session: Some(self.record.clone()),
            items: vec![crate::store::StoredItem {
                ord,
                item: item.clone(),
            }],
            streaming_started: vec![(self.record.id.clone(), ord)],
            ..Default::default()
        });
    }

    /// Sequence an event: the next seq of the epoch, kept for replay, queued for fan-out.
    fn emit(&mut self, body: EventBody) {
        self.record.head_seq += 1;
        let ev = Arc::new(Event::new(
            &self.record.id,
            &self.record.epoch,
            self.record.head_seq,
            now_ms(),
            body,
        ));
        self.tail.push(ev.clone());
        self.effects.push_back(Effect::Emit(ev));
    }

    /// Shutdown begins: queued runs are dropped, each with `run.cancelled` (`item: null`); the
    /// active run may finish within the drain timeout.
    pub(crate) fn begin_shutdown(&mut self) {
        self.stopping = true;
        self.drop_queue();
    }

    /// Delete the session: every run still ends with its terminal event (queued ones
    /// `run.cancelled` with no item, the active one `run.cancelled` with its partial text),
    /// then the store forgets the session, then `session.deleted`, then no subscriber remains.
    pub(crate) fn delete(&mut self) {
        self.begin_shutdown();
        self.cancel_active(run::Next::Hold);
        self.stop_waiting_tools();
        self.effects
            .push_back(Effect::DeleteSession(Box::new(self.record.clone())));
        self.effects.push_back(Effect::Barrier);
        self.emit(EventBody::SessionDeleted {});
        self.effects.push_back(Effect::EndSubscriptions);
    }

    fn drop_queue(&mut self) {
        for q in std::mem::take(&mut self.queue) {
            self.emit(EventBody::RunCancelled {
                run_id: q.run_id,
                reply_to: Some(q.reply_to),
                item: None,
            });
        }
    }

    fn refuse_if_stopping(&self) -> Result<(), HubError> {
        if self.stopping {
            return Err(HubError::Unavailable("the hub is shutting down".into()));
        }
        Ok(())
    }
}
