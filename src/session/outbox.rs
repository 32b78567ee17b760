//! Per-connection bounded outbound queues, shared by every session a connection subscribes to.
//!
//! The session actor pushes with [`Outbox::try_push`] and never waits: a full queue (frames or
//! bytes) marks the connection as overflowed, every later push fails, and the transport's
//! writer closes the connection (WebSocket 4008) after the frames already queued. The
//! transport's own replies use [`Outbox::push`], which waits for room.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use bytes::Bytes;
use serde_json::Value;
use tokio::sync::{mpsc, Notify};

use super::event::{Ack, Event, ResumeKind, Snapshot, StateAck, ToolAck};

/// Something a connection must write, in order. Kept small (the rare, large replies are
/// boxed): every connection's queue allocates room for a block of these up front.
#[derive(Debug, Clone)]
pub enum Outbound {
    /// A sequenced event (pre-rendered JSON inside).
    Event(Arc<Event>),
    /// The direct reply to `subscribe`; replay events or a snapshot follow it.
    Subscribed(Box<SubscribedReply>),
    Snapshot(Arc<Snapshot>),
    /// The direct reply to `send`, queued by the actor just before the `message` event.
    Ack(Box<AckReply>),
    /// The direct reply to `tool_result` / `tool_approval`, queued before the `tool.result`.
    ToolAck(Box<ToolAckReply>),
    /// The direct reply to `state_set` / `state_patch`, queued before the state event.
    StateAck(Box<StateAckReply>),
    /// Any other direct reply, rendered by the transport.
    Reply(Bytes),
    /// A binary WebSocket message (the conformance echo's replies; no other route sends one).
    Binary(Bytes),
}

/// The `subscribed` reply.
#[derive(Debug, Clone)]
pub struct SubscribedReply {
    pub session: String,
    pub epoch: String,
    pub head_seq: u64,
    pub resume: ResumeKind,
    pub reply_ref: Option<Value>,
}

/// The `ack` of a tool call's resolution, with the `ref` of the frame it answers.
#[derive(Debug, Clone)]
pub struct ToolAckReply {
    pub ack: ToolAck,
    pub reply_ref: Option<Value>,
}

/// The `ack` of a shared-state change, with the `ref` of the frame it answers.
#[derive(Debug, Clone)]
pub struct StateAckReply {
    pub ack: StateAck,
    pub reply_ref: Option<Value>,
}

/// The `ack` reply, with the `ref` of the `send` it answers.
#[derive(Debug, Clone)]
pub struct AckReply {
    pub ack: Ack,
    pub reply_ref: Option<Value>,
}

impl Outbound {
    /// Rough byte cost, for the queue's byte bound.
    fn cost(&self) -> usize {
        match self {
            Outbound::Event(e) => e.json.len(),
            Outbound::Snapshot(s) => s.approx_bytes(),
            Outbound::Reply(b) | Outbound::Binary(b) => b.len(),
            Outbound::Subscribed(_)
            | Outbound::Ack(_)
            | Outbound::ToolAck(_)
            | Outbound::StateAck(_) => 192,
        }
    }
}

/// Why a push failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushError {
    /// The queue is full: the connection is a slow consumer and is being closed.
    Overflow,
    /// The connection is gone.
    Closed,
}

#[derive(Debug)]
struct Shared {
    conn_id: u64,
    bytes: AtomicUsize,
    max_bytes: usize,
    overflowed: AtomicBool,
    /// Wakes the writer when the queue overflows.
    overflow: Notify,
}

/// The sending side, cloned into every session the connection subscribes to.
#[derive(Debug, Clone)]
pub struct Outbox {
    /// The receiver is the connection's writer (or the stream of an SSE, ChatKit or AG-UI
    /// response); when it is gone, pushes fail with `Closed`.
    tx: mpsc::Sender<Outbound>,
    shared: Arc<Shared>,
}

/// The receiving side, owned by the connection's writer.
#[derive(Debug)]
pub struct OutboxReceiver {
    /// Senders: the connection itself (for its direct replies) and every session actor it is
    /// subscribed to; `recv` ends when all of them are gone.
    rx: mpsc::Receiver<Outbound>,
    shared: Arc<Shared>,
}

