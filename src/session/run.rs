//! The run lifecycle inside the session actor: start, stream, checkpoint, cancel, finish.
//!
//! A run is a child task that polls the agent's stream and forwards each chunk over a bounded
//! channel to the actor (the actor holds the receiver; the task holds the sender and awaits
//! room, so a slow actor slows only its own agent). Cancel aborts the task, which drops the
//! agent stream and with it the upstream HTTP request.

use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::actor::Actor;
use super::event::{
    now_rfc3339, ActiveRun as ActiveRunView, EventBody, Item, ItemStatus, QueuedRun, Role, RunError,
};
use super::new_id;
use crate::agent::{AgentChunk, AgentError, AgentRequest, FinishReason};
use crate::error::HubError;
use crate::store::{ItemRange, StoredItem, TextChunk, WriteBatch};

/// Most history items handed to the agent (the agent applies its own budget on top).
const HISTORY_ITEMS: usize = 200;

/// A run waiting for its turn.
#[derive(Debug, Clone)]
pub(crate) struct PendingRun {
    pub(crate) run_id: String,
    pub(crate) reply_to: String,
    pub(crate) reply_ord: u64,
}

impl PendingRun {
    pub(crate) fn snapshot(&self) -> QueuedRun {
        QueuedRun {
            run_id: self.run_id.clone(),
            reply_to: self.reply_to.clone(),
        }
    }
}

type RunMsg = Result<AgentChunk, AgentError>;

/// The streaming run: its item (text so far) and its task.
pub(crate) struct ActiveRun {
    pub(crate) run_id: String,
    pub(crate) item: Item,
    ord: u64,
    rx: mpsc::Receiver<RunMsg>,
    task: JoinHandle<()>,
    /// Bytes of `item.text` already checkpointed, and how many chunks that took.
    checkpointed: usize,
    chunks: u32,
}

/// Why an active run is cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CancelReason {
    /// A client asked.
    Requested,
    /// A new message with the `interrupt` policy.
    Interrupted,
}

impl ActiveRun {
    /// The next chunk of the active run; pending forever when there is none.
    pub(crate) async fn recv(active: &mut Option<ActiveRun>) -> RunMsg {
        match active {
            Some(run) => match run.rx.recv().await {
                Some(msg) => msg,
                None => Err(AgentError::new("internal", "the run task stopped", true)),
            },
            None => futures::future::pending().await,
        }
    }

    pub(crate) fn abort(&self) {
        self.task.abort();
    }

    pub(crate) fn snapshot(&self) -> ActiveRunView {
        ActiveRunView {
            run_id: self.run_id.clone(),
            item_id: self.item.id.clone(),
            reply_to: self.item.reply_to.clone().unwrap_or_default(),
            text: self.item.text.clone(),
        }
    }
}

/// How a run ended.
enum Outcome {
    Completed,
    Cancelled,
    Failed(RunError),
}

