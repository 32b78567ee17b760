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
//! Tools (PROTOCOL 1.1): `tools` go with each sent message as its run's client tools, and
//! tool items stream as `TOOL_CALL_*` events. A run that ends with calls waiting ends the
//! stream: client calls are named in `pendingToolCallIds` (1.0 clients), calls awaiting
//! approval are interrupts. A following request's `role: "tool"` messages and `resume`
//! entries answer them (`answers`), and that request streams the run that continues.

mod answers;
mod ending;
mod events;
mod input;
mod reasoning;
mod render;
mod state;
mod stream;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;

use super::{body_bytes, AppState};
use crate::auth::Principal;
use crate::error::HubError;
use crate::session::{context, Caller, Hub, Outbox, SendRequest};
use render::Tracker;
use stream::RunStream;

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/agui", post(agui))
}

/// The `RunAgentInput` decoder alone, for the fuzz targets (`crate::fuzzing`): a description of
/// what the hub takes from the body (messages, tools, tool results, resume), or of why it is
/// refused.
pub(crate) fn decode(body: &[u8]) -> String {
    match input::parse(body) {
        Ok(run) => format!("{run:?}"),
        Err(e) => format!("{}: {e}", e.code()),
    }
}

#[utoipa::path(
    post, path = "/agui", tag = "agui", operation_id = "agui_run",
    request_body(content = crate::transport::openapi::RunAgentInput, content_type = "application/json"),
    responses(
        (status = 200, description = "AG-UI events (`RUN_STARTED`, `TEXT_MESSAGE_*`, `TOOL_CALL_*`, `RUN_FINISHED` or `RUN_ERROR`)", body = String, content_type = "text/event-stream"),
        (status = 400, description = "Not a valid `RunAgentInput`, bad `tools`, a tool message or `resume` entry naming no call of the thread, or nothing to answer: `bad_request`", body = crate::transport::openapi::ErrorBody),
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
    let requests = requests(hub, &input, cfg.max_text_chars)?;
    if requests.is_empty() && !input.answers_calls() {
        return Err(HubError::BadRequest(
            "`messages` holds no user message to answer".into(),
        ));
    }
    let thread = input.thread_id.as_str();
    let created = hub.open_session(&caller, thread).await?;
    // Subscribed before anything is sent, so no event of the new runs can be missed.
    let (outbox, mut rx) = Outbox::channel(cfg.outbound_frames, cfg.outbound_bytes);
    let sub = match hub.subscribe(&caller, thread, outbox, None, None).await {
        Ok(sub) => sub,
        Err(e) => return refuse(hub, &caller, thread, created, Some(e)).await,
    };
    // Answers first: a new user message would cancel the calls they answer.
    let answers = match answers::plan(hub, &caller, &input, &mut rx).await {
        Ok(answers) => answers,
        Err(e) => return refuse(hub, &caller, thread, created, Some(e)).await,
    };
    // The client's state is adopted before the messages run, so their model sees it (and is
    // offered `state__patch`); the stream opens with the document as of then.
    let state = match state::adopt(hub, &caller, thread, &input).await {
        Ok(state) => state,
        Err(e) => return refuse(hub, &caller, thread, created, Some(e)).await,
    };
    answers::apply(hub, &caller, thread, &answers).await?;
    let (pending, late_error) = send_all(hub, &caller, thread, requests).await;
    if pending.is_empty() && !answers.any() {
        return refuse(hub, &caller, thread, created, late_error).await;
    }
    tracing::debug!(session_id = %thread, transport = "agui", runs = pending.len(), answers = answers.any(), "agui run streaming");
    let run = RunStream {
        hub: hub.clone(),
        caller,
        rx,
        _sub: sub,
        track: Tracker::new(pending, answers),
        late_error,
        input,
        state,
    };
    Ok(stream::respond(run, &s.signals, cfg.heartbeat()))
}

/// Each user message as a send, with its AG-UI id as `client_msg_id` and the request's `tools`
/// as its client tools, all checked before anything is stored. The tools are checked even
/// when no message is new, so bad tools get the same clear error on every request.
fn requests(
    hub: &Hub,
    input: &input::RunInput,
    max_text_chars: usize,
) -> Result<Vec<SendRequest>, HubError> {
    hub.check_client_tools(&input.tools)?;
    // PROTOCOL 1.2: an unknown model is refused before anything is created or stored.
    hub.pick_model(input.model.as_deref())?;
    if input.user_messages.is_empty() {
        // The session's rules, on a message that is never sent.
        SendRequest::new(input.run_id.as_str(), "", None, max_text_chars)?
            .with_tools(input.tools.clone())?;
    }
    input
        .user_messages
        .iter()
        .map(|(id, text)| {
            SendRequest::new(id.as_str(), text.as_str(), None, max_text_chars)?
                .with_tools(input.tools.clone())?
                .with_model(input.model.clone())
                .with_context_source(context::AGUI_CONTEXT, input.context.clone().into())?
                .with_context_source(
                    context::FORWARDED_PROPS,
                    input.forwarded_props.clone().into(),
                )
        })
        .collect()
}

/// Nothing to stream: the request is refused. A thread created by it is deleted again
/// (nothing was stored in it); a busy thread gets a stream of one `RUN_ERROR`.
async fn refuse(
    hub: &Hub,
    caller: &Caller,
    thread: &str,
    created: bool,
    error: Option<HubError>,
) -> Result<Response, HubError> {
    if created {
        let _ = hub.delete_session(caller, thread).await;
    }
    match error {
        Some(HubError::Busy) => Ok(stream::refused(&HubError::Busy)),
        Some(e) => Err(e),
        None => Err(HubError::BadRequest(
            "every user message in `messages` was already answered: nothing new to run".into(),
        )),
    }
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
