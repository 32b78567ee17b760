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

use super::items;
use super::reasoning::Thought;
use super::wire::{self, frame, item_updated};
use crate::domain::{now_rfc3339, Executor, Item, ItemStatus, Role};
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
    /// The run this stream renders; closing the stream early cancels it (the stop button).
    pub(super) follow: Follow,
    /// The tool item of an approval this request resolved: its `tool.result` replaces the
    /// widget.
    pub(super) replace: Option<String>,
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
        if matches!(self.follow, Follow::Nothing) && self.replace.is_none() {
            // A client result that leaves other calls of its run waiting: nothing streams.
            out.finished = true;
        } else if ok {
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
        if let (false, Follow::Run(run_id)) = (out.finished, &self.follow) {
            // The client closed the stream before the run ended: that is ChatKit's stop button.
            match self
                .hub
                .cancel(&self.caller, &self.thread.id, Some(run_id.clone()))
                .await
            {
                Ok(()) => {
                    tracing::debug!(session_id = %self.thread.id, run_id = %run_id, "chatkit stream closed: run cancelled")
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
                        return out.send(json!({"type": "thread.item.done", "item": items::item(&self.thread.id, item)})).await;
                    }
                }
            }
        }
        false
    }

    /// Render one hub event; `None` when the client is gone.
    async fn render(&mut self, ev: &Event, st: &mut Render, out: &mut Writer) -> Option<Step> {
        let tid = self.thread.id.clone();
        let tid = tid.as_str();
        if let Follow::ContinuationOf { run, reply_to } = &self.follow {
            // The resolved calls let the run go on: this stream follows the continuation, from
            // its `run.queued` when it must wait (it answers the same message), so that a
            // continuation cancelled before it starts ends this stream too.
            let next = match &ev.body {
                EventBody::RunStarted {
                    run_id,
                    continues: Some(prev),
                    ..
                } if prev == run => Some(run_id),
                EventBody::RunQueued {
                    run_id,
                    reply_to: r,
                } if Some(r) == reply_to.as_ref() => Some(run_id),
                _ => None,
            };
            if let Some(run_id) = next {
                self.follow = Follow::Run(run_id.clone());
            }
        }
        let mine = matches!(&self.follow, Follow::Run(r) if ev.body.run_id() == Some(r.as_str()));
        let sent = match &ev.body {
            EventBody::SessionUpdated { title } => {
                self.thread.title = title.clone();
                let updated =
                    json!({"type": "thread.updated", "thread": wire::thread(&self.thread, None)});
                if st.added {
                    out.send(updated).await
                } else {
                    // The SDK reports a title set by `respond` after the reply's first event.
                    st.title = Some(updated);
                    true
                }
            }
            EventBody::SessionDeleted {} => {
                out.send(json!({"type": "error", "code": "custom", "message": "the thread was deleted", "allow_retry": false})).await;
                return Some(Step::Done);
            }
            EventBody::ItemStarted { item, .. } if mine && item.role == Role::Reasoning => {
                let added = st.thought.start(tid, item);
                out.send(added).await && st.flush_title(out).await
            }
            EventBody::ReasoningDelta { item_id, text, .. } if mine => {
                match st.thought.delta(item_id, text) {
                    Some(update) => out.send(update).await,
                    None => true,
                }
            }
            EventBody::ItemCompleted { item, .. } if mine && item.role == Role::Reasoning => {
                out.send(st.thought.done(tid, item)).await
            }
            EventBody::RunStarted { item_id, .. } if mine => st.start(item_id),
            EventBody::ItemStarted { item, .. } if mine => st.start(&item.id),
            EventBody::RunDelta { item_id, text, .. } if mine => {
                let delta = item_updated(
                    item_id,
                    json!({"type": "assistant_message.content_part.text_delta", "content_index": 0, "delta": text}),
                );
                st.ensure_added(tid, out).await && out.send(delta).await
            }
            EventBody::ItemCompleted { item, .. } if mine => st.finish(tid, item, out).await,
            EventBody::RunCompleted { item, .. } if mine => {
                let ok = st.finish(tid, item, out).await && st.flush_title(out).await;
                return ok.then_some(Step::Done);
            }
            EventBody::RunCancelled { item, .. } if mine => {
                // Stopped from another tab: the partial reply is final; an empty one is dropped.
                let ok = match item {
                    Some(item) if !items::hidden(item) => st.finish(tid, item, out).await,
                    Some(item) if st.added => {
                        out.send(json!({"type": "thread.item.removed", "item_id": item.id}))
                            .await
                    }
                    _ => true,
                };
                return ok.then_some(Step::Done);
            }
            EventBody::RunFailed { error, .. } if mine => {
                let e = json!({"type": "error", "code": "stream.error", "allow_retry": error.retryable});
                return out.send(e).await.then_some(Step::Done);
            }
            EventBody::ToolCalled { item, .. } if mine => {
                let shown = if item.status == ItemStatus::Running {
                    let name = item.call.as_ref().map_or("a tool", |c| c.name.as_str());
                    json!({"type": "progress_update", "icon": "bolt", "text": format!("Calling {name}")})
                } else {
                    json!({"type": "thread.item.done", "item": items::item(tid, item)})
                };
                // A title set by the run follows the first event, as the SDK sends it.
                out.send(shown).await && st.flush_title(out).await
            }
            EventBody::ToolResult { item, .. }
                if self.replace.as_deref() == Some(item.id.as_str()) =>
            {
                // The approval this request gave or refused: its widget becomes the call's task.
                let ok = out
                    .send(json!({"type": "thread.item.replaced", "item": items::item(tid, item)}))
                    .await;
                if matches!(self.follow, Follow::Nothing) {
                    return ok.then_some(Step::Done);
                }
                ok
            }
            EventBody::ToolResult { item, .. } if mine && !items::hidden(item) => {
                let server = item
                    .call
                    .as_ref()
                    .is_some_and(|c| c.executor == Executor::Server);
                !server
                    || out
                        .send(json!({"type": "thread.item.done", "item": items::item(tid, item)}))
                        .await
            }
            _ => true,
        };
        sent.then_some(Step::Continue)
    }
}

