//! Identity of the caller, in one place. Every handler takes a [`Principal`] through its axum
//! extractor, which checks the Origin, the credentials (a bearer token, or a single-use ticket
//! on the routes that accept one) and the per-client request rate; every `Hub` method takes that
//! `Principal`, and sessions belong to the `sub` that created them (someone else's session is
//! `not_found`). A new transport gets all of this by taking a `Principal`.
//!
//! Anonymous mode (no key configured) is for development: every caller is the one anonymous
//! user, no per-user limits apply, and start-up refuses it on a non-loopback address unless
//! `--allow-anonymous` is given.
//!
//! Origin rules: a request that carries an `Origin` header must name an allowed origin (403
//! otherwise), whatever its credentials. A request without one (a non-browser client, or a
//! same-origin GET) is served when it has credentials; a ticket on a WebSocket upgrade needs an
//! Origin, because browsers always send one there and tickets exist only for browsers.

pub mod jwt;
pub mod limits;
pub mod origin;
pub mod ticket;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::bail;
use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};

use crate::config::Config;
use crate::error::HubError;
use crate::session::{Caller, Quota};
use jwt::Verifier;
use limits::{ConnPermit, HttpRate, UserLimits};
use origin::OriginPolicy;
use ticket::{Grant, Tickets};

/// An authenticated caller (the JWT `sub`), or the development-only anonymous user.
#[derive(Clone)]
pub struct Principal {
    pub sub: String,
    /// When the credential stops being valid (Unix seconds): long connections end then.
    pub expires_at: Option<u64>,
    /// This user's limits; `None` in anonymous mode.
    limits: Option<Arc<UserLimits>>,
    /// Who the sessions see: the user id, charged to this user's limits.
    caller: Caller,
    /// The token's claims named by `--context-claims` (kept for the tickets it mints).
    context_claims: serde_json::Map<String, serde_json::Value>,
}

impl PartialEq for Principal {
    fn eq(&self, other: &Self) -> bool {
        self.sub == other.sub
    }
}
impl Eq for Principal {}
impl std::hash::Hash for Principal {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.sub.hash(state)
    }
}
impl std::fmt::Debug for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Principal")
            .field("sub", &self.sub)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl Principal {
    pub const ANONYMOUS: &'static str = "anonymous";

    /// The user of anonymous (development) mode.
    pub fn anonymous() -> Self {
        Principal {
            sub: Self::ANONYMOUS.to_owned(),
            expires_at: None,
            limits: None,
            caller: Caller::new(Self::ANONYMOUS, None),
            context_claims: Default::default(),
        }
    }

    /// This user as the sessions see them: the owner id, and the quota new messages and
    /// runs are charged to.
    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    /// Count a long-lived connection (WebSocket, SSE stream) against this user's limit.
    pub fn open_connection(&self) -> Result<ConnPermit, HubError> {
        self.limits
            .as_ref()
            .map_or(Ok(ConnPermit::free()), |l| l.open_connection(&self.sub))
    }

    /// Time left until the credential expires; `None` when it never does (anonymous). Capped
    /// at a year, so an absurd `exp` cannot overflow a timer deadline.
    pub fn time_left(&self) -> Option<Duration> {
        let exp = self.expires_at?;
        Some(
            Duration::from_secs(exp)
                .saturating_sub(unix_now())
                .min(MAX_TIME_LEFT),
        )
    }
}

/// Per-user limits are what the sessions charge new messages and runs to.
impl Quota for UserLimits {
    fn admit_message(&self, sub: &str) -> Result<(), HubError> {
        UserLimits::admit_message(self, sub)
    }
    fn admit_run(&self, sub: &str) -> Result<(), HubError> {
        UserLimits::admit_run(self, sub)
    }
}

const MAX_TIME_LEFT: Duration = Duration::from_secs(365 * 24 * 3600);

fn unix_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Marks a route where `?ticket=` is accepted (added as a request extension by a layer).
#[derive(Debug, Clone, Copy)]
pub struct AcceptTicket {
    /// A WebSocket upgrade: browsers always send Origin there, so a ticket without one is refused.
    pub origin_required: bool,
}