static NEXT_CONN_ID: AtomicU64 = AtomicU64::new(1);

/// A fresh connection id, unique in this process.
pub fn next_conn_id() -> u64 {
    NEXT_CONN_ID.fetch_add(1, Ordering::Relaxed)
}

impl Outbox {
    /// A queue of at most `max_frames` frames and about `max_bytes` bytes.
    pub fn channel(max_frames: usize, max_bytes: usize) -> (Outbox, OutboxReceiver) {
        let (tx, rx) = mpsc::channel(max_frames.max(1));
        let shared = Arc::new(Shared {
            conn_id: next_conn_id(),
            bytes: AtomicUsize::new(0),
            max_bytes,
            overflowed: AtomicBool::new(false),
            overflow: Notify::new(),
        });
        (
            Outbox {
                tx,
                shared: shared.clone(),
            },
            OutboxReceiver { rx, shared },
        )
    }

    pub fn conn_id(&self) -> u64 {
        self.shared.conn_id
    }

    /// Queue without waiting; on overflow the connection is marked for closing.
    pub fn try_push(&self, item: Outbound) -> Result<(), PushError> {
        if self.shared.overflowed.load(Ordering::Acquire) {
            return Err(PushError::Overflow);
        }
        let cost = item.cost();
        let before = self.shared.bytes.fetch_add(cost, Ordering::AcqRel);
        // Over the bound only once the queue already holds a quarter of it: a connection that
        // keeps up can always take one large frame (a snapshot with a long streaming reply, a
        // long message), so the queue holds at most a quarter of the bound plus one frame more.
        if before + cost > self.shared.max_bytes && before >= self.shared.max_bytes / 4 {
            self.shared.bytes.fetch_sub(cost, Ordering::AcqRel);
            self.mark_overflow();
            return Err(PushError::Overflow);
        }
        match self.tx.try_send(item) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.shared.bytes.fetch_sub(cost, Ordering::AcqRel);
                self.mark_overflow();
                Err(PushError::Overflow)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.shared.bytes.fetch_sub(cost, Ordering::AcqRel);
                Err(PushError::Closed)
            }
        }
    }

    /// Queue, waiting for room. For a transport's own direct replies.
    pub async fn push(&self, item: Outbound) -> Result<(), PushError> {
        let cost = item.cost();
        self.shared.bytes.fetch_add(cost, Ordering::AcqRel);
        self.tx.send(item).await.map_err(|_| {
            self.shared.bytes.fetch_sub(cost, Ordering::AcqRel);
            PushError::Closed
        })
    }

    /// Completes once the queue has overflowed.
    pub async fn wait_overflow(&self) {
        wait_flag(&self.shared).await
    }

    pub fn is_closed(&self) -> bool {
        self.tx.is_closed() || self.shared.overflowed.load(Ordering::Acquire)
    }

    fn mark_overflow(&self) {
        if !self.shared.overflowed.swap(true, Ordering::AcqRel) {
            self.shared.overflow.notify_waiters();
        }
    }
}

impl OutboxReceiver {
    /// The next frame; `None` when every sender is gone.
    pub async fn recv(&mut self) -> Option<Outbound> {
        let item = self.rx.recv().await?;
        self.shared.bytes.fetch_sub(item.cost(), Ordering::AcqRel);
        Some(item)
    }

    /// The next frame if one is queued now.
    pub fn try_recv(&mut self) -> Option<Outbound> {
        let item = self.rx.try_recv().ok()?;
        self.shared.bytes.fetch_sub(item.cost(), Ordering::AcqRel);
        Some(item)
    }

    pub fn overflowed(&self) -> bool {
        self.shared.overflowed.load(Ordering::Acquire)
    }

    /// Completes once the queue has overflowed.
    pub async fn wait_overflow(&self) {
        wait_flag(&self.shared).await
    }

    /// Stop accepting frames; queued frames can still be read.
    pub fn close(&mut self) {
        self.rx.close();
    }
}

