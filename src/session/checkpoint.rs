//! The checkpoint writer: one task that applies the streaming text of every session's run in
//! batched writes, off the actors' threads.
//!
//! Actors hand their new text over with [`Checkpointer::offer`] and never wait: a checkpoint is
//! best-effort (no barrier; a crash keeps what was written). Every chunk that arrived while a
//! write was in flight goes into the next single write, on the blocking pool, so the tokio
//! workers that fan deltas out never wait on sled. Before a run's final item is written, the
//! actor calls [`Checkpointer::settle`]: once it returns, no chunk of that item is pending or in
//! flight, so the final write's removal of the chunks cannot be overtaken by a late one.

use std::sync::{Arc, Weak};

use tokio::sync::{mpsc, oneshot};

use crate::store::{Store, TextChunk, WriteBatch};

/// Chunks that may wait for the writer; beyond that a checkpoint is skipped and retried at the
/// actor's next tick (its text is still in memory).
const QUEUE: usize = 4096;
/// Most chunks in one write.
const BATCH: usize = 2048;

enum Msg {
    Chunk(TextChunk),
    /// Drop pending chunks of (session, ord) and answer once earlier writes are applied.
    Settle {
        session: String,
        ord: u64,
        done: oneshot::Sender<()>,
    },
}

/// Cheap to clone; the writer task ends when the last clone is dropped.
#[derive(Clone)]
pub(crate) struct Checkpointer {
    /// Held by every actor (through `Shared`); the writer task holds the receiver and ends
    /// when all senders are gone.
    tx: mpsc::Sender<Msg>,
}

impl Checkpointer {
    /// The writer holds the store weakly: it must not keep the database open (and locked)
    /// after the hub that owns it is gone.
    pub(crate) fn spawn(store: &Arc<dyn Store>) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(writer(Arc::downgrade(store), rx));
        Checkpointer { tx }
    }

    /// Queue a chunk; when the writer is saturated the chunk comes back (the caller keeps the
    /// text and offers it again later).
    pub(crate) fn offer(&self, chunk: TextChunk) -> Result<(), TextChunk> {
        self.tx
            .try_send(Msg::Chunk(chunk))
            .map_err(|e| match e.into_inner() {
                Msg::Chunk(c) => c,
                Msg::Settle { .. } => unreachable!("only a chunk was offered"),
            })
    }

    /// Wait until no chunk of (session, ord) is pending or being written.
    pub(crate) async fn settle(&self, session: &str, ord: u64) {
        let (done, wait) = oneshot::channel();
        let msg = Msg::Settle {
            session: session.to_owned(),
            ord,
            done,
        };
        if self.tx.send(msg).await.is_ok() {
            let _ = wait.await;
        }
    }
}

async fn writer(store: Weak<dyn Store>, mut rx: mpsc::Receiver<Msg>) {
    while let Some(first) = rx.recv().await {
        let mut chunks = Vec::new();
        let mut settled = Vec::new();
        let mut next = Some(first);
        while let Some(msg) = next {
            match msg {
                Msg::Chunk(c) => chunks.push(c),
                Msg::Settle { session, ord, done } => {
                    chunks.retain(|c| !(c.session == session && c.ord == ord));
                    settled.push(done);
                }
            }
            next = if chunks.len() < BATCH {
                rx.try_recv().ok()
            } else {
                None
            };
        }
        if let (false, Some(store)) = (chunks.is_empty(), store.upgrade()) {
            let batch = WriteBatch {
                text_chunks: chunks,
                ..Default::default()
            };
            match tokio::task::spawn_blocking(move || store.write(batch)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "checkpoint write failed"),
                Err(e) => tracing::error!(error = %e, "checkpoint task failed"),
            }
        }
        for done in settled {
            let _ = done.send(());
        }
    }
}
