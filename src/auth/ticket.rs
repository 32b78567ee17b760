//! Single-use WebSocket tickets. Browsers cannot set headers on a WebSocket (or an
//! EventSource), so a page trades its bearer token for a ticket with `POST /v1/ws-ticket` and
//! passes it as `?ticket=`. A ticket is random (256 bits), valid for a few seconds, works once,
//! and carries the token's `sub` and `exp`, so the connection still ends when the token does.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use dashmap::DashMap;
// Tokio's clock, not std's: the same monotonic time outside a test, and a test that pauses
// tokio's time can let a ticket lapse with `tokio::time::advance` instead of sleeping.
use tokio::time::Instant;

use super::{Auth, Principal};
use crate::error::HubError;

/// Outstanding tickets at most, over all users; beyond, minting answers `unavailable`.
const MAX_OUTSTANDING: usize = 100_000;
/// Mints between sweeps of expired tickets.
const SWEEP_EVERY: u64 = 256;

/// Who a ticket stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub sub: String,
    /// The token's `exp` (Unix seconds); `None` in anonymous mode.
    pub token_exp: Option<u64>,
    /// The token's claims named by `--context-claims` (PROTOCOL 1.2).
    pub claims: serde_json::Map<String, serde_json::Value>,
}

struct Entry {
    grant: Grant,
    expires: Instant,
}

/// Tickets minted and not yet used or expired.
pub struct Tickets {
    map: DashMap<String, Entry>,
    ttl: Duration,
    minted: AtomicU64,
}

impl Tickets {
    pub fn new(ttl: Duration) -> Self {
        Tickets {
            map: DashMap::new(),
            ttl,
            minted: AtomicU64::new(0),
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// A fresh ticket for `grant`.
    pub fn mint(&self, grant: Grant) -> Result<String, HubError> {
        let now = Instant::now();
        if self
            .minted
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(SWEEP_EVERY)
            || self.map.len() >= MAX_OUTSTANDING
        {
            self.map.retain(|_, e| e.expires > now);
        }
        if self.map.len() >= MAX_OUTSTANDING {
            return Err(HubError::Unavailable(
                "too many outstanding tickets; try again shortly".into(),
            ));
        }
        let bytes: [u8; 32] = rand::random();
        let ticket: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        self.map.insert(
            ticket.clone(),
            Entry {
                grant,
                expires: now + self.ttl,
            },
        );
        Ok(ticket)
    }

    /// Use a ticket: it is gone afterwards, whether it was still valid or not.
    pub fn redeem(&self, ticket: &str) -> Option<Grant> {
        let (_, entry) = self.map.remove(ticket)?;
        (entry.expires > Instant::now()).then_some(entry.grant)
    }
}

/// The answer of `POST /v1/ws-ticket`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct TicketReply {
    /// Opens one `GET /v1/ws?ticket=` (or one SSE events stream) and is gone after.
    pub ticket: String,
    /// Seconds the ticket stays valid (`--ws-ticket-secs`).
    pub expires_in: u64,
}

/// `POST /v1/ws-ticket` with the bearer token: `{"ticket", "expires_in"}` (seconds). The
/// ticket opens one `GET /v1/ws` (or one SSE events stream) as `?ticket=`.
#[utoipa::path(
    post, path = "/v1/ws-ticket", tag = "auth", operation_id = "create_ws_ticket",
    responses(
        (status = 201, description = "A single-use ticket", body = TicketReply),
        crate::transport::openapi::Refused,
    ),
)]
pub async fn mint(State(auth): State<Arc<Auth>>, who: Principal) -> Response {
    let grant = Grant {
        sub: who.sub.clone(),
        token_exp: who.expires_at,
        claims: who.context_claims.clone(),
    };
    match auth.tickets.mint(grant) {
        Ok(ticket) => (
            StatusCode::CREATED,
            [(header::CACHE_CONTROL, "no-store")],
            Json(TicketReply {
                ticket,
                expires_in: auth.tickets.ttl().as_secs(),
            }),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant() -> Grant {
        Grant {
            sub: "u1".into(),
            token_exp: Some(1),
            claims: Default::default(),
        }
    }

    #[test]
    fn a_ticket_works_once() {
        let t = Tickets::new(Duration::from_secs(10));
        let ticket = t.mint(grant()).expect("mint");
        assert_eq!(ticket.len(), 64);
        assert_eq!(t.redeem(&ticket), Some(grant()));
        assert_eq!(t.redeem(&ticket), None);
    }

    #[test]
    fn an_expired_ticket_is_refused_and_forgotten() {
        let t = Tickets::new(Duration::ZERO);
        let ticket = t.mint(grant()).expect("mint");
        assert_eq!(t.redeem(&ticket), None);
        assert!(t.map.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_ticket_lapses_when_its_ttl_has_passed() {
        let t = Tickets::new(Duration::from_secs(1));
        let (early, late) = (
            t.mint(grant()).expect("mint"),
            t.mint(grant()).expect("mint"),
        );
        tokio::time::advance(Duration::from_millis(999)).await;
        assert_eq!(t.redeem(&early), Some(grant()), "valid until its TTL");
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(t.redeem(&late), None, "refused from its TTL on");
    }

    #[test]
    fn tickets_are_distinct() {
        let t = Tickets::new(Duration::from_secs(10));
        let a = t.mint(grant()).expect("mint");
        let b = t.mint(grant()).expect("mint");
        assert_ne!(a, b);
    }
}
