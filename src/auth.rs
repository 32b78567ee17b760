//! Identity of the caller. Every `Hub` method takes a `Principal`; sessions belong to the
//! principal that created them and are invisible (`not_found`) to everyone else.

/// An authenticated caller (the JWT `sub`), or the development-only anonymous user.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Principal {
    pub sub: String,
}

impl Principal {
    pub const ANONYMOUS: &'static str = "anonymous";

    /// The user of anonymous (development) mode.
    pub fn anonymous() -> Self {
        Principal { sub: Self::ANONYMOUS.to_owned() }
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Principal {
    type Rejection = crate::error::HubError;

    async fn from_request_parts(_parts: &mut axum::http::request::Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Principal::anonymous())
    }
}
