//! The native SSE fallback (PROTOCOL.md, "Native SSE fallback"): `GET /v1/sessions/{id}/events`
//! streams the session's snapshot or replay and then its live events, `POST .../messages` and
//! `POST .../cancel` carry the commands. Same `Hub` calls and the same bounded outbox as the
//! WebSocket, so both transports tell the same story.
//!
//! Each event is `id: <epoch>:<seq>`, `event: <type>`, `data: <json>`; resume is the standard
//! `Last-Event-ID` header or `?since=<epoch>:<seq>` (the header wins: a browser's EventSource
//! reconnects to the original URL and sends the newer position in the header). The `subscribed`
//! reply is not an event, so that the first event is the snapshot or the first replayed one;
//! its fields travel as `Sessionhub-Resume`, `Sessionhub-Epoch` and `Sessionhub-Head-Seq`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::Stream;
use tokio_util::sync::CancellationToken;

use super::{body_bytes, rest, wire, AppState};
use crate::auth::limits::ConnPermit;
use crate::auth::Principal;
use crate::domain::{sleep_until_opt, Position};
use crate::error::HubError;
use crate::session::event::EventBody;
use crate::session::outbox::SubscribedReply;
use crate::session::{Outbound, Outbox, OutboxReceiver, Subscription};
use crate::telemetry::Metrics;

/// The actor queues `subscribed` before it answers; this only guards against a bug there.
const SUBSCRIBED_WAIT: Duration = Duration::from_secs(5);

pub(crate) const RESUME_HEADER: &str = "sessionhub-resume";
pub(crate) const EPOCH_HEADER: &str = "sessionhub-epoch";
pub(crate) const HEAD_SEQ_HEADER: &str = "sessionhub-head-seq";

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/sessions/{id}/events",
            get(events).layer(axum::Extension(crate::auth::AcceptTicket {
                origin_required: false,
            })),
        )
        .route("/v1/sessions/{id}/messages", post(send))
        .route("/v1/sessions/{id}/cancel", post(cancel))
        .route("/v1/sessions/{id}/tool-results", post(tool_result))
        .route("/v1/sessions/{id}/tool-approvals", post(tool_approval))
}

/// `<epoch>:<seq>`, the form of an SSE event id. The epoch is `[A-Za-z0-9_-]+`.
fn parse_position(s: &str, what: &str) -> Result<Position, HubError> {
    let bad = || HubError::BadRequest(format!("{what} must be <epoch>:<seq>, as in an event id"));
    let (epoch, seq) = s.trim().rsplit_once(':').ok_or_else(bad)?;
    let epoch_ok = !epoch.is_empty()
        && epoch
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    let seq = seq.parse::<u64>().map_err(|_| bad())?;
    if !epoch_ok {
        return Err(bad());
    }
    Ok(Position {
        epoch: epoch.to_owned(),
        seq,
    })
}

/// The resume position: `Last-Event-ID` if present and not empty, else `?since=`.
fn resume_from(
    headers: &HeaderMap,
    params: &HashMap<String, String>,
) -> Result<Option<Position>, HubError> {
    if let Some(v) = headers.get("last-event-id") {
        let v = v
            .to_str()
            .map_err(|_| HubError::BadRequest("Last-Event-ID must be ASCII".into()))?;
        if !v.trim().is_empty() {
            return parse_position(v, "Last-Event-ID").map(Some);
        }
    }
    match params.get("since") {
        Some(s) if !s.is_empty() => parse_position(s, "`since`").map(Some),
        _ => Ok(None),
    }
}

