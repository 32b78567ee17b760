//! The streaming half of `POST /chatkit`: one run of the session rendered as ChatKit events.
//!
//! A writer task owns the session subscription and feeds the HTTP body through a small
//! channel. When the client closes the stream before its run ended (the ChatKit stop button),
//! the body and with it the channel's receiver are dropped; the task sees that and cancels the
//! run it started, so the hub stores the partial reply. Runs started elsewhere are never
//! cancelled from here.

use std::convert::Infallible;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use futures::StreamExt;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use super::wire::{self, frame, item_updated};
use crate::domain::{now_rfc3339, Item};
use crate::session::event::{Event, EventBody};
use crate::session::{Caller, Hub, Outbound, OutboxReceiver, SessionInfo, Subscription};
use crate::transport::{event_stream, Signals};

/// Frames buffered between the writer task and the HTTP body.
const BODY_FRAMES: usize = 64;

/// What the writer task needs to render one run.
pub(super) struct RunStream {
    pub(super) hub: Hub,
    pub(super) caller: Caller,
    /// The thread as it was when the request arrived (for `thread.updated`).
    pub(super) thread: SessionInfo,
    /// Its only sender is the session actor's copy: it ends when the actor drops the
    /// subscriber (session deleted, slow consumer).
    pub(super) rx: OutboxReceiver,
    /// Held while the run streams; dropped (ending the subscription) when the stream ends.
    pub(super) _sub: Subscription,
    pub(super) run_id: String,
    /// Events the SDK sends before `stream_options`: `thread.created` for a new thread.
    pub(super) prelude: Vec<Value>,
    /// The user message this request stored: its `message` event becomes `thread.item.done`.
    pub(super) user_item: Option<String>,
}

/// The SSE response: headers now, events as the run produces them.
pub(super) fn respond(run: RunStream, signals: &Signals) -> Response {
    let (tx, body_rx) = mpsc::channel::<Bytes>(BODY_FRAMES);
    // Tracked, so a shutdown waits for the stream to render its run's end.
    signals
        .tracker
        .spawn(run.drive(tx, signals.close_conns.clone()));
    let body = Body::from_stream(ReceiverStream::new(body_rx).map(Ok::<_, Infallible>));
    sse_response(body)
}

/// A stream of fixed events (an `error` for a feature the hub lacks), ended at once.
pub(super) fn fixed(events: &[Value]) -> Response {
    let bytes: Vec<u8> = events.iter().flat_map(|e| frame(e).to_vec()).collect();
    sse_response(Body::from(bytes))
}

fn sse_response(body: Body) -> Response {
    event_stream("text/event-stream; charset=utf-8", body)
}

/// How rendering one hub event went.
enum Step {
    Continue,
    /// The run ended (its terminal event was rendered): close the stream normally.
    Done,
}

impl RunStream {
    async fn drive(mut self, tx: mpsc::Sender<Bytes>, close: CancellationToken) {
        let mut out = Writer {
            tx,
            finished: false,
        };
        let mut state = Render::default();
        let ok = out.send_all(std::mem::take(&mut self.prelude)).await;
        let ok = ok && self.user_message(&mut out).await;
        let ok = ok
            && out
                .send(json!({"type": "stream_options", "stream_options": {"allow_cancel": true}}))
                .await;
        if ok {
            loop {
                let next = tokio::select! {
                    // Queued events first: at shutdown the run's end is already queued.
                    biased;
                    next = self.rx.recv() => next,
                    _ = out.tx.closed() => break,
                    _ = close.cancelled() => {
                        // Shutdown: the actors already ended or interrupted every run.
                        out.finished = true;
                        break;
                    }
                };
                let Some(Outbound::Event(ev)) = next else {
                    if next.is_none() {
                        // Dropped by the session (slow reader or deleted thread): the run goes on.
                        out.finished = true;
                        let _ = out.send(json!({"type": "error", "code": "stream.error", "allow_retry": true})).await;
                        break;
                    }
                    continue;
                };
                match self.render(&ev, &mut state, &mut out).await {
                    Some(Step::Continue) => {}
                    Some(Step::Done) => {
                        out.finished = true;
                        break;
                    }
                    None => break,
                }
            }
        }
        if !out.finished {
            // The client closed the stream before the run ended: that is ChatKit's stop button.
            match self
                .hub
                .cancel(&self.caller, &self.thread.id, Some(self.run_id.clone()))
                .await
            {
                Ok(()) => {
                    tracing::debug!(session_id = %self.thread.id, run_id = %self.run_id, "chatkit stream closed: run cancelled")
                }
                Err(e) => {
                    tracing::debug!(session_id = %self.thread.id, code = e.code(), "chatkit stream closed after its run")
                }
            }
        }
    }