/// Everything the extractor needs; built once at start-up.
pub struct Auth {
    verifier: Option<Verifier>,
    origins: OriginPolicy,
    pub(crate) tickets: Tickets,
    user_limits: Option<Arc<UserLimits>>,
    http_rate: Option<HttpRate>,
}

impl Auth {
    /// Build from the config for a hub listening on `bound`. Fails when anonymous mode would
    /// serve a non-loopback address without `--allow-anonymous`, or when the auth settings do
    /// not make sense.
    pub fn from_config(cfg: &Config, bound: SocketAddr) -> anyhow::Result<Auth> {
        let verifier = Verifier::from_config(cfg)?;
        let loopback = bound.ip().is_loopback();
        match (&verifier, cfg.allow_anonymous) {
            (None, false) if !loopback => bail!(
                "no authentication is configured and {bound} is not a loopback address: configure a token key \
                 (--auth-hs256-secret, --auth-public-key or --auth-jwks), or pass --allow-anonymous to serve \
                 every client as one anonymous user"
            ),
            (Some(_), true) => bail!("--allow-anonymous contradicts the configured token key: choose one"),
            _ => {}
        }
        let authenticated = verifier.is_some();
        Ok(Auth {
            verifier,
            origins: OriginPolicy::new(&cfg.cors_origins)?,
            tickets: Tickets::new(Duration::from_secs(cfg.ws_ticket_secs)),
            // PROTOCOL.md: per-user limits apply with authentication only.
            user_limits: authenticated.then(|| UserLimits::from_config(cfg)),
            // Per-client limits apply everywhere but in loopback development.
            http_rate: if authenticated || !loopback {
                HttpRate::from_config(cfg)
            } else {
                None
            },
        })
    }

    /// Log how callers are identified (once, at start-up).
    pub fn log_mode(&self, bound: SocketAddr) {
        if self.verifier.is_some() {
            tracing::info!("authentication: bearer tokens required");
        } else if bound.ip().is_loopback() {
            tracing::warn!(
                addr = %bound,
                "anonymous mode: loopback only, because with no token key every client is the same \
                 user; configure --auth-hs256-secret, --auth-public-key or --auth-jwks to serve other hosts"
            );
        } else {
            tracing::warn!(
                addr = %bound,
                "anonymous mode (--allow-anonymous): no authentication, every client on every host \
                 is the same user"
            );
        }
    }

    pub fn is_anonymous(&self) -> bool {
        self.verifier.is_none()
    }

    /// The identity of a request, or why it is refused.
    fn identify(&self, parts: &Parts) -> Result<Principal, AuthRejection> {
        let accept = parts.extensions.get::<AcceptTicket>().copied();
        let origin = single_header(parts, header::ORIGIN)?;
        if let Some(o) = origin {
            // HTTP/2 carries the host in the URI's authority instead of a Host header.
            let host = single_header(parts, header::HOST)?
                .or_else(|| parts.uri.authority().map(|a| a.as_str()));
            if !self.origins.allows(o, host) {
                return Err(AuthRejection::new(HubError::Forbidden(
                    "origin not allowed".into(),
                )));
            }
        }
        let ip_key = || match parts.extensions.get::<ConnectInfo<SocketAddr>>() {
            Some(ConnectInfo(a)) => format!("ip:{}", a.ip()),
            None => "ip:unknown".to_owned(),
        };
        let Some(verifier) = &self.verifier else {
            self.rate(&ip_key())?;
            return Ok(Principal::anonymous());
        };
        let bearer = bearer(parts)?;
        let ticket = match accept {
            Some(_) => ticket_param(parts)?,
            None => None,
        };
        let principal = match (bearer, ticket) {
            (Some(_), Some(_)) => {
                return Err(AuthRejection::new(HubError::BadRequest(
                    "send a bearer token or a ticket, not both".into(),
                )))
            }
            (None, None) => {
                self.rate(&ip_key())?;
                return Err(AuthRejection::unauthorized(
                    "missing credentials: send Authorization: Bearer <token>",
                ));
            }
            (Some(token), None) => match verifier.verify(token) {
                Ok(c) => self.principal(c.sub, Some(c.exp), c.context),
                Err(why) => {
                    tracing::debug!(reason = %why, "bearer token refused");
                    self.rate(&ip_key())?;
                    let msg = if why.0 == "ExpiredSignature" {
                        "the token has expired"
                    } else {
                        "invalid token"
                    };
                    return Err(AuthRejection::unauthorized(msg));
                }
            },
            (None, Some(t)) => {
                if origin.is_none() && accept.is_some_and(|a| a.origin_required) {
                    return Err(AuthRejection::new(HubError::Forbidden(
                        "a ticket is for browsers, which send Origin: use a bearer token".into(),
                    )));
                }
                match self.tickets.redeem(t) {
                    Some(Grant {
                        sub,
                        token_exp,
                        claims,
                    }) => self.principal(sub, token_exp, claims),
                    None => {
                        self.rate(&ip_key())?;
                        return Err(AuthRejection::unauthorized(
                            "invalid, used or expired ticket",
                        ));
                    }
                }
            }
        };
        self.rate(&format!("sub:{}", principal.sub))?;
        Ok(principal)
    }

