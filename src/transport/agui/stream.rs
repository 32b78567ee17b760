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
use axum::response::Response;
use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use super::events::{AguiEvent, Interrupt, Outcome, KEEP_ALIVE};
use super::input::RunInput;
use crate::domain::{now_ms, Executor, Item, ItemStatus};
use crate::error::HubError;
use crate::session::event::{Event, EventBody};
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
    /// The hub runs this request started, in start order; removed as they end.
    pub(super) pending: Vec<String>,
    /// The request resolved the calls a run waited for: the run that continues it is this
    /// request's too (the first `run.started` with `continues`).
    pub(super) awaiting_continuation: bool,
    /// A later message of the request was refused after earlier ones started runs.
    pub(super) late_error: Option<HubError>,
}

/// How the request's runs ended, for the closing event.
#[derive(Default)]
struct Ending {
    /// The first failure: `(code, message)`.
    failed: Option<(String, String)>,
    cancelled: bool,
    /// Client calls the last run ended waiting for.
    pending_calls: Vec<String>,
    /// Server calls the last run ended waiting on a person's approval.
    approvals: Vec<String>,
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

/// The body side: frames go out in order; `false` from a write means the client is gone.
struct Out {
    /// The HTTP body holds the receiver; it is closed when the client goes away.
    tx: mpsc::Sender<Bytes>,
    /// The assistant message being streamed (its `TEXT_MESSAGE_START` was sent, not its end).
    open: Option<String>,
    /// The tool calls started and not ended: `(item id, call id)`.
    calls: Vec<(String, String)>,
}

impl Out {
    async fn send(&self, frame: Bytes) -> bool {
        self.tx.send(frame).await.is_ok()
    }

    async fn event(&self, event: AguiEvent<'_>) -> bool {
        self.send(event.frame()).await
    }

    async fn start(&mut self, message_id: &str, timestamp: i64) -> bool {
        self.open = Some(message_id.to_owned());
        let role = "assistant";
        self.event(AguiEvent::TextMessageStart {
            message_id,
            role,
            timestamp,
        })
        .await
    }

    /// Close the open message if it is `message_id` (any open one for `None`).
    async fn end(&mut self, message_id: Option<&str>, timestamp: i64) -> bool {
        match self.open.take_if(|m| message_id.is_none_or(|id| id == m)) {
            Some(message_id) => {
                self.event(AguiEvent::TextMessageEnd {
                    message_id: &message_id,
                    timestamp,
                })
                .await
            }
            None => true,
        }
    }

    /// `TOOL_CALL_START` for a tool item, closing the open text message first.
    async fn call_start(&mut self, item: &Item, timestamp: i64) -> bool {
        let Some(call) = &item.call else { return true };
        if !self.end(None, timestamp).await {
            return false;
        }
        self.calls.push((item.id.clone(), call.call_id.clone()));
        self.event(AguiEvent::ToolCallStart {
            tool_call_id: &call.call_id,
            tool_call_name: &call.name,
            parent_message_id: &call.parent_id,
            timestamp,
        })
        .await
    }

    /// The call id of the started, not ended, tool item `item_id`.
    fn open_call(&self, item_id: &str) -> Option<String> {
        self.calls
            .iter()
            .find(|(i, _)| i == item_id)
            .map(|(_, c)| c.clone())
    }

    /// `TOOL_CALL_END` for every started call (all of them for `None`).
    async fn call_end(&mut self, item_id: Option<&str>, timestamp: i64) -> bool {
        let (ended, kept) = std::mem::take(&mut self.calls)
            .into_iter()
            .partition(|(i, _)| item_id.is_none_or(|id| id == i));
        self.calls = kept;
        for (_, call_id) in ended {
            let end = AguiEvent::ToolCallEnd {
                tool_call_id: &call_id,
                timestamp,
            };
            if !self.event(end).await {
                return false;
            }
        }
        true
    }