    /// Wait for this request's user message and render it as `thread.item.done`.
    async fn user_message(&mut self, out: &mut Writer) -> bool {
        let Some(want) = self.user_item.clone() else {
            return true;
        };
        while let Some(next) = self.rx.recv().await {
            if let Outbound::Event(ev) = next {
                if let EventBody::Message { item } = &ev.body {
                    if item.id == want {
                        return out.send(json!({"type": "thread.item.done", "item": wire::item(&self.thread.id, item)})).await;
                    }
                }
            }
        }
        false
    }

    /// Render one hub event; `None` when the client is gone.
    async fn render(&mut self, ev: &Event, st: &mut Render, out: &mut Writer) -> Option<Step> {
        let tid = self.thread.id.as_str();
        let mine = ev.body.run_id() == Some(self.run_id.as_str());
        let sent = match &ev.body {
            EventBody::SessionUpdated { title } => {
                self.thread.title = title.clone();
                let updated = json!({"type": "thread.updated", "thread": wire::thread(&self.thread, None)});
                if st.item.is_none() {
                    // The SDK reports a title set by `respond` after the reply's first event.
                    st.title = Some(updated);
                    true
                } else {
                    out.send(updated).await
                }
            }
            EventBody::SessionDeleted {} => {
                out.send(json!({"type": "error", "code": "custom", "message": "the thread was deleted", "allow_retry": false})).await;
                return Some(Step::Done);
            }
            EventBody::RunStarted { item_id, .. } if mine => {
                st.item = Some(item_id.clone());
                let mut events = vec![
                    json!({"type": "thread.item.added", "item": wire::assistant(tid, item_id, &now_rfc3339(), None)}),
                    item_updated(item_id, json!({"type": "assistant_message.content_part.added", "content_index": 0, "content": wire::output_text("")})),
                ];
                events.splice(1..1, st.title.take());
                out.send_all(events).await
            }
            EventBody::RunDelta { item_id, text, .. } if mine => {
                out.send(item_updated(item_id, json!({"type": "assistant_message.content_part.text_delta", "content_index": 0, "delta": text})))
                    .await
            }
            EventBody::RunCompleted { item, .. } if mine => {
                return out.send_all(reply_done(tid, item)).await.then_some(Step::Done);
            }
            EventBody::RunCancelled { item, .. } if mine => {
                // Stopped from another tab: the partial reply is final; an empty one is dropped.
                let events = match item {
                    Some(item) if !wire::hidden(item) => reply_done(tid, item),
                    Some(item) => vec![json!({"type": "thread.item.removed", "item_id": item.id})],
                    None => Vec::new(),
                };
                return out.send_all(events).await.then_some(Step::Done);
            }
            EventBody::RunFailed { error, .. } if mine => {
                let e = json!({"type": "error", "code": "stream.error", "allow_retry": error.retryable});
                return out.send(e).await.then_some(Step::Done);
            }
            _ => true,
        };
        sent.then_some(Step::Continue)
    }
}

/// The end of a streamed reply: its content part, then the whole item.
fn reply_done(thread_id: &str, item: &Item) -> Vec<Value> {
    let part = json!({"type": "assistant_message.content_part.done", "content_index": 0, "content": wire::output_text(&item.text)});
    vec![
        item_updated(&item.id, part),
        json!({"type": "thread.item.done", "item": wire::item(thread_id, item)}),
    ]
}

/// Per-stream rendering state.
#[derive(Default)]
struct Render {
    /// The assistant item of this run, once started.
    item: Option<String>,
    /// A `thread.updated` held back until the reply's first event.
    title: Option<Value>,
}

/// The body side: each event is framed and handed over at once (hyper flushes per chunk).
struct Writer {
    /// The HTTP body holds the receiver; it is closed when the client goes away (the stop
    /// button).
    tx: mpsc::Sender<Bytes>,
    /// The run ended (or cannot be followed any more): closing the body must not cancel it.
    finished: bool,
}

impl Writer {
    /// False when the client is gone.
    async fn send(&mut self, event: Value) -> bool {
        self.tx.send(frame(&event)).await.is_ok()
    }

    async fn send_all(&mut self, events: Vec<Value>) -> bool {
        for e in events {
            if !self.send(e).await {
                return false;
            }
        }
        true
    }
}
