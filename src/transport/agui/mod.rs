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
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;

use super::AppState;
use crate::auth::Principal;
use crate::error::HubError;
use crate::session::{Hub, Outbox, SendRequest, Subscriber};
use input::RunInput;
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
    let body = body.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => HubError::TooLarge("the request body is too large".into()),
        _ => HubError::BadRequest(format!("unreadable body: {e}")),
    })?;
    let input = input::parse(&body)?;
    let hub = &s.hub;
    let cfg = hub.config().clone();
    if let Some((id, _)) = input
        .user_messages
        .iter()
        .find(|(_, text)| text.chars().count() > cfg.max_text_chars)
    {
        return Err(HubError::TooLarge(format!(
            "message `{id}` is longer than {} characters",
            cfg.max_text_chars
        )));
    }
    if input.user_messages.is_empty() {
        return Err(HubError::BadRequest(
            "`messages` holds no user message to answer".into(),
        ));
    }
    let created = hub.open_session(&who, &input.thread_id).await?;
    // Subscribed before anything is sent, so no event of the new runs can be missed.
    let (outbox, rx) = Outbox::channel(cfg.outbound_frames, cfg.outbound_bytes);
    let conn_id = outbox.conn_id();
    let (pending, late_error) = match hub
        .subscribe(&who, &input.thread_id, Subscriber { outbox }, None, None)
        .await
    {
        Ok(()) => send_all(hub, &who, &input).await,
        Err(e) => (Vec::new(), Some(e)),
    };
    if pending.is_empty() {
        let _ = hub.unsubscribe(&who, &input.thread_id, conn_id).await;
        if created {
            // Nothing was stored in it: a refused first request leaves no empty thread behind.
            let _ = hub.delete_session(&who, &input.thread_id).await;
        }
        return match late_error {
            Some(HubError::Busy) => Ok(stream::refused(&HubError::Busy)),
            Some(e) => Err(e),
            None => Err(HubError::BadRequest(
                "every user message in `messages` was already answered: nothing new to run".into(),
            )),
        };
    }
    tracing::debug!(session_id = %input.thread_id, transport = "agui", runs = pending.len(), "agui run streaming");
    let run = RunStream {
        hub: hub.clone(),
        who,
        input,
        rx,
        conn_id,
        pending,
        late_error,
    };
    Ok(stream::respond(run, &s.signals, cfg.heartbeat()))
}

/// Send every user message in order; the hub answers the ones it already has as duplicates.
/// Returns the runs started, and the error that stopped the sending, if any.
async fn send_all(hub: &Hub, who: &Principal, input: &RunInput) -> (Vec<String>, Option<HubError>) {
    let mut runs = Vec::new();
    for (id, text) in &input.user_messages {
        let req = SendRequest {
            client_msg_id: id.clone(),
            text: text.clone(),
            on_busy: None,
            ack_to: None,
        };
        match hub.send(who, &input.thread_id, req).await {
            Ok(ack) if !ack.duplicate => runs.extend(ack.run_id),
            Ok(_) => {}
            Err(e) => return (runs, Some(e)),
        }
    }
    (runs, None)
}
