//! Abuse limits. Per user (authenticated mode only, PROTOCOL.md "Limits"): open connections,
//! new messages and runs per minute (a run costs upstream money). Per client: HTTP requests
//! per second, keyed by the authenticated user or else by peer IP (`X-Forwarded-For` is not
//! trusted: it is spoofable). For every POST: a deadline on receiving the body (slow-body
//! clients). Exceeding a limit answers `rate_limited` (429), never a hang.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use dashmap::DashMap;
use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use crate::config::Config;
use crate::error::HubError;

/// Checks between two `retain_recent` sweeps of a keyed limiter (forgets idle keys).
const SWEEP_EVERY: u64 = 4096;

/// The limiters' time source: tokio's clock. Outside a test it is the monotonic clock (what
/// `std::time::Instant` reads); a test that pauses tokio's time (`tokio::time::pause`, then
/// `advance`) moves every rate-limit window with it instead of sleeping through the window.
#[derive(Debug, Clone, Copy, Default)]
struct TokioClock;

impl Clock for TokioClock {
    type Instant = std::time::Instant;

    fn now(&self) -> std::time::Instant {
        tokio::time::Instant::now().into_std()
    }
}

type KeyedLimiter = RateLimiter<
    String,
    DefaultKeyedStateStore<String>,
    TokioClock,
    NoOpMiddleware<std::time::Instant>,
>;

/// A keyed GCRA limiter that forgets idle keys now and then, so its memory stays bounded.
struct Keyed {
    limiter: KeyedLimiter,
    checks: AtomicU64,
    what: &'static str,
}

impl Keyed {
    /// `None` when the rate is 0 (limit off).
    fn new(per: Duration, count: u32, burst: u32, what: &'static str) -> Option<Self> {
        let count = NonZeroU32::new(count)?;
        let burst = NonZeroU32::new(burst).unwrap_or(count);
        let quota = Quota::with_period(per / count.get())?.allow_burst(burst);
        Some(Keyed {
            limiter: RateLimiter::new(quota, DefaultKeyedStateStore::default(), TokioClock),
            checks: AtomicU64::new(0),
            what,
        })
    }

    /// Take one cell for `key`, or say how long until one is free.
    fn check(&self, key: &str) -> Result<(), Duration> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.limiter.retain_recent();
        }
        self.limiter
            .check_key(&key.to_owned())
            .map_err(|not_until| not_until.wait_time_from(TokioClock.now()))
    }

    fn refuse(&self, wait: Duration) -> HubError {
        HubError::RateLimited(format!(
            "too many {}: retry in {} ms",
            self.what,
            wait.as_millis().max(1)
        ))
    }
}

/// Per-user limits; one instance shared by every connection and request.
pub struct UserLimits {
    max_conns: usize,
    conns: DashMap<String, usize>,
    messages: Option<Keyed>,
    runs: Option<Keyed>,
}

impl UserLimits {
    pub fn from_config(cfg: &Config) -> Arc<Self> {
        let minute = Duration::from_secs(60);
        Arc::new(UserLimits {
            max_conns: cfg.max_conns_per_user,
            conns: DashMap::new(),
            messages: Keyed::new(
                minute,
                cfg.user_messages_per_min,
                cfg.user_message_burst,
                "messages",
            ),
            runs: Keyed::new(minute, cfg.user_runs_per_min, cfg.user_run_burst, "runs"),
        })
    }

    /// Charge one new message and the run it starts.
    pub fn admit_message(&self, sub: &str) -> Result<(), HubError> {
        if let Some(m) = &self.messages {
            m.check(sub).map_err(|w| m.refuse(w))?;
        }
        self.admit_run(sub)
    }

    /// Charge one run (a retry starts a run without a new message).
    pub fn admit_run(&self, sub: &str) -> Result<(), HubError> {
        match &self.runs {
            Some(r) => r.check(sub).map_err(|w| r.refuse(w)),
            None => Ok(()),
        }
    }