    /// End the stream with `RUN_ERROR`, after closing the open message and calls (the
    /// client's verifier wants every message and call closed when a run ends).
    async fn error(&mut self, code: &str, message: &str) -> Stop {
        let timestamp = now_ms();
        if self.end(None, timestamp).await && self.call_end(None, timestamp).await {
            self.event(AguiEvent::RunError {
                message,
                code,
                timestamp,
            })
            .await;
        }
        Stop::Finished
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
        let out = Out {
            tx,
            open: None,
            calls: Vec::new(),
        };
        let stop = self.pump(out, close, keep_alive).await;
        let session = self.input.thread_id.clone();
        if stop == Stop::ClientGone {
            for run_id in std::mem::take(&mut self.pending) {
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
        if !out.event(started).await {
            return Stop::ClientGone;
        }
        let mut ending = Ending::default();
        let idle = tokio::time::sleep(keep_alive);
        tokio::pin!(idle);
        while !self.pending.is_empty() || self.awaiting_continuation {
            if self.rx.overflowed() {
                // Events were lost: the runs go on in the hub, but this stream cannot tell them.
                let message = "this stream fell behind the session; the reply stays in the thread";
                return out.error("unavailable", message).await;
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
                    return out.error("unavailable", "the hub is shutting down").await
                }
                None => {
                    return out
                        .error(
                            "unavailable",
                            "the session stopped streaming to this request",
                        )
                        .await
                }
            };
            if let EventBody::SessionDeleted {} = ev.body {
                return out.error("not_found", "the thread was deleted").await;
            }
            if !self.render(&ev, &mut ending, &mut out).await {
                return Stop::ClientGone;
            }
            idle.as_mut()
                .reset(tokio::time::Instant::now() + keep_alive);
        }
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
        let outcome = if !self.input.v1 {
            None
        } else if ending.cancelled {
            Some(Outcome::Cancelled)
        } else if !ending.approvals.is_empty() {
            let interrupts = ending.approvals.iter().map(|id| Interrupt {
                id: id.clone(),
                reason: "tool_call",
                message: "this tool call waits for approval".into(),
                tool_call_id: id.clone(),
            });
            Some(Outcome::Interrupt {
                interrupts: interrupts.collect(),
            })
        } else if !ending.pending_calls.is_empty() {
            Some(Outcome::Success {
                pending_tool_call_ids: ending.pending_calls.clone(),
            })
        } else {
            None
        };
        let timestamp = now_ms();
        out.event(AguiEvent::RunFinished {
            thread_id: &thread_id,
            run_id: &run_id,
            outcome,
            timestamp,
        })
        .await;
        Stop::Finished
    }

    /// Render one hub event of this request's runs; false when the client is gone.
    async fn render(&mut self, ev: &Event, ending: &mut Ending, out: &mut Out) -> bool {
        let Some(run_id) = ev.body.run_id() else {
            return true;
        };
        if let EventBody::RunStarted {
            continues: Some(_), ..
        } = &ev.body
        {
            if std::mem::take(&mut self.awaiting_continuation) {
                self.pending.push(run_id.to_owned());
            }
        }
        if !self.pending.iter().any(|r| r == run_id) {
            return true;
        }
        let timestamp = ev.ts;
        let ended = match &ev.body {
            EventBody::RunStarted { item_id, .. } => return out.start(item_id, timestamp).await,
            // A later model turn (after server tools ran): its own assistant message.
            EventBody::ItemStarted { item, .. } => {
                return out.end(None, timestamp).await && out.start(&item.id, timestamp).await
            }
            EventBody::ItemCompleted { item, .. } => {
                return out.end(Some(&item.id), timestamp).await
            }
            EventBody::ToolStarted { item, .. } => return out.call_start(item, timestamp).await,
            EventBody::ToolDelta {
                item_id, arguments, ..
            } if !arguments.is_empty() => {
                let Some(call_id) = out.open_call(item_id) else {
                    return true;
                };
                return out
                    .event(AguiEvent::ToolCallArgs {
                        tool_call_id: &call_id,
                        delta: arguments,
                        timestamp,
                    })
                    .await;
            }
            EventBody::ToolCalled { item, .. } => {
                return called(item, ending, out, timestamp).await
            }
            EventBody::ToolResult { item, .. } => {
                return result(item, ending, out, timestamp).await
            }
            // The verifier needs an open message; empty deltas carry nothing.
            EventBody::RunDelta { item_id, text, .. }
                if out.open.as_deref() == Some(item_id) && !text.is_empty() =>
            {
                return out
                    .event(AguiEvent::TextMessageContent {
                        message_id: item_id,
                        delta: text,
                        timestamp,
                    })
                    .await;
            }
            EventBody::RunCompleted {
                item,
                pending_tool_calls,
                ..
            } => {
                // What the run waits for: approvals are told as interrupts, the rest are the
                // client's calls.
                ending.pending_calls = pending_tool_calls
                    .iter()
                    .filter(|c| !ending.approvals.contains(c))
                    .cloned()
                    .collect();
                ending.approvals.retain(|c| pending_tool_calls.contains(c));
                Some(item.id.as_str())
            }
            EventBody::RunCancelled { item, .. } => {
                ending.cancelled = true;
                // A queued run has no item; `None` would close whatever message is open.
                Some(item.as_ref().map_or("", |i| i.id.as_str()))
            }
            EventBody::RunFailed { item, error, .. } => {
                ending
                    .failed
                    .get_or_insert_with(|| (error.code.clone(), error.message.clone()));
                Some(item.id.as_str())
            }
            _ => None,
        };
        let Some(item_id) = ended else { return true };
        self.pending.retain(|r| r != run_id);
        out.end(Some(item_id), timestamp).await && out.call_end(None, timestamp).await
    }
}

/// `tool.called`: the call's arguments are complete. A call never announced by `tool.started`
/// is opened whole; one awaiting approval is remembered for the run's interrupt.
async fn called(item: &Item, ending: &mut Ending, out: &mut Out, timestamp: i64) -> bool {
    let Some(call) = &item.call else { return true };
    if out.open_call(&item.id).is_none() {
        if !out.call_start(item, timestamp).await {
            return false;
        }
        if !call.arguments.is_empty() {
            let args = AguiEvent::ToolCallArgs {
                tool_call_id: &call.call_id,
                delta: &call.arguments,
                timestamp,
            };
            if !out.event(args).await {
                return false;
            }
        }
    }
    if item.status == ItemStatus::AwaitingApproval {
        ending.approvals.push(call.call_id.clone());
    }
    out.call_end(Some(&item.id), timestamp).await
}

/// `tool.result`: a server tool's output becomes `TOOL_CALL_RESULT`; a client's own result
/// is already in its messages.
async fn result(item: &Item, ending: &mut Ending, out: &mut Out, timestamp: i64) -> bool {
    let Some(call) = &item.call else { return true };
    ending.approvals.retain(|c| c != &call.call_id);
    if !out.call_end(Some(&item.id), timestamp).await {
        return false;
    }
    if call.executor == Executor::Client {
        return true;
    }
    out.event(AguiEvent::ToolCallResult {
        message_id: &item.id,
        tool_call_id: &call.call_id,
        content: call.output.as_deref().unwrap_or_default(),
        role: "tool",
        timestamp,
    })
    .await
}
