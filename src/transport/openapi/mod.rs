//! The OpenAPI 3.1 description of every HTTP route, generated from the handlers'
//! `#[utoipa::path]` attributes and served at `GET /openapi.json`. Types the hub serialises
//! derive their schema where they are defined; `schemas` describes the JSON that handlers
//! parse or build by hand.
//!
//! `tests/openapi.rs` keeps this true: the document passes `openapi-spec-validator`, and its
//! paths and methods are exactly the ones the router serves.

use std::sync::OnceLock;

use axum::body::Bytes;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

mod schemas;

pub(crate) use schemas::*;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "sessionhub",
        description = "WebSocket-first real-time session hub for AI agent chat. The WebSocket \
            protocol itself (frames on `/v1/ws`) and the events of the SSE streams are described in \
            PROTOCOL.md; this document covers the HTTP surface. With authentication on, every route \
            but the operational ones needs `Authorization: Bearer <token>`; in anonymous \
            development mode none does."
    ),
    paths(
        super::ws::upgrade,
        crate::auth::ticket::mint,
        super::rest::list_sessions,
        super::rest::create_session,
        super::rest::get_session,
        super::rest::update_session,
        super::rest::delete_session,
        super::rest::list_items,
        super::models::list_models,
        super::sse::events,
        super::sse::send,
        super::sse::cancel,
        super::sse::tool_result,
        super::sse::tool_approval,
        super::state::get_state,
        super::state::set_state,
        super::chatkit::chatkit,
        super::agui::agui,
        super::rest::healthz,
        super::rest::readyz,
        super::rest::metrics,
        openapi_json,
    ),
    modifiers(&BearerAuth),
    security((), ("bearer" = [])),
    tags(
        (name = "websocket", description = "The native protocol: one WebSocket, many sessions"),
        (name = "sessions", description = "Sessions and their items over REST"),
        (name = "sse", description = "The native SSE fallback: one event stream per session, commands as POSTs"),
        (name = "chatkit", description = "The hub as an OpenAI ChatKit custom backend"),
        (name = "agui", description = "The hub as an AG-UI agent (CopilotKit, `@ag-ui/client`)"),
        (name = "auth", description = "Tickets for the WebSocket upgrade"),
        (name = "operations", description = "Health, readiness, metrics and this document"),
    )
)]
pub struct ApiDoc;

/// The `bearer` security scheme the document's `security` lists name.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.bearer_format = Some("JWT".into());
        scheme.description = Some(
            "A JWT from the configured identity provider (`--auth-*`); absent in anonymous mode."
                .into(),
        );
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

/// The document as JSON, rendered once.
pub fn document() -> Bytes {
    static JSON: OnceLock<Bytes> = OnceLock::new();
    JSON.get_or_init(|| {
        let json = ApiDoc::openapi()
            .to_pretty_json()
            .expect("the OpenAPI document serialises");
        Bytes::from(json)
    })
    .clone()
}

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    security(()),
    responses((status = 200, description = "The OpenAPI 3.1 description of the HTTP routes",
        content_type = "application/json", body = Object)),
)]
pub(crate) async fn openapi_json() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], document()).into_response()
}
