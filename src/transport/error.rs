//! Where a [`HubError`] becomes HTTP: its status code and our JSON body
//! `{"error":{"code","message"}}` (PROTOCOL.md, REST). WebSocket and SSE error frames are
//! rendered by `wire::error_frame` from the same code and message.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::error::HubError;

/// The HTTP status of each stable code.
pub(crate) fn status(e: &HubError) -> StatusCode {
    match e {
        HubError::BadRequest(_) | HubError::UnknownType(_) => StatusCode::BAD_REQUEST,
        HubError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        HubError::NotFound(_) => StatusCode::NOT_FOUND,
        HubError::Forbidden(_) => StatusCode::FORBIDDEN,
        HubError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
        HubError::NotSubscribed
        | HubError::Busy
        | HubError::NoActiveRun
        | HubError::Conflict(_) => StatusCode::CONFLICT,
        HubError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
        HubError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        HubError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for HubError {
    fn into_response(self) -> Response {
        (status(&self), Json(self.body())).into_response()
    }
}
