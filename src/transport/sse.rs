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
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::Stream;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::ws_frames::parse_send;
use super::{rest, wire, AppState};
use crate::auth::limits::ConnPermit;
use crate::auth::Principal;
use crate::error::HubError;
use crate::session::event::{EventBody, Position};
use crate::session::outbox::{AckReply, SubscribedReply};
use crate::session::{Hub, Outbound, Outbox, OutboxReceiver, Subscriber};

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
}

type Params = Result<Query<HashMap<String, String>>, QueryRejection>;

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
    q: Params,
) -> Result<Response, HubError> {
    let params = q
        .map(|Query(m)| m)
        .map_err(|e| HubError::BadRequest(format!("bad query string: {e}")))?;
    let since = resume_from(&headers, &params)?;
    // An event stream counts as a connection of its user (429 beyond the limit).
    let permit = who.open_connection()?;
    let expires = who
        .time_left()
        .map(|left| tokio::time::Instant::now() + left);
    let cfg = state.hub.config().clone();
    let (outbox, mut rx) = Outbox::channel(cfg.outbound_frames, cfg.outbound_bytes);
    let conn_id = outbox.conn_id();
    // The stream keeps only the receiver: when the actor drops the subscriber (session deleted,
    // slow consumer) nothing else holds a sender and the stream ends.
    state
        .hub
        .subscribe(&who, &id, Subscriber { outbox }, since, None)
        .await?;
    state.hub.metrics().connection_gauge("sse").inc();
    let guard = Unsubscribe {
        hub: state.hub.clone(),
        who,
        session: id,
        conn_id,
        _permit: permit,
    };

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

/// Unsubscribes when the client goes away (the response stream is dropped).
struct Unsubscribe {
    hub: Hub,
    who: Principal,
    session: String,
    conn_id: u64,
    _permit: ConnPermit,
}

impl Drop for Unsubscribe {
    fn drop(&mut self) {
        self.hub.metrics().connection_gauge("sse").dec();
        let (hub, who, session, conn_id) = (
            self.hub.clone(),
            self.who.clone(),
            std::mem::take(&mut self.session),
            self.conn_id,
        );
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = hub.unsubscribe(&who, &session, conn_id).await;
            });
        }
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
    /// Its sender side is held by the session actor only.
    rx: OutboxReceiver,
    /// Cancelled at shutdown, after the actors drained: the stream ends after queued frames.
    stop: CancellationToken,
    phase: Phase,
    guard: Unsubscribe,
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
                        _ = until(self.expires) => {
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
            self.guard.hub.metrics().slow_consumer_closes.inc();
        }
        self.rx.close();
        self.phase = Phase::Draining { slow };
    }
}

async fn until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
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

/// A body that exceeded the request limit is `too_large`, in our JSON, like every other error.
fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, HubError> {
    body.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => HubError::TooLarge("the request body is too large".into()),
        _ => HubError::BadRequest(format!("unreadable body: {e}")),
    })
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
    let req = parse_send(&m, state.hub.config().max_text_chars)?;
    let ack = state.hub.send(&who, &id, req).await?;
    let rendered = wire::render(&Outbound::Ack(Box::new(AckReply {
        ack,
        reply_ref: None,
    })));
    let value: Value =
        serde_json::from_slice(&rendered).map_err(|e| HubError::Internal(e.to_string()))?;
    Ok(Json(value).into_response())
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
    let run_id = match m.get("run_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(HubError::BadRequest("`run_id` must be a string".into())),
    };
    state.hub.cancel(&who, &id, run_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