#[utoipa::path(
    get, path = "/v1/sessions/{id}/events", tag = "sse", operation_id = "stream_events",
    params(("id" = String, Path, description = "A session id"), crate::transport::openapi::EventsQuery,
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event id; wins over `since`")),
    responses(crate::transport::openapi::EventStream, crate::transport::openapi::Refused),
)]
async fn events(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    q: rest::Params,
) -> Result<Response, HubError> {
    let params = rest::params(q)?;
    let since = resume_from(&headers, &params)?;
    // An event stream counts as a connection of its user (429 beyond the limit).
    let permit = who.open_connection()?;
    let expires = who
        .time_left()
        .map(|left| tokio::time::Instant::now() + left);
    let cfg = state.hub.config().clone();
    let (outbox, mut rx) = Outbox::channel(cfg.outbound_frames, cfg.outbound_bytes);
    // The stream keeps only the receiver and the subscription: when the actor drops the
    // subscriber (session deleted, slow consumer) nothing else holds a sender and the stream
    // ends; when the client goes away, dropping the stream ends the subscription.
    let sub = state
        .hub
        .subscribe(who.caller(), &id, outbox, since, None)
        .await?;
    let guard = Held::new(state.hub.metrics().clone(), sub, permit);

    let mut extra = Vec::new();
    match tokio::time::timeout(SUBSCRIBED_WAIT, rx.recv()).await {
        Ok(Some(Outbound::Subscribed(reply))) => {
            let SubscribedReply {
                epoch,
                head_seq,
                resume,
                ..
            } = *reply;
            let resume = serde_json::to_value(resume)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            extra.push((RESUME_HEADER, resume));
            extra.push((EPOCH_HEADER, epoch));
            extra.push((HEAD_SEQ_HEADER, head_seq.to_string()));
        }
        Ok(Some(other)) => {
            return Err(HubError::Internal(format!(
                "expected subscribed, got {}",
                wire::outbound_type(&other)
            )))
        }
        Ok(None) | Err(_) => {
            return Err(HubError::Unavailable(
                "the session did not answer the subscribe".into(),
            ))
        }
    }

    let stream = EventStream {
        rx,
        stop: state.signals.close_conns.clone(),
        phase: Phase::Live,
        guard,
        expires,
    };
    let keep_alive = KeepAlive::new()
        .interval(cfg.heartbeat())
        .text("keep-alive");
    let mut resp = Sse::new(stream.into_stream())
        .keep_alive(keep_alive)
        .into_response();
    let h = resp.headers_mut();
    // Proxies such as nginx buffer responses unless told not to; an event stream must not wait.
    h.insert(
        HeaderName::from_static("x-accel-buffering"),
        HeaderValue::from_static("no"),
    );
    for (name, value) in extra {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(HeaderName::from_static(name), v);
        }
    }
    Ok(resp)
}

/// What an open event stream holds: its subscription and its connection permit; the
/// connection gauge counts it while it lives.
struct Held {
    metrics: Arc<Metrics>,
    _sub: Subscription,
    _permit: ConnPermit,
}

