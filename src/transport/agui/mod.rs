//! `POST /agui`: the hub as an AG-UI agent, for CopilotKit and every `HttpAgent` client.
//!
//! The request's `threadId` is a hub session (created on first use) and the hub's stored
//! history is the source of truth: each user message of `messages` is sent with its AG-UI id
//! as `client_msg_id`, so messages the hub already has are acknowledged as duplicates and only
//! new ones are stored and answered. The reply streams as AG-UI events (see `stream`), and the
//! same runs reach WebSocket tabs and listings, because they are ordinary hub runs.
//! Everything that can be refused is checked before the SSE headers go out: bad input is a 400
//! JSON error, a busy thread (policy `reject`) a stream of one `RUN_ERROR` with code `busy`.

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
use crate::error::HubError;
use crate::session::{Caller, Hub, Outbox, SendRequest};
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
        .map(|(id, text)| SendRequest::new(id.as_str(), text.as_str(), None, cfg.max_text_chars))
        .collect::<Result<Vec<_>, _>>()?;
    if requests.is_empty() {
        return Err(HubError::BadRequest(
            "`messages` holds no user message to answer".into(),
        ));
    }
    let created = hub.open_session(&caller, &input.thread_id).await?;
    // Subscribed before anything is sent, so no event of the new runs can be missed.
    let (outbox, rx) = Outbox::channel(cfg.outbound_frames, cfg.outbound_bytes);
    let (sub, pending, late_error) = match hub
        .subscribe(&caller, &input.thread_id, outbox, None, None)
        .await
    {
        Ok(sub) => {
            let (pending, late_error) = send_all(hub, &caller, &input.thread_id, requests).await;
            (Some(sub), pending, late_error)
        }
        Err(e) => (None, Vec::new(), Some(e)),
    };
    let sub = match sub {
        Some(sub) if !pending.is_empty() => sub,
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
