//! REST around the streaming transports: sessions, items, health, readiness and metrics.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::Value;

use super::openapi::{BodyRefused, ErrorBody, NewSession, Refused, SessionPatch};
use super::AppState;
use crate::auth::Principal;
use crate::error::HubError;
use crate::session::{ItemOrder, ItemsPage, ItemsQuery, SessionInfo};

/// `GET /v1/sessions`: a page of the caller's sessions, newest first.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct SessionList {
    sessions: Vec<SessionInfo>,
    /// More sessions follow: ask again with `before` = the last id.
    has_more: bool,
}

const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 200;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/sessions", get(list_sessions).post(create_session))
        .route(
            "/v1/sessions/{id}",
            get(get_session)
                .patch(update_session)
                .delete(delete_session),
        )
        .route("/v1/sessions/{id}/items", get(list_items))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

pub(crate) type Params = Result<Query<HashMap<String, String>>, QueryRejection>;

/// The query string as a map; a malformed one is `bad_request`.
pub(crate) fn params(q: Params) -> Result<HashMap<String, String>, HubError> {
    q.map(|Query(m)| m)
        .map_err(|e| HubError::BadRequest(format!("bad query string: {e}")))
}

/// `limit`: default 50, at most 200, at least 1.
pub(crate) fn parse_limit(p: &HashMap<String, String>) -> Result<usize, HubError> {
    match p.get("limit") {
        None => Ok(DEFAULT_LIMIT),
        Some(s) => match s.parse::<usize>() {
            Ok(n) if n >= 1 => Ok(n.min(MAX_LIMIT)),
            _ => Err(HubError::BadRequest(
                "`limit` must be an integer from 1 to 200".into(),
            )),
        },
    }
}

/// A JSON object body; an empty body is `{}`.
pub(crate) fn json_object(body: &Bytes) -> Result<serde_json::Map<String, Value>, HubError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Default::default());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(HubError::BadRequest(
            "the body must be a JSON object".into(),
        )),
        Err(e) => Err(HubError::BadRequest(format!("malformed JSON: {e}"))),
    }
}

fn opt_title(m: &serde_json::Map<String, Value>) -> Result<Option<Option<String>>, HubError> {
    match m.get("title") {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(s)) if s.chars().count() <= 200 => Ok(Some(Some(s.clone()))),
        Some(Value::String(_)) => Err(HubError::TooLarge(
            "`title` is longer than 200 characters".into(),
        )),
        Some(_) => Err(HubError::BadRequest(
            "`title` must be a string or null".into(),
        )),
    }
}

fn opt_metadata(m: &serde_json::Map<String, Value>) -> Result<Option<Value>, HubError> {
    match m.get("metadata") {
        None | Some(Value::Null) => Ok(None),
        Some(v @ Value::Object(_)) => Ok(Some(v.clone())),
        Some(_) => Err(HubError::BadRequest("`metadata` must be an object".into())),
    }
}

/// Creates a session owned by the caller.
#[utoipa::path(
    post, path = "/v1/sessions", tag = "sessions",
    request_body(content = Option<NewSession>, content_type = "application/json"),
    responses(
        (status = 201, description = "The new session", body = SessionInfo),
        (status = 400, description = "Malformed JSON or a field of the wrong type: `bad_request`", body = ErrorBody),
        BodyRefused, Refused,
    ),
)]
async fn create_session(
    State(s): State<AppState>,
    who: Principal,
    body: Bytes,
) -> Result<Response, HubError> {
    let m = json_object(&body)?;
    let title = opt_title(&m)?.flatten();
    let metadata = opt_metadata(&m)?;
    let info = s.hub.create_session(who.caller(), title, metadata).await?;
    Ok((StatusCode::CREATED, Json(info)).into_response())
}

/// The caller's sessions, newest first, paged.
#[utoipa::path(
    get, path = "/v1/sessions", tag = "sessions",
    params(
        ("limit" = Option<u32>, Query, description = "Page size, 1 to 200 (default 50)", minimum = 1, maximum = 200),
        ("before" = Option<String>, Query, description = "A session id: list the ones older than it"),
    ),
    responses(
        (status = 200, description = "A page of sessions", body = SessionList),
        (status = 400, description = "A bad `limit`: `bad_request`", body = ErrorBody),
        Refused,
    ),
)]
async fn list_sessions(
    State(s): State<AppState>,
    who: Principal,
    q: Params,
) -> Result<Json<SessionList>, HubError> {
    let p = params(q)?;
    let limit = parse_limit(&p)?;
    let (sessions, has_more) =
        s.hub
            .list_sessions(who.caller(), limit, p.get("before").map(String::as_str))?;
    Ok(Json(SessionList { sessions, has_more }))
}

