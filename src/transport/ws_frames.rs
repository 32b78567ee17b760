//! Client frames of the WebSocket transport: parse, check in protocol order (shape, existence,
//! authorization, subscription, state), call the `Hub`, and queue the direct reply.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::ws::Conn;
use super::{wire, AppState};
use crate::config::BusyPolicy;
use crate::error::HubError;
use crate::session::event::Position;
use crate::session::hub::AckTo;
use crate::session::{Outbound, SendRequest, Subscriber};

/// Longest accepted `client_msg_id`.
const MAX_CLIENT_MSG_ID: usize = 256;

pub(crate) struct FrameHandler {
    conn: Arc<Conn>,
    state: AppState,
}

/// A frame's `ref` and `session`, echoed in its error reply.
struct Echo {
    reply_ref: Option<Value>,
    session: Option<String>,
}

impl FrameHandler {
    pub(crate) fn new(conn: Arc<Conn>, state: AppState) -> Self {
        FrameHandler { conn, state }
    }

    async fn reply(&self, bytes: bytes::Bytes) {
        let _ = self.conn.outbox.push(Outbound::Reply(bytes)).await;
    }

    async fn error(&self, err: HubError, echo: &Echo) {
        self.reply(wire::error_frame(
            &err,
            &echo.reply_ref,
            echo.session.as_deref(),
        ))
        .await;
    }

    pub(crate) async fn on_binary(&self) {
        let echo = Echo {
            reply_ref: None,
            session: None,
        };
        self.error(
            HubError::BadRequest("binary frames are not supported; send JSON text".into()),
            &echo,
        )
        .await;
    }

    pub(crate) async fn on_text(&mut self, text: &str) {
        let mut echo = Echo {
            reply_ref: None,
            session: None,
        };
        let obj = match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(o)) => o,
            Ok(_) => {
                return self
                    .error(
                        HubError::BadRequest("a frame must be a JSON object".into()),
                        &echo,
                    )
                    .await
            }
            Err(e) => {
                return self
                    .error(HubError::BadRequest(format!("malformed JSON: {e}")), &echo)
                    .await
            }
        };
        echo.session = obj
            .get("session")
            .and_then(Value::as_str)
            .map(str::to_owned);
        match obj.get("ref") {
            None => {}
            Some(r @ (Value::String(_) | Value::Number(_))) => echo.reply_ref = Some(r.clone()),
            Some(_) => {
                return self
                    .error(
                        HubError::BadRequest("`ref` must be a string or a number".into()),
                        &echo,
                    )
                    .await
            }
        }
        let kind = match obj.get("type") {
            Some(Value::String(t)) => t.clone(),
            Some(_) => {
                return self
                    .error(
                        HubError::BadRequest("`type` must be a string".into()),
                        &echo,
                    )
                    .await
            }
            None => {
                return self
                    .error(HubError::BadRequest("missing `type`".into()), &echo)
                    .await
            }
        };
        let result = match kind.as_str() {
            "subscribe" => self.subscribe(&obj, &echo).await,
            "unsubscribe" => self.unsubscribe(&obj, &echo).await,
            "send" => self.send(&obj, &echo).await,
            "cancel" => self.cancel(&obj).await,
            "ping" => {
                self.reply(wire::reply_frame("pong", &echo.reply_ref, None))
                    .await;
                Ok(())
            }
            other => Err(HubError::UnknownType(format!(
                "unknown frame type `{other}`"
            ))),
        };
        if let Err(e) = result {
            self.error(e, &echo).await;
        }
    }

    /// Existence before subscription: an unknown session is `not_found`, a known one that this
    /// connection has not joined is `not_subscribed`.
    fn require_subscribed(&self, session: &str) -> Result<(), HubError> {
        if self.conn.is_subscribed(session) {
            return Ok(());
        }
        if !self.state.hub.exists(&self.conn.principal, session)? {
            return Err(HubError::session_not_found());
        }
        Err(HubError::NotSubscribed)
    }

    fn forget_if_gone(&self, session: &str, err: &HubError) {
        if matches!(err, HubError::NotFound(_)) {
            self.conn.subs.lock().expect("subs lock").remove(session);
        }
    }

    async fn subscribe(&self, obj: &Map<String, Value>, echo: &Echo) -> Result<(), HubError> {
        let session = req_str(obj, "session")?;
        let since = match obj.get("since") {
            None | Some(Value::Null) => None,
            Some(v) => Some(parse_since(v)?),
        };
        {
            let subs = self.conn.subs.lock().expect("subs lock");
            if !subs.contains(session) && subs.len() >= self.state.hub.config().max_subscriptions {
                return Err(HubError::RateLimited(
                    "too many subscriptions on this connection".into(),
                ));
            }
        }
        let sub = Subscriber {
            outbox: self.conn.outbox.clone(),
        };
        self.state
            .hub
            .subscribe(
                &self.conn.principal,
                session,
                sub,
                since,
                echo.reply_ref.clone(),
            )
            .await?;
        self.conn
            .subs
            .lock()
            .expect("subs lock")
            .insert(session.to_owned());
        Ok(())
    }

    async fn unsubscribe(&self, obj: &Map<String, Value>, echo: &Echo) -> Result<(), HubError> {
        let session = req_str(obj, "session")?;
        self.require_subscribed(session)?;
        let r = self
            .state
            .hub
            .unsubscribe(&self.conn.principal, session, self.conn.outbox.conn_id())
            .await;
        self.conn.subs.lock().expect("subs lock").remove(session);
        r?;
        self.reply(wire::reply_frame(
            "unsubscribed",
            &echo.reply_ref,
            Some(session),
        ))
        .await;
        Ok(())
    }

    async fn send(&self, obj: &Map<String, Value>, echo: &Echo) -> Result<(), HubError> {
        let session = req_str(obj, "session")?;
        let mut req = parse_send(obj, self.state.hub.config().max_text_chars)?;
        self.require_subscribed(session)?;
        req.ack_to = Some(AckTo {
            conn_id: self.conn.outbox.conn_id(),
            reply_ref: echo.reply_ref.clone(),
        });
        // The actor queues the ack on this connection itself, before the `message` event.
        let r = self
            .state
            .hub
            .send(&self.conn.principal, session, req)
            .await;
        if let Err(e) = &r {
            self.forget_if_gone(session, e);
        }
        r.map(|_| ())
    }

    async fn cancel(&self, obj: &Map<String, Value>) -> Result<(), HubError> {
        let session = req_str(obj, "session")?;
        let run_id = match obj.get("run_id") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(HubError::BadRequest("`run_id` must be a string".into())),
        };
        self.require_subscribed(session)?;
        let r = self
            .state
            .hub
            .cancel(&self.conn.principal, session, run_id)
            .await;
        if let Err(e) = &r {
            self.forget_if_gone(session, e);
        }
        r
    }
}