impl Actor {
    pub(super) fn start_run(&mut self, pending: PendingRun) {
        let ord = self.record.next_ord;
        self.record.next_ord += 1;
        let item = Item {
            id: new_id("itm"),
            role: Role::Assistant,
            text: String::new(),
            status: ItemStatus::Streaming,
            created_at: now_rfc3339(),
            client_msg_id: None,
            run_id: Some(pending.run_id.clone()),
            reply_to: Some(pending.reply_to.clone()),
            finish_reason: None,
            usage: None,
            error_code: None,
        };
        if let Err(e) = self.shared.store.write(WriteBatch {
            session: Some(self.record.clone()),
            items: vec![StoredItem {
                ord,
                item: item.clone(),
            }],
            streaming_started: vec![(self.id.clone(), ord)],
            ..Default::default()
        }) {
            tracing::error!(session_id = %self.id, error = %e, "storing new run failed");
        }
        let history = match self.shared.store.list_items(
            &self.id,
            &ItemRange {
                before: Some(pending.reply_ord + 1),
                limit: HISTORY_ITEMS,
                descending: true,
                ..Default::default()
            },
        ) {
            Ok((mut page, _)) => {
                page.reverse();
                page.into_iter().map(|s| s.item).collect()
            }
            Err(e) => {
                tracing::error!(session_id = %self.id, error = %e, "reading history failed");
                Vec::new()
            }
        };
        let request = AgentRequest {
            session_id: self.id.clone(),
            run_id: pending.run_id.clone(),
            history,
        };
        let mut stream = self.shared.agent.stream(request);
        let (tx, rx) = mpsc::channel::<RunMsg>(64);
        let task = tokio::spawn(async move {
            while let Some(msg) = stream.next().await {
                let end = matches!(msg, Ok(AgentChunk::Finished(_)) | Err(_));
                if tx.send(msg).await.is_err() || end {
                    return;
                }
            }
            let _ = tx
                .send(Err(AgentError::new(
                    "upstream_protocol",
                    "the agent's stream ended without finishing",
                    true,
                )))
                .await;
        });
        let item_id = item.id.clone();
        self.active = Some(ActiveRun {
            run_id: pending.run_id.clone(),
            item,
            ord,
            rx,
            task,
            checkpointed: 0,
            chunks: 0,
        });
        self.shared.metrics.runs_active.inc();
        self.emit(EventBody::RunStarted {
            run_id: pending.run_id,
            item_id,
            reply_to: pending.reply_to,
        });
    }

    pub(super) async fn on_run_msg(&mut self, msg: RunMsg) {
        let Some(run) = self.active.as_mut() else {
            return;
        };
        match msg {
            Ok(AgentChunk::Delta(text)) => {
                if text.is_empty() {
                    return;
                }
                run.item.text.push_str(&text);
                let body = EventBody::RunDelta {
                    run_id: run.run_id.clone(),
                    item_id: run.item.id.clone(),
                    text,
                };
                self.emit(body);
            }
            Ok(AgentChunk::Usage(usage)) => {
                run.item.usage = Some(usage);
                self.shared.metrics.count_usage(&usage);
            }
            Ok(AgentChunk::Finished(reason)) => {
                run.item.status = ItemStatus::Complete;
                if reason == FinishReason::Length {
                    run.item.finish_reason = Some(reason);
                }
                self.finish(Outcome::Completed).await;
            }
            Err(e) => {
                run.item.status = ItemStatus::Failed;
                run.item.error_code = Some(e.code.clone());
                tracing::warn!(session_id = %self.id, code = %e.code, "run failed");
                self.finish(Outcome::Failed(RunError {
                    code: e.code,
                    message: e.message,
                    retryable: e.retryable,
                }))
                .await;
            }
        }
    }

    /// Append the text streamed since the last checkpoint (no barrier: a crash keeps what the
    /// checkpoints wrote). Appending keeps a checkpoint's cost to the new text: rewriting the
    /// whole item every time cost about half the hub's CPU at 1000 streaming sessions.
    pub(super) fn checkpoint(&mut self) {
        let Some(run) = self.active.as_mut() else {
            return;
        };
        if run.checkpointed == run.item.text.len() {
            return;
        }
        let chunk = TextChunk {
            session: self.id.clone(),
            ord: run.ord,
            n: run.chunks,
            text: run.item.text[run.checkpointed..].to_owned(),
        };
        // Handed to the checkpoint writer; when it is saturated the text waits for the next tick.
        if self.shared.checkpoints.offer(chunk) {
            run.checkpointed = run.item.text.len();
            run.chunks += 1;
        }
    }