/// One session.
#[utoipa::path(
    get, path = "/v1/sessions/{id}", tag = "sessions",
    params(("id" = String, Path, description = "A session id")),
    responses(
        (status = 200, description = "The session", body = SessionInfo),
        (status = 404, description = "No such session (or not the caller's): `not_found`", body = ErrorBody),
        Refused,
    ),
)]
async fn get_session(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Response, HubError> {
    Ok(Json(s.hub.get_session(who.caller(), &id).await?).into_response())
}

/// Renames a session or replaces its metadata; every subscriber sees `session.updated`.
#[utoipa::path(
    patch, path = "/v1/sessions/{id}", tag = "sessions",
    params(("id" = String, Path, description = "A session id")),
    request_body(content = SessionPatch, content_type = "application/json"),
    responses(
        (status = 200, description = "The session as changed", body = SessionInfo),
        (status = 400, description = "Malformed JSON or a field of the wrong type: `bad_request`", body = ErrorBody),
        (status = 404, description = "No such session: `not_found`", body = ErrorBody),
        BodyRefused, Refused,
    ),
)]
async fn update_session(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, HubError> {
    let m = json_object(&body)?;
    let title = opt_title(&m)?;
    let metadata = opt_metadata(&m)?;
    Ok(Json(
        s.hub
            .update_session(who.caller(), &id, title, metadata)
            .await?,
    )
    .into_response())
}

/// Deletes a session and its history; every subscriber sees `session.deleted`.
#[utoipa::path(
    delete, path = "/v1/sessions/{id}", tag = "sessions",
    params(("id" = String, Path, description = "A session id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such session: `not_found`", body = ErrorBody),
        Refused,
    ),
)]
async fn delete_session(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, HubError> {
    s.hub.delete_session(who.caller(), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A session's items (messages and replies), paged by item id.
#[utoipa::path(
    get, path = "/v1/sessions/{id}/items", tag = "sessions",
    params(
        ("id" = String, Path, description = "A session id"),
        ("limit" = Option<u32>, Query, description = "Page size, 1 to 200 (default 50)", minimum = 1, maximum = 200),
        ("before" = Option<String>, Query, description = "An item id: items older than it"),
        ("after" = Option<String>, Query, description = "An item id: items newer than it"),
        ("order" = Option<String>, Query, description = "`asc` (default) or `desc`"),
    ),
    responses(
        (status = 200, description = "A page of items", body = ItemsPage),
        (status = 400, description = "A bad `limit` or `order`: `bad_request`", body = ErrorBody),
        (status = 404, description = "No such session: `not_found`", body = ErrorBody),
        Refused,
    ),
)]
async fn list_items(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    q: Params,
) -> Result<Response, HubError> {
    let p = params(q)?;
    let order = match p.get("order").map(String::as_str) {
        None | Some("asc") => ItemOrder::Asc,
        Some("desc") => ItemOrder::Desc,
        Some(_) => return Err(HubError::BadRequest("`order` must be asc or desc".into())),
    };
    let query = ItemsQuery {
        limit: parse_limit(&p)?,
        before: p.get("before").cloned(),
        after: p.get("after").cloned(),
        order,
    };
    Ok(Json(s.hub.list_items(who.caller(), &id, query).await?).into_response())
}

/// Readiness: 503 from the moment shutdown starts, so a load balancer stops sending.
#[utoipa::path(
    get, path = "/readyz", tag = "operations", security(()),
    responses(
        (status = 200, description = "Serving", body = String, content_type = "text/plain", example = "ready"),
        (status = 503, description = "Shutting down", body = String, content_type = "text/plain", example = "shutting down"),
    ),
)]
async fn readyz(State(s): State<AppState>) -> Response {
    if s.signals.stopping.is_cancelled() {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response()
    } else {
        "ready".into_response()
    }
}

/// Prometheus metrics (OpenMetrics text).
#[utoipa::path(
    get, path = "/metrics", tag = "operations", security(()),
    responses((status = 200, description = "Every metric the hub exports", body = String,
        content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8")),
)]
async fn metrics(State(s): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.hub.metrics().render(),
    )
        .into_response()
}

/// Liveness: the process answers HTTP.
#[utoipa::path(
    get, path = "/healthz", tag = "operations", security(()),
    responses((status = 200, description = "Alive", body = String, content_type = "text/plain", example = "ok")),
)]
pub(crate) async fn healthz() -> &'static str {
    "ok"
}
