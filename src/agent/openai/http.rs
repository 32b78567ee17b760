//! The HTTP layer under async-openai: one attempt per call, no retries, and failures that keep
//! what the retry policy needs (status, `Retry-After`, whether the connection was refused).
//!
//! async-openai's default executor retries 429 and 5xx itself, honouring any `Retry-After`
//! uncapped; and once it has turned a failed response into an `OpenAIError` the headers are
//! gone. So we install this service with `Client::with_http_service`: it hands successful
//! responses back untouched and turns every failure into an [`UpstreamHttpError`], boxed into
//! `OpenAIError::Boxed`, which the run loop downcasts.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use async_openai::error::OpenAIError;
use async_openai::middleware::HttpRequestFactory;
use futures::StreamExt;

use super::chunks::skip_bom;
use reqwest::header::{HeaderMap, AUTHORIZATION, RETRY_AFTER};
use reqwest::StatusCode;

/// How much of an error body we read: enough for any JSON error, bounded against a server
/// that answers an error with an endless body.
const MAX_ERROR_BODY: usize = 16 * 1024;
/// How much of an upstream error message we repeat in `run.failed`.
const MAX_MESSAGE_CHARS: usize = 300;

/// A failed attempt, as the retry policy sees it.
#[derive(Debug, thiserror::Error)]
pub(super) enum UpstreamHttpError {
    /// The server answered with a non-success status.
    #[error("upstream answered {status}: {message}")]
    Status {
        status: StatusCode,
        /// `Retry-After` (seconds or HTTP date) or `retry-after-ms`, uncapped.
        retry_after: Option<Duration>,
        /// The `error.type` or `error.code` of an OpenAI-style error body.
        kind: Option<String>,
        message: String,
    },
    /// No response: connection refused or reset, DNS, TLS, or the connect timeout.
    #[error("upstream unreachable: {message}")]
    Transport { connect: bool, message: String },
}

/// A tower service that sends each request once with reqwest.
#[derive(Clone, Debug)]
pub(super) struct UpstreamService {
    client: reqwest::Client,
}

impl UpstreamService {
    pub(super) fn new(client: reqwest::Client) -> Self {
        Self { client }
    }
}

type ResponseFuture = Pin<Box<dyn Future<Output = Result<reqwest::Response, OpenAIError>> + Send>>;

impl tower::Service<HttpRequestFactory> for UpstreamService {
    type Response = reqwest::Response;
    type Error = OpenAIError;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, factory: HttpRequestFactory) -> Self::Future {
        let client = self.client.clone();
        Box::pin(async move {
            let mut request = factory.build().await?;
            // async-openai always sends `Authorization: Bearer <key>`; with no key that is a
            // bare "Bearer " which some local servers reject. Send nothing instead.
            let empty_bearer = request
                .headers()
                .get(AUTHORIZATION)
                .is_some_and(|v| v.as_bytes().trim_ascii() == b"Bearer");
            if empty_bearer {
                request.headers_mut().remove(AUTHORIZATION);
            }
            let response = client.execute(request).await.map_err(|e| {
                boxed(UpstreamHttpError::Transport {
                    connect: e.is_connect(),
                    message: error_chain(&e),
                })
            })?;
            if response.status().is_success() {
                return Ok(without_bom(response));
            }
            Err(boxed(status_error(response).await))
        })
    }
}

/// The response with its body through [`skip_bom`]: a stream that starts with a byte order
/// mark would otherwise panic async-openai's reader task.
fn without_bom(response: reqwest::Response) -> reqwest::Response {
    let mut out = http::Response::builder()
        .status(response.status())
        .version(response.version());
    if let Some(headers) = out.headers_mut() {
        *headers = response.headers().clone();
    }
    let body = reqwest::Body::wrap_stream(skip_bom(response.bytes_stream()));
    let out = out
        .body(body)
        .expect("status and version come from a response");
    reqwest::Response::from(out)
}

fn boxed(e: UpstreamHttpError) -> OpenAIError {
    OpenAIError::Boxed(Box::new(e))
}

/// reqwest's top-level message ("error sending request") hides the cause; join the chain.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

async fn status_error(response: reqwest::Response) -> UpstreamHttpError {
    let status = response.status();
    let retry_after = retry_after(response.headers());
    let mut body = Vec::new();
    let mut chunks = response.bytes_stream();
    while let Some(Ok(chunk)) = chunks.next().await {
        body.extend_from_slice(&chunk);
        if body.len() >= MAX_ERROR_BODY {
            body.truncate(MAX_ERROR_BODY);
            break;
        }
    }
    let (kind, message) = parse_error_body(&body);
    let message = message.unwrap_or_else(|| {
        status
            .canonical_reason()
            .unwrap_or("error status")
            .to_owned()
    });
    UpstreamHttpError::Status {
        status,
        retry_after,
        kind,
        message: truncate(&message, MAX_MESSAGE_CHARS),
    }
}

/// The `error.type`/`error.code` and `error.message` of an OpenAI-style body
/// (`{"error":{"message","type","code"}}`), or a plain-text body as the message.
pub(super) fn parse_error_body(body: &[u8]) -> (Option<String>, Option<String>) {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        let text = String::from_utf8_lossy(body).trim().to_owned();
        return (None, (!text.is_empty()).then_some(text));
    };
    let error = value.get("error").unwrap_or(&value);
    let field = |name: &str| error.get(name).and_then(|v| v.as_str()).map(str::to_owned);
    let message = match error {
        serde_json::Value::String(s) => Some(s.clone()),
        _ => field("message"),
    };
    (field("type").or_else(|| field("code")), message)
}

/// `retry-after-ms` (OpenAI's precise variant) or `Retry-After` as seconds or an HTTP date.
pub(super) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = text("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        if ms.is_finite() && ms >= 0.0 {
            return Some(Duration::from_secs_f64(ms / 1000.0));
        }
    }
    let value = text(RETRY_AFTER.as_str())?;
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.signed_duration_since(chrono::Utc::now());
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

pub(super) fn truncate(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(retry_after(&headers(&[])), None);
        assert_eq!(
            retry_after(&headers(&[("retry-after", "3600")])),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after", "1.5")])),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after-ms", "250"), ("retry-after", "9")])),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            retry_after(&headers(&[(
                "retry-after",
                "Wed, 21 Oct 2015 07:28:00 GMT"
            )])),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(&headers(&[("retry-after", "soon")])), None);
        assert_eq!(retry_after(&headers(&[("retry-after", "-3")])), None);
    }

    #[test]
    fn error_bodies() {
        let (kind, msg) =
            parse_error_body(br#"{"error":{"message":"bad key","type":"invalid_request_error"}}"#);
        assert_eq!(kind.as_deref(), Some("invalid_request_error"));
        assert_eq!(msg.as_deref(), Some("bad key"));
        let (kind, msg) = parse_error_body(br#"{"error":"model not found"}"#);
        assert_eq!((kind, msg.as_deref()), (None, Some("model not found")));
        let (kind, msg) = parse_error_body(b"upstream connect error");
        assert_eq!(
            (kind, msg.as_deref()),
            (None, Some("upstream connect error"))
        );
        assert_eq!(parse_error_body(b""), (None, None));
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "hé…");
        assert_eq!(truncate("hi", 5), "hi");
    }
}
