//! Hub events to AG-UI events, for the runs one request streams. [`Tracker`] knows which runs
//! are the request's (the ones it started, and the run that continues the calls it answered)
//! and what the last of them left waiting; [`Out`] writes the events, keeping the text message
//! and the tool calls that are open, so every one is closed before the run ends.
//!
//! An assistant item is a text message; a tool item is a tool call parented to its turn's
//! assistant message (`parentMessageId`); a server tool's result is `TOOL_CALL_RESULT` (a
//! client's own result is already in its messages).

use bytes::Bytes;
use tokio::sync::mpsc;

use super::answers::{Answers, Continuation};
use super::ending::{Approval, Ending};
use super::events::AguiEvent;
use crate::domain::{now_ms, Executor, Item, ItemStatus};
use crate::session::event::{Event, EventBody};

/// The body side: frames go out in order; `false` from a write means the client is gone.
pub(super) struct Out {
    /// The HTTP body holds the receiver; it is closed when the client goes away.
    pub(super) tx: mpsc::Sender<Bytes>,
    /// The assistant message being streamed (its `TEXT_MESSAGE_START` was sent, not its end).
    open: Option<String>,
    /// The tool calls started and not ended: `(item id, call id)`.
    calls: Vec<(String, String)>,
    /// The reasoning item being streamed (its `REASONING_START` was sent, not its end).
    pub(super) thinking: Option<String>,
}

impl Out {
    pub(super) fn new(tx: mpsc::Sender<Bytes>) -> Self {
        Out {
            tx,
            open: None,
            calls: Vec::new(),
            thinking: None,
        }
    }

    /// A text message or a tool call is open: 0.0.59's verifier allows no other event until
    /// it ends.
    pub(super) fn in_message(&self) -> bool {
        self.open.is_some() || !self.calls.is_empty()
    }

    pub(super) async fn send(&self, frame: Bytes) -> bool {
        self.tx.send(frame).await.is_ok()
    }

    pub(super) async fn event(&self, event: AguiEvent<'_>) -> bool {
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

    /// `TOOL_CALL_END` for the started call of `item_id` (every started call for `None`).
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
    pub(super) async fn error(&mut self, code: &str, message: &str) {
        let timestamp = now_ms();
        if self.reasoning_end(None, timestamp).await
            && self.end(None, timestamp).await
            && self.call_end(None, timestamp).await
        {
            self.event(AguiEvent::RunError {
                message,
                code,
                timestamp,
            })
            .await;
        }
    }

    /// `TOOL_CALL_RESULT` for a server call's end (its call closed first, if open).
    async fn result(&mut self, item: &Item, timestamp: i64) -> bool {
        let Some(call) = &item.call else { return true };
        if !self.call_end(Some(&item.id), timestamp).await {
            return false;
        }
        if call.executor == Executor::Client {
            return true;
        }
        self.event(AguiEvent::ToolCallResult {
            message_id: &item.id,
            tool_call_id: &call.call_id,
            content: result_content(item),
            role: "tool",
            timestamp,
        })
        .await
    }
}

/// What a call's end says: its output, or why it has none.
fn result_content(item: &Item) -> &str {
    if let Some(out) = item.call.as_ref().and_then(|c| c.output.as_deref()) {
        return out;
    }
    match item.status {
        ItemStatus::Denied => "The user denied this tool call.",
        ItemStatus::Cancelled => "This tool call was cancelled.",
        ItemStatus::Interrupted => "This tool call was interrupted.",
        _ => "",
    }
}

/// Which hub runs a request streams, and what they left waiting.
pub(super) struct Tracker {
    /// The hub runs of this request, in start order; removed as they end.
    pub(super) pending: Vec<String>,
    /// The run that continues the calls this request answered, until it is queued or starts.
    continuation: Option<Continuation>,
    /// Server calls this request decided on, until their `tool.result` is told.
    results_due: Vec<String>,
    /// Calls of these runs that awaited approval when called.
    gated: Vec<Approval>,
    pub(super) ending: Ending,
}

impl Tracker {
    /// The runs a request started and what its answers did; calls its answers left waiting
    /// are still waiting when the stream ends, unless a run says otherwise.
    pub(super) fn new(pending: Vec<String>, answers: Answers) -> Self {
        let mut ending = Ending::default();
        let (mut approvals, mut pending_calls) = (Vec::new(), Vec::new());
        for item in &answers.still_waiting {
            let Some(call) = &item.call else { continue };
            match item.status {
                ItemStatus::AwaitingApproval => approvals.push(Approval {
                    call_id: call.call_id.clone(),
                    name: call.name.clone(),
                }),
                _ => pending_calls.push(call.call_id.clone()),
            }
        }
        ending.waiting(pending_calls, approvals);
        Tracker {
            pending,
            continuation: answers.continuation,
            results_due: answers.results_due,
            gated: Vec::new(),
            ending,
        }
    }

