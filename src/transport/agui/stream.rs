//! The streaming half of `POST /agui`: the hub runs a request started (and the run that
//! continues the tool calls it answered), rendered as one AG-UI run: `RUN_STARTED`, the runs'
//! messages and tool calls (`render`), then `RUN_FINISHED` (its outcome says what waits) or
//! `RUN_ERROR`.
//!
//! A writer task owns the session subscription and feeds the HTTP body through a small
//! channel. AG-UI's abort is a closed fetch: when the body is dropped before the runs ended,
//! the task cancels the runs it streams, so the hub stores the partial reply as `cancelled`.
//! Comment keep-alives while the model is silent make a gone client show up as a failed write.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use super::events::{AguiEvent, KEEP_ALIVE};
use super::input::RunInput;
use super::render::{Out, Tracker};
use crate::domain::now_ms;
use crate::error::HubError;
use crate::session::event::EventBody;
use crate::session::{Caller, Hub, Outbound, OutboxReceiver, Subscription};
use crate::transport::{event_stream, Signals};

/// Frames buffered between the writer task and the HTTP body.
const BODY_FRAMES: usize = 64;

/// What the writer task needs to render the runs of one request.
pub(super) struct RunStream {
    pub(super) hub: Hub,
    pub(super) caller: Caller,
    pub(super) input: RunInput,
    /// Its only sender is the session actor's copy: it ends when the actor drops the
    /// subscriber (session deleted, slow consumer).
    pub(super) rx: OutboxReceiver,
    /// Held while the runs stream; dropped (ending the subscription) when the stream ends.
    pub(super) _sub: Subscription,
    /// The request's runs, and what they leave waiting.
    pub(super) track: Tracker,
    /// A later message of the request was refused after earlier ones started runs.
    pub(super) late_error: Option<HubError>,
    /// The thread's shared state as of the request's start (`STATE_SNAPSHOT` after
    /// `RUN_STARTED`); state events of versions up to it are already in it.
    pub(super) state: super::state::Opening,
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
    event_stream("text/event-stream", body)
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
        let stop = self.pump(Out::new(tx), close, keep_alive).await;
        let session = self.input.thread_id.clone();
        if stop == Stop::ClientGone {
            for run_id in std::mem::take(&mut self.track.pending) {
                match self
                    .hub
                    .cancel(&self.caller, &session, Some(run_id.clone()))
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
        gauge.dec();
    }

    async fn pump(&mut self, mut out: Out, close: CancellationToken, keep_alive: Duration) -> Stop {
        let (thread_id, run_id) = (self.input.thread_id.clone(), self.input.run_id.clone());
        let started = AguiEvent::RunStarted {
            thread_id: &thread_id,
            run_id: &run_id,
            timestamp: now_ms(),
        };
        if !out.event(started).await || !self.state.open(&mut out).await {
            return Stop::ClientGone;
        }
        let idle = tokio::time::sleep(keep_alive);
        tokio::pin!(idle);
        while self.track.streaming() {
            if self.rx.overflowed() {
                // Events were lost: the runs go on in the hub, but this stream cannot tell them.
                let message = "this stream fell behind the session; the reply stays in the thread";
                out.error("unavailable", message).await;
                return Stop::Finished;
            }
            let next = tokio::select! {
                // Queued events first: at shutdown the runs' ends are already queued.
                biased;
                next = self.rx.recv() => next,
                _ = out.tx.closed() => return Stop::ClientGone,
                _ = close.cancelled() => None,
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
                // Shutdown, or the session dropped this subscriber.
                None if close.is_cancelled() => {
                    out.error("unavailable", "the hub is shutting down").await;
                    return Stop::Finished;
                }
                None => {
                    let message = "the session stopped streaming to this request";
                    out.error("unavailable", message).await;
                    return Stop::Finished;
                }
            };
            if let EventBody::SessionDeleted {} = ev.body {
                out.error("not_found", "the thread was deleted").await;
                return Stop::Finished;
            }
            if let Some(sent) = self.state.render(&ev.body, &mut out).await {
                if !sent {
                    return Stop::ClientGone;
                }
                continue;
            }
            if !self.track.render(&ev, &mut out).await || !self.state.flush(&mut out).await {
                return Stop::ClientGone;
            }
            idle.as_mut()
                .reset(tokio::time::Instant::now() + keep_alive);
        }
        self.finish(&mut out, &thread_id, &run_id).await;
        Stop::Finished
    }

    /// The closing event, once the request's runs ended.
    async fn finish(&self, out: &mut Out, thread_id: &str, run_id: &str) {
        let ending = &self.track.ending;
        if let Some((code, message)) = &ending.failed {
            return out.error(code, message).await;
        }
        if let Some(e) = &self.late_error {
            return out.error(e.code(), &e.to_string()).await;
        }
        // Stopped elsewhere (another tab, an interrupting message): 0.0.59 has no cancelled
        // outcome, so it gets the error both lines know.
        if ending.cancelled && !self.input.v1 {
            return out.error("cancelled", "the run was cancelled").await;
        }
        out.event(AguiEvent::RunFinished {
            thread_id,
            run_id,
            outcome: ending.outcome(self.input.v1),
            timestamp: now_ms(),
        })
        .await;
    }
}