    /// End the active run: store its item durably, then emit its terminal event, then start the
    /// next queued run (unless the hub is stopping).
    async fn finish(&mut self, outcome: Outcome) {
        let Some(run) = self.active.take() else {
            return;
        };
        run.abort();
        // No checkpoint of this item may land after the final write removes its chunks.
        self.shared.checkpoints.settle(&self.id, run.ord).await;
        let batch = WriteBatch {
            session: Some(self.record.clone()),
            items: vec![StoredItem {
                ord: run.ord,
                item: run.item.clone(),
            }],
            streaming_ended: vec![(self.id.clone(), run.ord)],
            ..Default::default()
        };
        let stored = self.shared.store.write(batch);
        let durable = match stored {
            Ok(()) => self.shared.store.barrier().await,
            Err(e) => Err(e),
        };
        if let Err(e) = durable {
            tracing::error!(session_id = %self.id, error = %e, "making a finished run durable failed");
        }
        self.shared.metrics.runs_active.dec();
        let (label, body) = match outcome {
            Outcome::Completed => (
                "completed",
                EventBody::RunCompleted {
                    run_id: run.run_id,
                    item: run.item,
                },
            ),
            Outcome::Cancelled => (
                "cancelled",
                EventBody::RunCancelled {
                    run_id: run.run_id,
                    reply_to: None,
                    item: Some(run.item),
                },
            ),
            Outcome::Failed(error) => (
                "failed",
                EventBody::RunFailed {
                    run_id: run.run_id,
                    item: run.item,
                    error,
                },
            ),
        };
        self.shared.metrics.run_finished(label);
        self.emit(body);
        if self.stopping.is_none() {
            if let Some(next) = self.queue.pop_front() {
                self.start_run(next);
            }
        }
    }

    pub(super) async fn cancel(&mut self, run_id: Option<String>) -> Result<(), HubError> {
        let active_matches = match (&self.active, &run_id) {
            (Some(_), None) => true,
            (Some(a), Some(r)) => a.run_id == *r,
            (None, _) => false,
        };
        if active_matches {
            self.cancel_active(CancelReason::Requested).await;
            return Ok(());
        }
        if let Some(r) = run_id {
            if let Some(pos) = self.queue.iter().position(|q| q.run_id == r) {
                let q = self.queue.remove(pos).expect("position is in range");
                self.emit(EventBody::RunCancelled {
                    run_id: q.run_id,
                    reply_to: Some(q.reply_to),
                    item: None,
                });
                return Ok(());
            }
        }
        Err(HubError::NoActiveRun)
    }

    /// Stop the active run's task (dropping the upstream request) and keep its partial text.
    pub(super) async fn cancel_active(&mut self, reason: CancelReason) {
        let Some(run) = self.active.as_mut() else {
            return;
        };
        run.abort();
        run.item.status = ItemStatus::Cancelled;
        tracing::info!(session_id = %self.id, ?reason, "run cancelled");
        if reason == CancelReason::Interrupted {
            // The new run starts right after; queued runs keep waiting behind it.
            self.finish_no_next(Outcome::Cancelled).await;
        } else {
            self.finish(Outcome::Cancelled).await;
        }
    }

    async fn finish_no_next(&mut self, outcome: Outcome) {
        // `finish` starts the next queued run unless stopping; park the queue meanwhile.
        let queue = std::mem::take(&mut self.queue);
        self.finish(outcome).await;
        self.queue = queue;
    }

    /// At shutdown (and deletion): queued runs are dropped, each with `run.cancelled`
    /// (`item: null`).
    pub(super) fn begin_shutdown(&mut self) {
        for q in std::mem::take(&mut self.queue) {
            self.emit(EventBody::RunCancelled {
                run_id: q.run_id,
                reply_to: Some(q.reply_to),
                item: None,
            });
        }
    }

    /// The drain timeout passed: the active run ends `interrupted`.
    pub(super) async fn interrupt_for_shutdown(&mut self) {
        let Some(run) = self.active.as_mut() else {
            return;
        };
        run.abort();
        run.item.status = ItemStatus::Interrupted;
        run.item.error_code = Some("interrupted".into());
        let error = RunError {
            code: "interrupted".into(),
            message: "the hub is shutting down".into(),
            retryable: true,
        };
        self.finish(Outcome::Failed(error)).await;
    }
}
