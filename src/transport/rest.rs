//! REST around the streaming transports: sessions, items, health, readiness and metrics.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::AppState;
use crate::auth::Principal;
use crate::error::HubError;
use crate::session::{ItemOrder, ItemsQuery};

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
        .route("/healthz", get(|| async { "ok" }))
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

async fn list_sessions(
    State(s): State<AppState>,
    who: Principal,
    q: Params,
) -> Result<Json<Value>, HubError> {
    let p = params(q)?;
    let limit = parse_limit(&p)?;
    let (sessions, has_more) =
        s.hub
            .list_sessions(who.caller(), limit, p.get("before").map(String::as_str))?;
    Ok(Json(json!({"sessions": sessions, "has_more": has_more})))
}

async fn get_session(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Response, HubError> {
    Ok(Json(s.hub.get_session(who.caller(), &id).await?).into_response())
}

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

async fn delete_session(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, HubError> {
    s.hub.delete_session(who.caller(), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

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

async fn readyz(State(s): State<AppState>) -> Response {
    if s.signals.stopping.is_cancelled() {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response()
    } else {
        "ready".into_response()
    }
}

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