async fn wait_flag(shared: &Shared) {
    loop {
        let notified = shared.overflow.notified();
        if shared.overflowed.load(Ordering::Acquire) {
            return;
        }
        notified.await;
    }
}

/// Shared by the two ends of a subscription (`Subscriber` here, `Subscription` with the
/// caller); the `Subscription` holds the only strong reference.
#[derive(Debug, Default)]
pub(crate) struct Link {
    /// Set by the actor when it dropped the subscriber (session deleted).
    ended: AtomicBool,
}

impl Link {
    pub(crate) fn is_ended(&self) -> bool {
        self.ended.load(Ordering::Acquire)
    }
}

/// The actor's end: where the session's events go.
#[derive(Debug, Clone)]
pub(crate) struct Subscriber {
    pub(crate) outbox: Outbox,
    link: Weak<Link>,
}

impl Subscriber {
    /// A subscriber for `outbox`, and the link its `Subscription` will hold.
    pub(crate) fn new(outbox: Outbox) -> (Subscriber, Arc<Link>) {
        let link = Arc::new(Link::default());
        let sub = Subscriber {
            outbox,
            link: Arc::downgrade(&link),
        };
        (sub, link)
    }

    pub(crate) fn conn_id(&self) -> u64 {
        self.outbox.conn_id()
    }

    /// Still wanted: its `Subscription` is held and its connection can take frames.
    pub(crate) fn is_live(&self) -> bool {
        self.link.strong_count() > 0 && !self.outbox.is_closed()
    }

    /// The actor dropped this subscriber for good (the session is gone).
    pub(crate) fn end(&self) {
        if let Some(link) = self.link.upgrade() {
            link.ended.store(true, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(n: usize) -> Outbound {
        Outbound::Reply(Bytes::from(vec![b'x'; n]))
    }

    #[test]
    fn overflow_by_frames_marks_the_connection_and_refuses_further_pushes() {
        let (tx, mut rx) = Outbox::channel(2, 1 << 20);
        assert!(tx.try_push(reply(1)).is_ok());
        assert!(tx.try_push(reply(1)).is_ok());
        assert_eq!(tx.try_push(reply(1)), Err(PushError::Overflow));
        assert!(rx.overflowed());
        // Once overflowed, nothing more is queued even when there is room again.
        assert!(rx.try_recv().is_some());
        assert_eq!(tx.try_push(reply(1)), Err(PushError::Overflow));
    }

    #[test]
    fn overflow_by_bytes_is_bounded_but_one_large_frame_fits_an_empty_queue() {
        let (tx, mut rx) = Outbox::channel(100, 1000);
        assert!(
            tx.try_push(reply(5000)).is_ok(),
            "a single frame larger than the bound fits alone"
        );
        assert!(rx.try_recv().is_some());
        assert!(tx.try_push(reply(600)).is_ok());
        assert_eq!(tx.try_push(reply(600)), Err(PushError::Overflow));
    }

    #[test]
    fn a_large_frame_fits_behind_a_small_reply() {
        // A subscribe's answer: the `subscribed` reply, then a snapshot larger than the bound.
        let (tx, _rx) = Outbox::channel(100, 1000);
        assert!(tx.try_push(reply(192)).is_ok());
        assert!(
            tx.try_push(reply(5000)).is_ok(),
            "the queue held less than a quarter"
        );
        assert_eq!(tx.try_push(reply(10)), Err(PushError::Overflow));
    }

    /// Every connection's queue allocates a block of 32 of these at once: keep them small.
    #[test]
    fn outbound_stays_small() {
        assert!(
            std::mem::size_of::<Outbound>() <= 40,
            "{}",
            std::mem::size_of::<Outbound>()
        );
    }

    #[test]
    fn a_closed_receiver_reports_closed_not_overflow() {
        let (tx, rx) = Outbox::channel(4, 1000);
        drop(rx);
        assert_eq!(tx.try_push(reply(1)), Err(PushError::Closed));
        assert!(tx.is_closed());
    }
}