impl Held {
    fn new(metrics: Arc<Metrics>, sub: Subscription, permit: ConnPermit) -> Self {
        metrics.connection_gauge("sse").inc();
        Held {
            metrics,
            _sub: sub,
            _permit: permit,
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.metrics.connection_gauge("sse").dec();
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Forwarding frames as they come.
    Live,
    /// Overflowed or shutting down: send what is queued, then end.
    Draining {
        slow: bool,
    },
    Done,
}

/// The outbox of one SSE response, rendered as events.
struct EventStream {
    /// Its only sender is the session actor's copy: it ends when the actor drops the
    /// subscriber (session deleted, slow consumer).
    rx: OutboxReceiver,
    /// Cancelled at shutdown, after the actors drained: the stream ends after queued frames.
    stop: CancellationToken,
    phase: Phase,
    guard: Held,
    /// When the caller's credential expires: the stream ends then.
    expires: Option<tokio::time::Instant>,
}

impl EventStream {
    fn into_stream(self) -> impl Stream<Item = Result<SseEvent, Infallible>> + Send {
        futures::stream::unfold(self, |mut st| async move {
            let ev = st.next().await?;
            Some((Ok(ev), st))
        })
    }

    async fn next(&mut self) -> Option<SseEvent> {
        loop {
            match self.phase {
                Phase::Done => return None,
                Phase::Draining { slow } => match self.rx.try_recv() {
                    Some(o) => return Some(render(&o)),
                    None => {
                        self.phase = Phase::Done;
                        // A comment, not an event: the client resumes with Last-Event-ID.
                        let why = if slow {
                            "slow consumer: reconnect with Last-Event-ID"
                        } else {
                            "server restart: reconnect with Last-Event-ID"
                        };
                        return Some(SseEvent::default().comment(why));
                    }
                },
                Phase::Live => {
                    // An overflow needs frames in the queue, so recv() below never sleeps
                    // through one: checking the flag before each frame is enough.
                    if self.rx.overflowed() {
                        self.begin_drain(true);
                        continue;
                    }
                    tokio::select! {
                        biased;
                        _ = self.stop.cancelled() => self.begin_drain(false),
                        _ = sleep_until_opt(self.expires) => {
                            self.rx.close();
                            self.phase = Phase::Done;
                            let why = "credentials expired: reconnect with a fresh token and Last-Event-ID";
                            return Some(SseEvent::default().comment(why));
                        }
                        o = self.rx.recv() => match o {
                            None => self.phase = Phase::Done,
                            Some(o) => {
                                if is_deleted(&o) {
                                    // The hub dropped this subscription: nothing more will come.
                                    self.phase = Phase::Done;
                                }
                                return Some(render(&o));
                            }
                        },
                    }
                }
            }
        }
    }

    fn begin_drain(&mut self, slow: bool) {
        if slow {
            self.guard.metrics.slow_consumer_closes.inc();
        }
        self.rx.close();
        self.phase = Phase::Draining { slow };
    }
}

fn is_deleted(o: &Outbound) -> bool {
    matches!(o, Outbound::Event(e) if matches!(e.body, EventBody::SessionDeleted {}))
}

/// One queued frame as an SSE event; sequenced events and snapshots carry their position as id.
fn render(o: &Outbound) -> SseEvent {
    let json = wire::render(o);
    let data = String::from_utf8_lossy(&json);
    let ev = SseEvent::default().event(wire::outbound_type(o)).data(data);
    match o {
        Outbound::Event(e) => ev.id(format!("{}:{}", e.epoch, e.seq)),
        Outbound::Snapshot(s) => ev.id(format!("{}:{}", s.epoch, s.seq)),
        _ => ev,
    }
}

/// `POST /v1/sessions/{id}/messages` `{"client_msg_id","text","on_busy"?}` -> the `ack`.
#[utoipa::path(
    post, path = "/v1/sessions/{id}/messages", tag = "sse", operation_id = "send_message",
    params(("id" = String, Path, description = "A session id")),
    request_body(content = crate::transport::openapi::SendMessage, content_type = "application/json"),
    responses((status = 200, description = "Stored durably (or a repeat of a stored `client_msg_id`)",
        body = crate::transport::openapi::AckReply), crate::transport::openapi::CommandErrors, crate::transport::openapi::BodyRefused, crate::transport::openapi::Refused),
)]
async fn send(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, HubError> {
    let m = rest::json_object(&body_bytes(body)?)?;
    let req = wire::send_request(&m, state.hub.config().max_text_chars)?;
    let ack = state.hub.send(who.caller(), &id, req).await?;
    Ok(Json(wire::ack_value(&ack, &None)).into_response())
}

/// `POST /v1/sessions/{id}/cancel` `{"run_id"?}` -> 204; the `run.cancelled` event follows on
/// every stream of the session.
#[utoipa::path(
    post, path = "/v1/sessions/{id}/cancel", tag = "sse", operation_id = "cancel_run",
    params(("id" = String, Path, description = "A session id")),
    request_body(content = Option<crate::transport::openapi::CancelRun>, content_type = "application/json"),
    responses((status = 204, description = "Cancelled; every stream of the session sees `run.cancelled`"),
        crate::transport::openapi::CommandErrors, crate::transport::openapi::BodyRefused, crate::transport::openapi::Refused),
)]
async fn cancel(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, HubError> {
    let m = rest::json_object(&body_bytes(body)?)?;
    let run_id = wire::opt_str(&m, "run_id")?;
    state.hub.cancel(who.caller(), &id, run_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/sessions/{id}/tool-results` `{"call_id","output","is_error"?}` -> the `ack`.
#[utoipa::path(
    post, path = "/v1/sessions/{id}/tool-results", tag = "sse", operation_id = "tool_result",
    params(("id" = String, Path, description = "A session id")),
    request_body(content = crate::transport::openapi::ToolResultBody, content_type = "application/json"),
    responses((status = 200, description = "Resolved durably (or a repeat of the same result)",
        body = crate::transport::openapi::ToolAckReply), crate::transport::openapi::CommandErrors, crate::transport::openapi::BodyRefused, crate::transport::openapi::Refused),
)]
async fn tool_result(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, HubError> {
    resolve_tool(state, who, id, body, false).await
}

/// `POST /v1/sessions/{id}/tool-approvals` `{"call_id","approved","arguments"?}` -> the `ack`
/// (for an approved call, once the tool ran and its result is durable).
#[utoipa::path(
    post, path = "/v1/sessions/{id}/tool-approvals", tag = "sse", operation_id = "tool_approval",
    params(("id" = String, Path, description = "A session id")),
    request_body(content = crate::transport::openapi::ToolApprovalBody, content_type = "application/json"),
    responses((status = 200, description = "Decided durably; an approved call's ack comes once it ran",
        body = crate::transport::openapi::ToolAckReply), crate::transport::openapi::CommandErrors, crate::transport::openapi::BodyRefused, crate::transport::openapi::Refused),
)]
async fn tool_approval(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, HubError> {
    resolve_tool(state, who, id, body, true).await
}

async fn resolve_tool(
    state: AppState,
    who: Principal,
    id: String,
    body: Result<Bytes, BytesRejection>,
    approval: bool,
) -> Result<Response, HubError> {
    let m = rest::json_object(&body_bytes(body)?)?;
    let (call_id, how) = wire::tool_resolution(&m, approval)?;
    let ack = state
        .hub
        .resolve_tool(who.caller(), &id, &call_id, how)
        .await?;
    Ok(Json(wire::tool_ack_value(&ack, &None)).into_response())
}