    /// Count an open connection (WebSocket or SSE stream) until the permit drops.
    pub fn open_connection(self: &Arc<Self>, sub: &str) -> Result<ConnPermit, HubError> {
        if self.max_conns == 0 {
            return Ok(ConnPermit(None));
        }
        let mut n = self.conns.entry(sub.to_owned()).or_insert(0);
        if *n >= self.max_conns {
            return Err(HubError::RateLimited(format!(
                "too many open connections for this user (at most {})",
                self.max_conns
            )));
        }
        *n += 1;
        Ok(ConnPermit(Some((self.clone(), sub.to_owned()))))
    }
}

/// An open connection counted against its user; dropping it frees the slot.
#[must_use]
pub struct ConnPermit(Option<(Arc<UserLimits>, String)>);

impl ConnPermit {
    /// A permit that counts nothing (anonymous mode).
    pub fn free() -> Self {
        ConnPermit(None)
    }
}

impl Drop for ConnPermit {
    fn drop(&mut self) {
        if let Some((limits, sub)) = self.0.take() {
            limits.conns.remove_if_mut(&sub, |_, n| {
                *n = n.saturating_sub(1);
                *n == 0
            });
        }
    }
}

/// Requests per second per client.
pub struct HttpRate(Keyed);

impl HttpRate {
    pub fn from_config(cfg: &Config) -> Option<Self> {
        Keyed::new(
            Duration::from_secs(1),
            cfg.http_rate_per_sec,
            cfg.http_burst,
            "requests",
        )
        .map(HttpRate)
    }

    /// `key` is `sub:<user>` or `ip:<addr>`.
    pub fn check(&self, key: &str) -> Result<(), (HubError, Duration)> {
        self.0.check(key).map_err(|w| (self.0.refuse(w), w))
    }
}

/// Middleware: a request body (any method but GET, HEAD, OPTIONS) must arrive within
/// `deadline`, or the request is answered 408 and its connection closed. The body is read
/// here, within the size limit of the layer outside, and handed on in memory (every handler
/// buffers it anyway).
pub async fn body_deadline(State(deadline): State<Duration>, req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    match tokio::time::timeout(deadline, Bytes::from_request(Request::new(body), &())).await {
        Ok(Ok(bytes)) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Ok(Err(rejection)) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            HubError::TooLarge("the request body is too large".into()).into_response()
        }
        Ok(Err(rejection)) => {
            HubError::BadRequest(format!("unreadable body: {rejection}")).into_response()
        }
        Err(_) => {
            let body = HubError::BadRequest(format!(
                "the request body did not arrive within {} s",
                deadline.as_secs_f32()
            ))
            .body();
            (
                StatusCode::REQUEST_TIMEOUT,
                [(header::CONNECTION, "close")],
                Json(body),
            )
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_allowed_then_refused() {
        let k = Keyed::new(Duration::from_secs(60), 60, 3, "messages").expect("on");
        for _ in 0..3 {
            assert!(k.check("u").is_ok());
        }
        let wait = k.check("u").expect_err("over the burst");
        assert!(wait <= Duration::from_secs(1), "{wait:?}");
        assert!(k.check("v").is_ok(), "another key has its own bucket");
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_key_is_served_again_after_the_advertised_wait() {
        let k = Keyed::new(Duration::from_secs(60), 60, 1, "messages").expect("on");
        assert!(k.check("u").is_ok());
        let wait = k.check("u").expect_err("over the burst");
        tokio::time::advance(wait - Duration::from_millis(1)).await;
        assert!(k.check("u").is_err(), "not before the wait is over");
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(k.check("u").is_ok(), "served once the wait is over");
    }

    #[test]
    fn zero_turns_a_limit_off() {
        assert!(Keyed::new(Duration::from_secs(60), 0, 5, "runs").is_none());
    }

    #[test]
    fn connection_permits_count_and_free() {
        let mut cfg = Config::for_tests("unused");
        cfg.max_conns_per_user = 2;
        let l = UserLimits::from_config(&cfg);
        let a = l.open_connection("u").expect("first");
        let _b = l.open_connection("u").expect("second");
        assert!(l.open_connection("u").is_err());
        assert!(l.open_connection("v").is_ok());
        drop(a);
        assert!(l.open_connection("u").is_ok());
    }
}
