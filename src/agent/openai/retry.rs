//! When to try a request again before its first token: which failures, how long to wait, and
//! when to give up (attempts and total budget).
//!
//! Only failures that say nothing reached the user and that a later attempt may cure are
//! retried: connection failures, 408, 429 (unless the quota is exhausted) and 5xx. 400, 401,
//! 403, 404 and the like fail at once. After the first token nothing is retried at all: the
//! run loop never calls into this module again.

use std::time::Duration;

use rand::Rng;
use reqwest::StatusCode;

use super::http::UpstreamHttpError;
use super::OpenAiSettings;

/// OpenAI answers 429 with this error type when the account is out of credit: waiting does
/// not help.
const INSUFFICIENT_QUOTA: &str = "insufficient_quota";

/// Whether a failed attempt may be retried.
pub(super) fn is_retryable(error: &UpstreamHttpError) -> bool {
    match error {
        UpstreamHttpError::Transport { .. } => true,
        UpstreamHttpError::Status { status, kind, .. } => {
            let quota = kind.as_deref() == Some(INSUFFICIENT_QUOTA);
            *status == StatusCode::REQUEST_TIMEOUT
                || (*status == StatusCode::TOO_MANY_REQUESTS && !quota)
                || status.is_server_error()
        }
    }
}

/// The retry schedule of one run.
#[derive(Debug, Clone)]
pub(super) struct Backoff {
    initial: Duration,
    max: Duration,
    retry_after_cap: Duration,
}

impl Backoff {
    pub(super) fn new(settings: &OpenAiSettings) -> Self {
        Self {
            initial: settings.initial_backoff,
            max: settings.max_backoff,
            retry_after_cap: settings.retry_after_cap,
        }
    }

    /// The wait before attempt `failed + 1`, after `failed` failed attempts (1-based).
    ///
    /// A `Retry-After` from the server wins, cut to the cap: the server knows when it will
    /// have room, but a client told to come back in an hour has a user waiting. Otherwise
    /// exponential backoff with "equal jitter": half the step fixed, half random, so many runs
    /// failing together do not come back together.
    pub(super) fn delay(&self, failed: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(wait) = retry_after {
            return wait.min(self.retry_after_cap);
        }
        let exp = failed.saturating_sub(1).min(20);
        let step = self.initial.saturating_mul(1u32 << exp).min(self.max);
        let half = step / 2;
        let jitter_ns = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        let jitter = if jitter_ns == 0 {
            Duration::ZERO
        } else {
            Duration::from_nanos(rand::rng().random_range(0..=jitter_ns))
        };
        half + jitter
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16, kind: Option<&str>) -> UpstreamHttpError {
        UpstreamHttpError::Status {
            status: StatusCode::from_u16(code).unwrap(),
            retry_after: None,
            kind: kind.map(str::to_owned),
            message: String::new(),
        }
    }

    #[test]
    fn which_failures_are_retried() {
        for code in [408, 429, 500, 502, 503, 504] {
            assert!(is_retryable(&status(code, None)), "{code}");
        }
        for code in [400, 401, 403, 404, 409, 422] {
            assert!(!is_retryable(&status(code, None)), "{code}");
        }
        assert!(!is_retryable(&status(429, Some(INSUFFICIENT_QUOTA))));
        assert!(is_retryable(&UpstreamHttpError::Transport {
            connect: true,
            message: String::new()
        }));
    }

    #[test]
    fn backoff_grows_with_jitter_and_caps() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(1000),
            retry_after_cap: Duration::from_secs(2),
        };
        for _ in 0..50 {
            let d1 = b.delay(1, None);
            assert!(d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(100));
            let d3 = b.delay(3, None);
            assert!(d3 >= Duration::from_millis(200) && d3 <= Duration::from_millis(400));
            let d30 = b.delay(30, None);
            assert!(d30 >= Duration::from_millis(500) && d30 <= Duration::from_millis(1000));
        }
        assert_eq!(
            b.delay(1, Some(Duration::from_secs(3600))),
            Duration::from_secs(2)
        );
        assert_eq!(
            b.delay(1, Some(Duration::from_millis(300))),
            Duration::from_millis(300)
        );
    }
}
