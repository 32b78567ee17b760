//! Shared state over the native transports (PROTOCOL 1.2): the `state_set` / `state_patch`
//! frame fields (shared by the WebSocket and the REST route), and the SSE fallback's
//! `GET` / `POST /v1/sessions/{id}/state`.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use super::{body_bytes, rest, wire, AppState};
use crate::auth::Principal;
use crate::error::HubError;
use crate::session::StateChange;

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/v1/sessions/{id}/state", get(get_state).post(set_state))
}

/// The change and base version of a `state_set` (`state`, `version`) or `state_patch`
/// (`patch`, `version`) frame or body. `version` is the version the change replaces (0 for a
/// session without state). Only the JSON shapes are checked here; the document's rules
/// (an object, the size limit, the patch applying) are the session's.
pub(crate) fn change(
    obj: &Map<String, Value>,
    patch: bool,
) -> Result<(StateChange, u64), HubError> {
    let version = match obj.get("version") {
        Some(v) => v.as_u64().ok_or_else(|| {
            HubError::BadRequest("`version` must be a non-negative integer".into())
        })?,
        None => return Err(HubError::BadRequest("missing `version`".into())),
    };
    let change = if patch {
        match obj.get("patch") {
            Some(p @ Value::Array(_)) => StateChange::Patch(p.clone()),
            Some(_) => {
                return Err(HubError::BadRequest(
                    "`patch` must be an array of RFC 6902 operations".into(),
                ))
            }
            None => return Err(HubError::BadRequest("missing `patch`".into())),
        }
    } else {
        match obj.get("state") {
            Some(s) => StateChange::Replace(s.clone()),
            None => return Err(HubError::BadRequest("missing `state`".into())),
        }
    };
    Ok((change, version))
}

/// `GET /v1/sessions/{id}/state` -> `{"state","version"}` (`state` null before any).
#[utoipa::path(
    get, path = "/v1/sessions/{id}/state", tag = "sse", operation_id = "get_state",
    params(("id" = String, Path, description = "A session id")),
    responses((status = 200, description = "The shared state document and its version",
        body = crate::transport::openapi::StateDocument), crate::transport::openapi::CommandErrors, crate::transport::openapi::Refused),
)]
async fn get_state(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Response, HubError> {
    let (doc, version) = state.hub.get_state(who.caller(), &id).await?;
    Ok(Json(json!({"state": doc, "version": version})).into_response())
}

/// `POST /v1/sessions/{id}/state` `{"state","version"}` or `{"patch","version"}` -> the `ack`.
#[utoipa::path(
    post, path = "/v1/sessions/{id}/state", tag = "sse", operation_id = "set_state",
    params(("id" = String, Path, description = "A session id")),
    request_body(content = crate::transport::openapi::StateChangeBody, content_type = "application/json"),
    responses((status = 200, description = "Changed durably; `state.snapshot` or `state.delta` follows on every stream of the session",
        body = crate::transport::openapi::StateAckReply), crate::transport::openapi::CommandErrors, crate::transport::openapi::BodyRefused, crate::transport::openapi::Refused),
)]
async fn set_state(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, HubError> {
    let m = rest::json_object(&body_bytes(body)?)?;
    let patch = match (m.contains_key("state"), m.contains_key("patch")) {
        (true, true) => {
            return Err(HubError::BadRequest(
                "give either `state` or `patch`, not both".into(),
            ))
        }
        (_, patch) => patch,
    };
    let (change, version) = change(&m, patch)?;
    let ack = state
        .hub
        .set_state(who.caller(), &id, change, Some(version))
        .await?
        .ok_or_else(|| HubError::Internal("a versioned change always acknowledges".into()))?;
    Ok(Json(wire::state_ack_value(&ack, &None)).into_response())
}
