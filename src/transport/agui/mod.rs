//! `POST /agui`: the hub as an AG-UI agent, for CopilotKit and every `HttpAgent` client.
//!
//! The request's `threadId` is a hub session (created on first use) and the hub's stored
//! history is the source of truth: each user message of `messages` is sent with its AG-UI id
//! as `client_msg_id`, so messages the hub already has are acknowledged as duplicates and only
//! new ones are stored and answered. The reply streams as AG-UI events (see `stream`), and the
//! same runs reach WebSocket tabs and listings, because they are ordinary hub runs.
//! Everything that can be refused is checked before the SSE headers go out: bad input is a 400
//! JSON error, a busy thread (policy `reject`) a stream of one `RUN_ERROR` with code `busy`.
//!
//! Tools: `tools` go with the sent message as the run's client tools. A run that ends with
//! calls waiting ends its stream; a following request's `role: "tool"` messages for calls
//! still pending (and its `resume` entries, for calls awaiting approval) resolve them, and
//! that request streams the run that continues.

mod events;
mod input;
mod stream;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;

use super::{body_bytes, AppState};
use crate::auth::Principal;
use crate::domain::ItemStatus;
use crate::error::HubError;
use crate::session::{Caller, Hub, Outbound, Outbox, OutboxReceiver, SendRequest, ToolResolution};
use stream::RunStream;

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/agui", post(agui))
}

#[utoipa::path(
    post, path = "/agui", tag = "agui", operation_id = "agui_run",
    request_body(content = crate::transport::openapi::RunAgentInput, content_type = "application/json"),
    responses(
        (status = 200, description = "AG-UI events (`RUN_STARTED`, `TEXT_MESSAGE_*`, `RUN_FINISHED` or `RUN_ERROR`)", body = String, content_type = "text/event-stream"),
        (status = 400, description = "Not a valid `RunAgentInput`, or no user message to answer: `bad_request`", body = crate::transport::openapi::ErrorBody),
        (status = 404, description = "The thread belongs to another user: `not_found`", body = crate::transport::openapi::ErrorBody),
        crate::transport::openapi::BodyRefused, crate::transport::openapi::Refused,
    ),
)]
async fn agui(
    State(s): State<AppState>,
    who: Principal,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match start(&s, who, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn start(
    s: &AppState,
    who: Principal,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, HubError> {
    let input = input::parse(&body_bytes(body)?)?;
    let hub = &s.hub;
    let cfg = hub.config().clone();
    let caller = who.caller().clone();
    // Each user message is sent with its AG-UI id as `client_msg_id`; all are checked before
    // anything is stored.
    let requests = input
        .user_messages
        .iter()
        .map(|(id, text)| {
            SendRequest::new(id.as_str(), text.as_str(), None, cfg.max_text_chars)?
                .with_tools(input.tools.clone())
        })
        .collect::<Result<Vec<_>, _>>()?;
    let answers = !input.tool_results.is_empty() || !input.resume.is_empty();
    if requests.is_empty() && !answers {
        return Err(HubError::BadRequest(
            "`messages` holds no user message to answer".into(),
        ));
    }
    let created = hub.open_session(&caller, &input.thread_id).await?;
    // Subscribed before anything is sent, so no event of the new runs can be missed.
    let (outbox, mut rx) = Outbox::channel(cfg.outbound_frames, cfg.outbound_bytes);
    let (sub, pending, late_error, resolved) = match hub
        .subscribe(&caller, &input.thread_id, outbox, None, None)
        .await
    {
        Ok(sub) => {
            let resolved = match answer_calls(hub, &caller, &input, &mut rx).await {
                Ok(resolved) => resolved,
                Err(e) => return Err(e),
            };
            let (pending, late_error) = send_all(hub, &caller, &input.thread_id, requests).await;
            (Some(sub), pending, late_error, resolved)
        }
        Err(e) => (None, Vec::new(), Some(e), Resolved::None),
    };
    let sub = match sub {
        Some(sub) if !pending.is_empty() || resolved != Resolved::None => sub,
        _ => {
            if created {
                // Nothing was stored in it: a refused first request leaves no empty thread.
                let _ = hub.delete_session(&caller, &input.thread_id).await;
            }
            return match late_error {
                Some(HubError::Busy) => Ok(stream::refused(&HubError::Busy)),
                Some(e) => Err(e),
                None => Err(HubError::BadRequest(
                    "every user message in `messages` was already answered: nothing new to run"
                        .into(),
                )),
            };
        }
    };
    tracing::debug!(session_id = %input.thread_id, transport = "agui", runs = pending.len(), "agui run streaming");
    let run = RunStream {
        hub: hub.clone(),
        caller,
        input,
        rx,
        _sub: sub,
        pending,
        awaiting_continuation: resolved == Resolved::All,
        late_error,
    };
    Ok(stream::respond(run, &s.signals, cfg.heartbeat()))
}

/// Send every user message in order; the hub answers the ones it already has as duplicates.
/// Returns the runs started, and the error that stopped the sending, if any.
async fn send_all(
    hub: &Hub,
    caller: &Caller,
    thread_id: &str,
    requests: Vec<SendRequest>,
) -> (Vec<String>, Option<HubError>) {
    let mut runs = Vec::new();
    for req in requests {
        match hub.send(caller, thread_id, req).await {
            Ok(ack) if !ack.duplicate => runs.extend(ack.run_id),
            Ok(_) => {}
            Err(e) => return (runs, Some(e)),
        }
    }
    (runs, None)
}

/// What a request's answers did to the calls the thread waited for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resolved {
    /// It answered none of them (or the thread waited for none).
    None,
    /// It answered some; the others still wait, so no run continues yet.
    Some,
    /// It answered every waiting call: a run continues.
    All,
}

/// Resolve the calls the thread waits for with the request's `role: "tool"` messages (client
/// calls) and `resume` entries (approvals). Tool messages for calls already resolved are
/// history: left alone. The waiting calls are read from the subscription's snapshot.
async fn answer_calls(
    hub: &Hub,
    caller: &Caller,
    input: &input::RunInput,
    rx: &mut OutboxReceiver,
) -> Result<Resolved, HubError> {
    if input.tool_results.is_empty() && input.resume.is_empty() {
        return Ok(Resolved::None);
    }
    let waiting = loop {
        match rx.recv().await {
            Some(Outbound::Snapshot(snap)) => break snap.pending_tool_calls.clone(),
            Some(_) => continue,
            None => return Err(HubError::Unavailable("the session went away".into())),
        }
    };
    let mut answered = 0;
    for item in &waiting {
        let Some(call) = &item.call else { continue };
        let how = match item.status {
            ItemStatus::Pending => input
                .tool_results
                .iter()
                .find(|(id, _)| id == &call.call_id)
                .map(|(_, output)| ToolResolution::Result {
                    output: output.clone(),
                    is_error: false,
                }),
            ItemStatus::AwaitingApproval => input
                .resume
                .iter()
                .find(|r| r.interrupt_id == call.call_id)
                .map(|r| ToolResolution::Approval {
                    approved: r.approved,
                    arguments: r.arguments.clone(),
                }),
            _ => None,
        };
        let Some(how) = how else { continue };
        // An approval's ack comes once the approved call has run; a denial's at once.
        hub.resolve_tool(caller, &input.thread_id, &call.call_id, how)
            .await?;
        answered += 1;
    }
    Ok(match answered {
        0 => Resolved::None,
        n if n == waiting.len() => Resolved::All,
        _ => Resolved::Some,
    })
}