    /// An authenticated caller: its identity (`sub` and the `--context-claims` it has) goes
    /// to the model with its messages.
    fn principal(
        &self,
        sub: String,
        expires_at: Option<u64>,
        context_claims: serde_json::Map<String, serde_json::Value>,
    ) -> Principal {
        let quota = self.user_limits.clone().map(|l| l as Arc<dyn Quota>);
        Principal {
            caller: Caller::new(sub.as_str(), quota).with_identity(context_claims.clone()),
            context_claims,
            sub,
            expires_at,
            limits: self.user_limits.clone(),
        }
    }

    fn rate(&self, key: &str) -> Result<(), AuthRejection> {
        match &self.http_rate {
            Some(r) => r.check(key).map_err(|(e, wait)| {
                let mut rej = AuthRejection::new(e);
                rej.retry_after = Some(wait);
                rej
            }),
            None => Ok(()),
        }
    }
}

fn single_header(parts: &Parts, name: header::HeaderName) -> Result<Option<&str>, AuthRejection> {
    let mut values = parts.headers.get_all(&name).iter();
    let bad = || {
        AuthRejection::new(HubError::BadRequest(format!(
            "one valid {name} header at most"
        )))
    };
    match (values.next(), values.next()) {
        (None, _) => Ok(None),
        (Some(v), None) => v.to_str().map(Some).map_err(|_| bad()),
        _ => Err(bad()),
    }
}

fn bearer(parts: &Parts) -> Result<Option<&str>, AuthRejection> {
    let Some(v) = single_header(parts, header::AUTHORIZATION)? else {
        return Ok(None);
    };
    match v.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(Some(token.trim()))
        }
        _ => Err(AuthRejection::unauthorized(
            "the Authorization header must be `Bearer <token>`",
        )),
    }
}

/// `ticket` from the query string (a ticket is hex, so no decoding is needed).
fn ticket_param(parts: &Parts) -> Result<Option<&str>, AuthRejection> {
    let Some(q) = parts.uri.query() else {
        return Ok(None);
    };
    let mut found = None;
    for (k, v) in q.split('&').filter_map(|kv| kv.split_once('=')) {
        if k == "ticket" {
            if found.is_some() {
                return Err(AuthRejection::new(HubError::BadRequest(
                    "one `ticket` at most".into(),
                )));
            }
            found = Some(v);
        }
    }
    Ok(found)
}

/// A refused request: our JSON error, plus `WWW-Authenticate` on 401 and `Retry-After` on 429.
#[derive(Debug)]
pub struct AuthRejection {
    error: HubError,
    retry_after: Option<Duration>,
}

impl AuthRejection {
    fn new(error: HubError) -> Self {
        AuthRejection {
            error,
            retry_after: None,
        }
    }
    fn unauthorized(msg: &str) -> Self {
        Self::new(HubError::Unauthorized(msg.to_owned()))
    }
}

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        let mut resp = self.error.clone().into_response();
        if matches!(self.error, HubError::Unauthorized(_)) {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"sessionhub\""),
            );
        }
        if let Some(wait) = self.retry_after {
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        resp
    }
}

impl<S> FromRequestParts<S> for Principal
where
    S: Send + Sync,
    Arc<Auth>: FromRef<S>,
{
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Arc::<Auth>::from_ref(state).identify(parts)
    }
}
