//! The hub's error type with stable protocol codes. Every room answers with it; how a code
//! becomes an HTTP status, a WebSocket error frame or an SSE reply is the transports' business
//! (`transport/error.rs`).

/// An error a client can see. `code()` is the stable string of PROTOCOL.md.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HubError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    UnknownType(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("not subscribed to this session")]
    NotSubscribed,
    #[error("a run is active")]
    Busy,
    #[error("no active run")]
    NoActiveRun,
    #[error("{0}")]
    RateLimited(String),
    #[error("{0}")]
    Unavailable(String),
    /// A shared-state change named a version that is no longer current (PROTOCOL 1.2).
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Internal(String),
}

impl HubError {
    pub fn code(&self) -> &'static str {
        match self {
            HubError::BadRequest(_) => "bad_request",
            HubError::UnknownType(_) => "unknown_type",
            HubError::TooLarge(_) => "too_large",
            HubError::NotFound(_) => "not_found",
            HubError::Forbidden(_) => "forbidden",
            HubError::Unauthorized(_) => "unauthorized",
            HubError::NotSubscribed => "not_subscribed",
            HubError::Busy => "busy",
            HubError::NoActiveRun => "no_active_run",
            HubError::RateLimited(_) => "rate_limited",
            HubError::Unavailable(_) => "unavailable",
            HubError::Conflict(_) => "conflict",
            HubError::Internal(_) => "internal",
        }
    }

    pub fn session_not_found() -> Self {
        HubError::NotFound("no such session".into())
    }

    /// The REST body: `{"error":{"code","message"}}`.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({"error": {"code": self.code(), "message": self.to_string()}})
    }
}
