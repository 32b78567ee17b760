//! `GET /v1/models` (PROTOCOL 1.2, "Model choice"): the model ids a message may pick, and the
//! default.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};

use super::AppState;
use crate::auth::Principal;

/// One model a message may pick.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct ModelInfo {
    /// What `send.model`, ChatKit's `inference_options.model` and AG-UI's
    /// `forwardedProps.model` name.
    id: String,
}

/// `GET /v1/models`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct ModelsList {
    /// In a stable order.
    models: Vec<ModelInfo>,
    /// The id a message that picks none runs with.
    default: String,
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/v1/models", get(list_models))
}

/// The models a message may pick (`scripted` alone with the built-in agent; the models file's
/// ids with `--models`; the one `--model` otherwise).
#[utoipa::path(
    get, path = "/v1/models", tag = "sessions", operation_id = "list_models",
    responses(
        (status = 200, description = "The model ids and the default", body = ModelsList),
        crate::transport::openapi::Refused,
    ),
)]
pub(crate) async fn list_models(State(s): State<AppState>, _who: Principal) -> Json<ModelsList> {
    let list = s.hub.models();
    Json(ModelsList {
        models: list.ids.into_iter().map(|id| ModelInfo { id }).collect(),
        default: list.default,
    })
}
