//! Thin adapters, I/O only: each transport translates its wire format to `Hub` calls and
//! renders the session events back. Protocol rules live in the session actor.

mod agui;
mod assets;
mod chatkit;
pub(crate) mod error;
pub(crate) mod fuzz;
pub(crate) mod models;
pub mod openapi;
pub(crate) mod rest;
pub(crate) mod sse;
pub(crate) mod state;
pub mod wire;
pub(crate) mod ws;
mod ws_echo;
mod ws_frames;
mod ws_writer;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRef;
use axum::http::{header, HeaderValue, Method};
use axum::routing::{get, post};
use axum::{Extension, Router};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::auth::{AcceptTicket, Auth};
use crate::session::Hub;

/// Shutdown coordination shared by every connection.
#[derive(Clone, Default)]
pub struct Signals {
    /// Stop accepting new connections and requests; `/readyz` turns 503.
    pub stopping: CancellationToken,
    /// Close open connections (WebSocket 1012, SSE streams end), after the actors drained.
    pub close_conns: CancellationToken,
    /// Every upgraded connection, so shutdown can wait for them.
    pub tracker: TaskTracker,
}

/// What every handler gets.
#[derive(Clone)]
pub struct AppState {
    pub hub: Hub,
    pub signals: Signals,
    /// Identity, origin checks and limits: read by the `Principal` extractor.
    pub auth: Arc<Auth>,
}

impl FromRef<AppState> for Arc<Auth> {
    fn from_ref(s: &AppState) -> Self {
        s.auth.clone()
    }
}

/// The whole HTTP surface.
pub fn router(state: AppState) -> Router {
    let cfg = state.hub.config().clone();
    Router::new()
        .route(
            "/v1/ws",
            get(ws::upgrade).layer(Extension(AcceptTicket {
                origin_required: true,
            })),
        )
        .route("/v1/ws-ticket", post(crate::auth::ticket::mint))
        .route("/openapi.json", get(openapi::openapi_json))
        .merge(ws_echo::routes(&cfg))
        .merge(rest::routes())
        .merge(models::routes())
        .merge(agui::routes())
        .merge(chatkit::routes())
        .merge(sse::routes())
        .merge(state::routes())
        .with_state(state)
        .merge(assets::router(cfg.static_dir.as_deref()))
        .layer(axum::middleware::from_fn_with_state(
            cfg.body_timeout(),
            crate::auth::limits::body_deadline,
        ))
        .layer(cors(&cfg.cors_origins))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(
            cfg.max_body_bytes,
        ))
        .layer(axum::middleware::map_response(too_large_as_json))
}

/// A request body as bytes: one over the size limit is `too_large`, in our JSON, like every
/// other error.
pub(crate) fn body_bytes(
    body: Result<bytes::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<bytes::Bytes, crate::error::HubError> {
    use crate::error::HubError;
    body.map_err(|e| match e.status() {
        axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
            HubError::TooLarge("the request body is too large".into())
        }
        _ => HubError::BadRequest(format!("unreadable body: {e}")),
    })
}

/// The headers of a streamed `text/event-stream` response (ChatKit and AG-UI write the body
/// themselves): no caching, and no buffering by proxies such as nginx.
pub(crate) fn event_stream(
    content_type: &'static str,
    body: axum::body::Body,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::HeaderName::from_static("x-accel-buffering"), "no"),
        ],
        body,
    )
        .into_response()
}

/// tower-http answers an oversized body with a plain-text 413: give clients our JSON error.
async fn too_large_as_json(resp: axum::response::Response) -> axum::response::Response {
    let json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if resp.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE && !json {
        return axum::response::IntoResponse::into_response(crate::error::HubError::TooLarge(
            "the request body is too large".into(),
        ));
    }
    resp
}

/// CORS for cross-origin front ends: exact-match allowlist, never a wildcard.
fn cors(origins: &[String]) -> CorsLayer {
    let list: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(list))
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            header::HeaderName::from_static("chatkit-frame-instance-id"),
            header::HeaderName::from_static("last-event-id"),
        ])
        .expose_headers([
            header::HeaderName::from_static(sse::RESUME_HEADER),
            header::HeaderName::from_static(sse::EPOCH_HEADER),
            header::HeaderName::from_static(sse::HEAD_SEQ_HEADER),
        ])
        .max_age(Duration::from_secs(600))
}