    /// Whether more of this request's events are to come.
    pub(super) fn streaming(&self) -> bool {
        !self.pending.is_empty() || self.continuation.is_some() || !self.results_due.is_empty()
    }

    /// The continuation run, once the hub names it (queued, or started at once).
    fn adopt_continuation(&mut self, body: &EventBody) {
        let Some(c) = &self.continuation else { return };
        let run_id = match body {
            EventBody::RunQueued { run_id, reply_to } if *reply_to == c.reply_to => run_id,
            EventBody::RunStarted {
                run_id,
                continues: Some(after),
                ..
            } if *after == c.after_run => run_id,
            _ => return,
        };
        if !self.pending.contains(run_id) {
            self.pending.push(run_id.clone());
        }
        self.continuation = None;
    }

    /// Render one hub event; false when the client is gone.
    pub(super) async fn render(&mut self, ev: &Event, out: &mut Out) -> bool {
        let Some(run_id) = ev.body.run_id() else {
            return true;
        };
        self.adopt_continuation(&ev.body);
        let timestamp = ev.ts;
        if let EventBody::ToolResult { item, .. } = &ev.body {
            if let Some(call) = &item.call {
                self.ending.forget(&call.call_id);
                // A call this request approved or denied: its run is over, its result is news.
                if let Some(at) = self.results_due.iter().position(|c| *c == call.call_id) {
                    self.results_due.remove(at);
                    return out.result(item, timestamp).await;
                }
            }
        }
        if !self.pending.iter().any(|r| r == run_id) {
            return true;
        }
        if let Some(done) = out.reasoning(&ev.body, timestamp).await {
            return done;
        }
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
            EventBody::ToolCalled { item, .. } => return self.called(item, out, timestamp).await,
            EventBody::ToolResult { item, .. } => return out.result(item, timestamp).await,
            // Empty deltas carry nothing. Text after a tool call of the same turn reopens the
            // turn's message (the verifier needs an open message for content).
            EventBody::RunDelta { item_id, text, .. } if !text.is_empty() => {
                if out.open.as_deref() != Some(item_id.as_str())
                    && !(out.end(None, timestamp).await && out.start(item_id, timestamp).await)
                {
                    return false;
                }
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
                self.left_waiting(pending_tool_calls);
                Some(item.id.as_str())
            }
            EventBody::RunCancelled { item, .. } => {
                self.ending.cancelled = true;
                // A queued run has no item; `None` would close whatever message is open.
                Some(item.as_ref().map_or("", |i| i.id.as_str()))
            }
            EventBody::RunFailed { item, error, .. } => {
                self.ending
                    .failed
                    .get_or_insert_with(|| (error.code.clone(), error.message.clone()));
                Some(item.id.as_str())
            }
            _ => None,
        };
        let Some(item_id) = ended else { return true };
        self.pending.retain(|r| r != run_id);
        out.reasoning_end(None, timestamp).await
            && out.end(Some(item_id), timestamp).await
            && out.call_end(None, timestamp).await
    }

    /// `tool.called`: the call's arguments are complete. A call never announced by
    /// `tool.started` is opened whole; one awaiting approval is remembered for the interrupt.
    async fn called(&mut self, item: &Item, out: &mut Out, timestamp: i64) -> bool {
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
            self.gated.push(Approval {
                call_id: call.call_id.clone(),
                name: call.name.clone(),
            });
        }
        out.call_end(Some(&item.id), timestamp).await
    }

    /// A run completed with these calls waiting: approvals become interrupts, the rest are
    /// the client's calls.
    fn left_waiting(&mut self, waiting: &[String]) {
        let gated = |c: &String| self.gated.iter().find(|a| a.call_id == *c);
        let approvals = waiting.iter().filter_map(gated).cloned().collect();
        let pending_calls = waiting
            .iter()
            .filter(|c| gated(c).is_none())
            .cloned()
            .collect();
        self.ending.waiting(pending_calls, approvals);
    }
}