/// Which run a stream renders.
pub(super) enum Follow {
    /// The run this request started.
    Run(String),
    /// The continuation of `run` (answering the user message `reply_to`), which starts once
    /// its resolved calls allow it.
    ContinuationOf {
        run: String,
        reply_to: Option<String>,
    },
    /// No run: other calls of the run still wait. The stream ends once the resolution shows.
    Nothing,
}

/// The end of a streamed reply: its content part, then the whole item.
fn reply_done(thread_id: &str, item: &Item) -> Vec<Value> {
    let part = json!({"type": "assistant_message.content_part.done", "content_index": 0, "content": items::output_text(&item.text)});
    vec![
        item_updated(&item.id, part),
        json!({"type": "thread.item.done", "item": items::item(thread_id, item)}),
    ]
}

/// Per-stream rendering state.
#[derive(Default)]
struct Render {
    /// The assistant item of the current model turn, once started.
    item: Option<String>,
    /// Whether that item was announced (`thread.item.added`): only once it has text, so a turn
    /// that only calls tools shows no empty message, as with the SDK.
    added: bool,
    /// A `thread.updated` held back until the reply's first event.
    title: Option<Value>,
    /// The reasoning workflow being streamed (PROTOCOL 1.2).
    thought: Thought,
}

impl Render {
    fn start(&mut self, item_id: &str) -> bool {
        self.item = Some(item_id.to_owned());
        self.added = false;
        true
    }

    async fn ensure_added(&mut self, tid: &str, out: &mut Writer) -> bool {
        let Some(id) = self.item.clone().filter(|_| !self.added) else {
            return true;
        };
        self.added = true;
        let mut events = vec![
            json!({"type": "thread.item.added", "item": items::assistant(tid, &id, &now_rfc3339(), None)}),
            item_updated(
                &id,
                json!({"type": "assistant_message.content_part.added", "content_index": 0, "content": items::output_text("")}),
            ),
        ];
        events.splice(1..1, self.title.take());
        out.send_all(events).await
    }

    /// End the turn's assistant item: done when it has text, nothing when it never had any.
    async fn finish(&mut self, tid: &str, item: &Item, out: &mut Writer) -> bool {
        let ok = if self.added || !item.text.is_empty() {
            self.ensure_added(tid, out).await && out.send_all(reply_done(tid, item)).await
        } else {
            true
        };
        self.item = None;
        self.added = false;
        ok
    }

    async fn flush_title(&mut self, out: &mut Writer) -> bool {
        match self.title.take() {
            Some(t) => out.send(t).await,
            None => true,
        }
    }
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
