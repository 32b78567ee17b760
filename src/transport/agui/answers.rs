//! Answers to the tool calls a thread waits for: a request's `role: "tool"` messages (client
//! tools' results) and `resume` entries (approvals). Every answer is checked against the
//! session before anything changes, so a bad one refuses the whole request; then they are
//! applied in order, through the same resolution the native `tool_result` and
//! `tool_approval` use.
//!
//! An AG-UI client sends its whole history every time, so an answer to a call that is no
//! longer waiting (answered by an earlier request, or from a native tab) is history: left
//! alone, as a user message the hub already has is.

use super::input::RunInput;
use crate::domain::{Item, ItemStatus};
use crate::error::HubError;
use crate::session::{Caller, Hub, Outbound, OutboxReceiver, ToolResolution};

/// The run a request's answers let continue: the hub starts a continuation run once the last
/// waiting call is resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Continuation {
    /// The run that ended with the calls waiting (`run.started.continues` names it).
    pub(super) after_run: String,
    /// The user message it answers (`run.queued.reply_to` when the continuation must wait).
    pub(super) reply_to: String,
}

/// What a request's answers will do, decided before anything changes.
#[derive(Debug, Default)]
pub(super) struct Answers {
    /// The resolutions, in the order the request gave them.
    resolve: Vec<(String, ToolResolution)>,
    /// Server calls this request approves or denies: their `tool.result` is streamed as
    /// `TOOL_CALL_RESULT` although their run is over.
    pub(super) results_due: Vec<String>,
    /// The run that continues, when the request answers every waiting call.
    pub(super) continuation: Option<Continuation>,
    /// Calls that still wait after these answers (the request answered only some).
    pub(super) still_waiting: Vec<Item>,
}

impl Answers {
    /// Whether the request resolves any call.
    pub(super) fn any(&self) -> bool {
        !self.resolve.is_empty()
    }
}

fn bad(message: String) -> HubError {
    HubError::BadRequest(message)
}

/// The calls the thread waits for, from the snapshot that opens a fresh subscription.
async fn waiting_calls(rx: &mut OutboxReceiver) -> Result<Vec<Item>, HubError> {
    loop {
        match rx.recv().await {
            Some(Outbound::Snapshot(snap)) => return Ok(snap.pending_tool_calls.clone()),
            Some(_) => continue,
            None => return Err(HubError::Unavailable("the session went away".into())),
        }
    }
}

/// Decide what the request's answers do. `rx` is a fresh subscription's: its snapshot says
/// which calls wait. An answer naming a call the thread never had, or answering a call the
/// wrong way (a tool message for an approval, `resume` for a client's call), refuses the
/// request.
pub(super) async fn plan(
    hub: &Hub,
    caller: &Caller,
    input: &RunInput,
    rx: &mut OutboxReceiver,
) -> Result<Answers, HubError> {
    let mut answers = Answers::default();
    if !input.answers_calls() {
        return Ok(answers);
    }
    let waiting = waiting_calls(rx).await?;
    let status = |call_id: &str| {
        waiting
            .iter()
            .find(|i| i.call.as_ref().is_some_and(|c| c.call_id == call_id))
            .map(|i| i.status)
    };
    // A call not waiting: history when the thread had it, an error when it never did.
    let history =
        |call_id: &str, at: String| match hub.has_tool_call(caller, &input.thread_id, call_id)? {
            true => Ok(()),
            false => Err(bad(format!(
                "`{at}` names no tool call of this thread: `{call_id}`"
            ))),
        };
    for t in &input.tool_results {
        let at = format!("messages[{}].toolCallId", t.index);
        match status(&t.call_id) {
            Some(ItemStatus::Pending) => answers.resolve.push((
                t.call_id.clone(),
                ToolResolution::Result {
                    output: t.output.clone(),
                    is_error: t.is_error,
                },
            )),
            Some(_) => {
                return Err(bad(format!(
                    "`{at}`: tool call `{}` waits for an approval, answered by a `resume` entry",
                    t.call_id
                )))
            }
            None => history(&t.call_id, at)?,
        }
    }
    for r in &input.resume {
        let at = format!("resume[{}].interruptId", r.index);
        match status(&r.interrupt_id) {
            Some(ItemStatus::AwaitingApproval) => {
                answers.resolve.push((
                    r.interrupt_id.clone(),
                    ToolResolution::Approval {
                        approved: r.approved,
                        arguments: r.arguments.clone(),
                    },
                ));
                answers.results_due.push(r.interrupt_id.clone());
            }
            Some(_) => {
                return Err(bad(format!(
                    "`{at}`: tool call `{}` waits for the client's result, answered by a `role: \"tool\"` message",
                    r.interrupt_id
                )))
            }
            None => history(&r.interrupt_id, at)?,
        }
    }
    let answered = |i: &Item| {
        let id = i.call.as_ref().map(|c| c.call_id.as_str());
        answers.resolve.iter().any(|(c, _)| Some(c.as_str()) == id)
    };
    answers.still_waiting = waiting.iter().filter(|i| !answered(i)).cloned().collect();
    if answers.any() && answers.still_waiting.is_empty() {
        answers.continuation = waiting.first().and_then(|i| {
            Some(Continuation {
                after_run: i.run_id.clone()?,
                reply_to: i.reply_to.clone()?,
            })
        });
    }
    Ok(answers)
}

/// Resolve the calls, in order. Each resolution is durable when it returns; an approval's
/// returns once the approved call has run.
pub(super) async fn apply(
    hub: &Hub,
    caller: &Caller,
    thread_id: &str,
    answers: &Answers,
) -> Result<(), HubError> {
    for (call_id, how) in &answers.resolve {
        hub.resolve_tool(caller, thread_id, call_id, how.clone())
            .await?;
    }
    Ok(())
}
