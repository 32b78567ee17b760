//! The streaming half of `POST /agui`: the hub runs a request started, rendered as one AG-UI
//! run (`RUN_STARTED`, a text message per hub run, then `RUN_FINISHED` or `RUN_ERROR`).
//!
//! A writer task owns the session subscription and feeds the HTTP body through a small
//! channel. AG-UI's abort is a closed fetch: when the body is dropped before the runs ended,
//! the task cancels the runs it started, so the hub stores the partial reply as `cancelled`.
//! Comment keep-alives while the model is silent make a gone client show up as a failed write.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use super::events::{AguiEvent, Outcome, KEEP_ALIVE};
use super::input::RunInput;
use crate::auth::Principal;
use crate::error::HubError;
use crate::session::event::{now_ms, Event, EventBody};
use crate::session::{Hub, Outbound, OutboxReceiver};
use crate::transport::Signals;

/// Frames buffered between the writer task and the HTTP body.
const BODY_FRAMES: usize = 64;

/// What the writer task needs to render the runs of one request.
pub(super) struct RunStream {
    pub(super) hub: Hub,
    pub(super) who: Principal,
    pub(super) input: RunInput,
    /// Its only sender is the session actor's copy: it ends when the actor drops us.
    pub(super) rx: OutboxReceiver,
    pub(super) conn_id: u64,
    /// The hub runs this request started, in start order; removed as they end.
    pub(super) pending: Vec<String>,
    /// A later message of the request was refused after earlier ones started runs.
    pub(super) late_error: Option<HubError>,
}

/// How the request's runs ended, for the closing event.
#[derive(Default)]
struct Ending {
    /// The first failure: `(code, message)`.
    failed: Option<(String, String)>,
    cancelled: bool,
}

/// Why the writer stopped.
#[derive(PartialEq, Eq)]
enum Stop {
    /// The closing event was written (or the stream cannot go on): nothing to cancel.
    Finished,
    /// The client closed the stream while runs were pending.
    ClientGone,
}

/// The SSE response: headers now, events as the runs produce them.
pub(super) fn respond(run: RunStream, signals: &Signals, keep_alive: Duration) -> Response {
    let (tx, body_rx) = mpsc::channel::<Bytes>(BODY_FRAMES);
    // Tracked, so a shutdown waits for the stream to render its runs' end.
    signals
        .tracker
        .spawn(run.drive(tx, signals.close_conns.clone(), keep_alive));
    sse_response(Body::from_stream(
        ReceiverStream::new(body_rx).map(Ok::<_, Infallible>),
    ))
}

/// A request refused by the session's state (busy): a stream of one `RUN_ERROR`, which both
/// clients accept as a first event.
pub(super) fn refused(err: &HubError) -> Response {
    let message = err.to_string();
    let event = AguiEvent::RunError {
        message: &message,
        code: err.code(),
        timestamp: now_ms(),
    };
    sse_response(Body::from(event.frame()))
}

fn sse_response(body: Body) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::HeaderName::from_static("x-accel-buffering"), "no"),
        ],
        body,
    )
        .into_response()
}

/// The body side; false from `send` means the client is gone.
struct Out {
    tx: mpsc::Sender<Bytes>,
}

impl Out {
    async fn send(&self, frame: Bytes) -> bool {
        self.tx.send(frame).await.is_ok()
    }

    async fn event(&self, event: AguiEvent<'_>) -> bool {
        self.send(event.frame()).await
    }
}

impl RunStream {
    async fn drive(
        mut self,
        tx: mpsc::Sender<Bytes>,
        close: CancellationToken,
        keep_alive: Duration,
    ) {
        let gauge = self.hub.metrics().connection_gauge("agui");
        gauge.inc();
        let stop = self.pump(Out { tx }, close, keep_alive).await;
        let session = self.input.thread_id.clone();
        if stop == Stop::ClientGone {
            for run_id in std::mem::take(&mut self.pending) {
                match self
                    .hub
                    .cancel(&self.who, &session, Some(run_id.clone()))
                    .await
                {
                    Ok(()) => {
                        tracing::debug!(session_id = %session, %run_id, transport = "agui", "stream closed: run cancelled")
                    }
                    // It ended in the meantime: nothing to stop.
                    Err(e) => {
                        tracing::debug!(session_id = %session, %run_id, code = e.code(), "stream closed after its run")
                    }
                }
            }
        }
        let _ = self
            .hub
            .unsubscribe(&self.who, &session, self.conn_id)
            .await;
        gauge.dec();
    }