/// The shape of a send, the same on every native transport: `client_msg_id` (1 to 256 bytes),
/// `text` (at most `max_text_chars`), optional `on_busy`.
pub(crate) fn parse_send(
    obj: &Map<String, Value>,
    max_text_chars: usize,
) -> Result<SendRequest, HubError> {
    let client_msg_id = req_str(obj, "client_msg_id")?;
    if client_msg_id.is_empty() || client_msg_id.len() > MAX_CLIENT_MSG_ID {
        return Err(HubError::BadRequest(format!(
            "`client_msg_id` must be 1 to {MAX_CLIENT_MSG_ID} bytes"
        )));
    }
    let text = req_str(obj, "text")?;
    let on_busy = match obj.get("on_busy") {
        None | Some(Value::Null) => None,
        Some(v) => Some(parse_busy(v)?),
    };
    if text.chars().count() > max_text_chars {
        return Err(HubError::TooLarge(format!(
            "`text` is longer than {max_text_chars} characters"
        )));
    }
    Ok(SendRequest {
        client_msg_id: client_msg_id.to_owned(),
        text: text.to_owned(),
        on_busy,
        ack_to: None,
    })
}

pub(crate) fn req_str<'a>(obj: &'a Map<String, Value>, field: &str) -> Result<&'a str, HubError> {
    match obj.get(field) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(HubError::BadRequest(format!("`{field}` must be a string"))),
        None => Err(HubError::BadRequest(format!("missing `{field}`"))),
    }
}

/// `since`: `{"epoch": string, "seq": non-negative integer}`.
pub(crate) fn parse_since(v: &Value) -> Result<Position, HubError> {
    let bad = || {
        HubError::BadRequest(
            "`since` must be {\"epoch\": string, \"seq\": non-negative integer}".into(),
        )
    };
    let o = v.as_object().ok_or_else(bad)?;
    let epoch = o.get("epoch").and_then(Value::as_str).ok_or_else(bad)?;
    let seq = o.get("seq").and_then(Value::as_u64).ok_or_else(bad)?;
    Ok(Position {
        epoch: epoch.to_owned(),
        seq,
    })
}

pub(crate) fn parse_busy(v: &Value) -> Result<BusyPolicy, HubError> {
    match v.as_str() {
        Some("queue") => Ok(BusyPolicy::Queue),
        Some("reject") => Ok(BusyPolicy::Reject),
        Some("interrupt") => Ok(BusyPolicy::Interrupt),
        _ => Err(HubError::BadRequest(
            "`on_busy` must be one of queue, reject, interrupt".into(),
        )),
    }
}