    async fn pump(&mut self, out: Out, close: CancellationToken, keep_alive: Duration) -> Stop {
        let (thread_id, run_id) = (self.input.thread_id.clone(), self.input.run_id.clone());
        if !out
            .event(AguiEvent::RunStarted {
                thread_id: &thread_id,
                run_id: &run_id,
                timestamp: now_ms(),
            })
            .await
        {
            return Stop::ClientGone;
        }
        let mut ending = Ending::default();
        let mut open: Option<String> = None;
        let idle = tokio::time::sleep(keep_alive);
        tokio::pin!(idle);
        while !self.pending.is_empty() {
            if self.rx.overflowed() {
                // Events were lost: the runs go on in the hub, but this stream cannot tell them.
                let message = "this stream fell behind the session; the reply stays in the thread";
                out.event(AguiEvent::RunError {
                    message,
                    code: "unavailable",
                    timestamp: now_ms(),
                })
                .await;
                return Stop::Finished;
            }
            let next = tokio::select! {
                // Queued events first: at shutdown the runs' ends are already queued.
                biased;
                next = self.rx.recv() => next,
                _ = out.tx.closed() => return Stop::ClientGone,
                _ = close.cancelled() => {
                    let message = "the hub is shutting down";
                    out.event(AguiEvent::RunError { message, code: "unavailable", timestamp: now_ms() }).await;
                    return Stop::Finished;
                }
                _ = &mut idle => {
                    if !out.send(Bytes::from_static(KEEP_ALIVE)).await {
                        return Stop::ClientGone;
                    }
                    idle.as_mut().reset(tokio::time::Instant::now() + keep_alive);
                    continue;
                }
            };
            let ev = match next {
                Some(Outbound::Event(ev)) => ev,
                Some(_) => continue,
                None => {
                    let message = "the session stopped streaming to this request";
                    out.event(AguiEvent::RunError {
                        message,
                        code: "unavailable",
                        timestamp: now_ms(),
                    })
                    .await;
                    return Stop::Finished;
                }
            };
            if let EventBody::SessionDeleted {} = ev.body {
                let message = "the thread was deleted";
                out.event(AguiEvent::RunError {
                    message,
                    code: "not_found",
                    timestamp: ev.ts,
                })
                .await;
                return Stop::Finished;
            }
            if !self.render(&ev, &mut open, &mut ending, &out).await {
                return Stop::ClientGone;
            }
            idle.as_mut()
                .reset(tokio::time::Instant::now() + keep_alive);
        }
        // Stopped elsewhere (another tab, an interrupting message): 0.0.59 has no cancelled
        // outcome, so it gets the error both lines know.
        let closing = if let Some(failed) = ending.failed.take() {
            Err(failed)
        } else if let Some(e) = &self.late_error {
            Err((e.code().to_owned(), e.to_string()))
        } else if ending.cancelled && !self.input.v1 {
            Err(("cancelled".to_owned(), "the run was cancelled".to_owned()))
        } else {
            Ok(ending.cancelled.then_some(Outcome::Cancelled))
        };
        let timestamp = now_ms();
        let closing = match &closing {
            Ok(outcome) => AguiEvent::RunFinished {
                thread_id: &thread_id,
                run_id: &run_id,
                outcome: *outcome,
                timestamp,
            },
            Err((code, message)) => AguiEvent::RunError {
                message,
                code,
                timestamp,
            },
        };
        // The runs are over whether or not the client reads this.
        out.event(closing).await;
        Stop::Finished
    }

    /// Render one hub event of this request's runs; false when the client is gone.
    async fn render(
        &mut self,
        ev: &Event,
        open: &mut Option<String>,
        ending: &mut Ending,
        out: &Out,
    ) -> bool {
        let Some(run_id) = ev.body.run_id() else {
            return true;
        };
        if !self.pending.iter().any(|r| r == run_id) {
            return true;
        }
        let timestamp = ev.ts;
        match &ev.body {
            EventBody::RunStarted { item_id, .. } => {
                *open = Some(item_id.clone());
                out.event(AguiEvent::TextMessageStart {
                    message_id: item_id,
                    role: "assistant",
                    timestamp,
                })
                .await
            }
            // The verifier needs an open message; empty deltas carry nothing.
            EventBody::RunDelta { item_id, text, .. }
                if open.as_deref() == Some(item_id) && !text.is_empty() =>
            {
                out.event(AguiEvent::TextMessageContent {
                    message_id: item_id,
                    delta: text,
                    timestamp,
                })
                .await
            }
            EventBody::RunCompleted { item, .. } => {
                self.end(run_id, Some(&item.id), open, out, timestamp).await
            }
            EventBody::RunCancelled { item, .. } => {
                ending.cancelled = true;
                self.end(
                    run_id,
                    item.as_ref().map(|i| i.id.as_str()),
                    open,
                    out,
                    timestamp,
                )
                .await
            }
            EventBody::RunFailed { item, error, .. } => {
                ending
                    .failed
                    .get_or_insert_with(|| (error.code.clone(), error.message.clone()));
                self.end(run_id, Some(&item.id), open, out, timestamp).await
            }
            _ => true,
        }
    }

    /// A run of this request ended: close its text message if it had one open.
    async fn end(
        &mut self,
        run_id: &str,
        item_id: Option<&str>,
        open: &mut Option<String>,
        out: &Out,
        timestamp: i64,
    ) -> bool {
        self.pending.retain(|r| r != run_id);
        match open.take_if(|m| Some(m.as_str()) == item_id) {
            Some(message_id) => {
                out.event(AguiEvent::TextMessageEnd {
                    message_id: &message_id,
                    timestamp,
                })
                .await
            }
            None => true,
        }
    }
}
