//! Client frames of the WebSocket transport: parse, check in protocol order (shape, existence,
//! authorization, subscription, state), call the `Hub`, and queue the direct reply. The shape
//! checks ([`parse`]) come before any `Hub` call and need no session, so the fuzz target
//! `ws_client_frame` runs them as they are.

use std::sync::Arc;

use serde_json::Value;

use std::collections::HashMap;

use super::ws::Conn;
use super::{wire, AppState};
use crate::domain::Position;
use crate::error::HubError;
use crate::session::{Outbound, SendRequest, Subscription, ToolResolution};

/// Owned by the connection's reader task: the subscriptions end when it does.
pub(crate) struct FrameHandler {
    conn: Arc<Conn>,
    state: AppState,
    /// This connection's sessions. Dropping one ends it; one the session ended itself
    /// (deleted) is noticed by `is_ended` and forgotten on the next frame naming it.
    subs: HashMap<String, Subscription>,
}

/// A frame's `ref` and `session`, echoed in its error reply.
#[derive(Debug, Default)]
pub(crate) struct Echo {
    pub(crate) reply_ref: Option<Value>,
    pub(crate) session: Option<String>,
}

/// A client frame whose shape passed the checks: what the `Hub` is then asked.
#[derive(Debug)]
pub(crate) enum Frame {
    Subscribe {
        session: String,
        since: Option<Position>,
    },
    Unsubscribe {
        session: String,
    },
    Send {
        session: String,
        req: SendRequest,
    },
    Cancel {
        session: String,
        run_id: Option<String>,
    },
    /// `tool_result` or `tool_approval`.
    ResolveTool {
        session: String,
        call_id: String,
        how: ToolResolution,
    },
    /// `state_set` or `state_patch` (PROTOCOL 1.2).
    SetState {
        session: String,
        change: crate::session::StateChange,
        base: u64,
    },
    Ping,
}

/// The text of a client message, checked in protocol order as far as no session is needed:
/// a JSON object, `ref`, `type`, then the type's fields. The echo (`ref`, `session`) comes
/// back whatever the outcome, for the error reply.
pub(crate) fn parse(text: &str, max_text_chars: usize) -> (Echo, Result<Frame, HubError>) {
    let mut echo = Echo::default();
    let obj = match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(o)) => o,
        Ok(_) => {
            let e = HubError::BadRequest("a frame must be a JSON object".into());
            return (echo, Err(e));
        }
        Err(e) => {
            return (
                echo,
                Err(HubError::BadRequest(format!("malformed JSON: {e}"))),
            )
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
            let e = HubError::BadRequest("`ref` must be a string or a number".into());
            return (echo, Err(e));
        }
    }
    let kind = match obj.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(_) => {
            let e = HubError::BadRequest("`type` must be a string".into());
            return (echo, Err(e));
        }
        None => return (echo, Err(HubError::BadRequest("missing `type`".into()))),
    };
    let session = || wire::req_str(&obj, "session").map(str::to_owned);
    let frame = match kind {
        "subscribe" => session().and_then(|session| {
            let since = match obj.get("since") {
                None | Some(Value::Null) => None,
                Some(v) => Some(wire::parse_since(v)?),
            };
            Ok(Frame::Subscribe { session, since })
        }),
        "unsubscribe" => session().map(|session| Frame::Unsubscribe { session }),
        "send" => session().and_then(|session| {
            let req = wire::send_request(&obj, max_text_chars)?;
            Ok(Frame::Send { session, req })
        }),
        "cancel" => session().and_then(|session| {
            let run_id = wire::opt_str(&obj, "run_id")?;
            Ok(Frame::Cancel { session, run_id })
        }),
        "tool_result" | "tool_approval" => session().and_then(|session| {
            let (call_id, how) = wire::tool_resolution(&obj, kind == "tool_approval")?;
            Ok(Frame::ResolveTool {
                session,
                call_id,
                how,
            })
        }),
        "state_set" | "state_patch" => session().and_then(|session| {
            let (change, base) = super::state::change(&obj, kind == "state_patch")?;
            Ok(Frame::SetState {
                session,
                change,
                base,
            })
        }),
        "ping" => Ok(Frame::Ping),
        other => Err(HubError::UnknownType(format!(
            "unknown frame type `{other}`"
        ))),
    };
    (echo, frame)
}

impl FrameHandler {
    pub(crate) fn new(conn: Arc<Conn>, state: AppState) -> Self {
        FrameHandler {
            conn,
            state,
            subs: HashMap::new(),
        }
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
        self.error(
            HubError::BadRequest("binary frames are not supported; send JSON text".into()),
            &Echo::default(),
        )
        .await;
    }

    pub(crate) async fn on_text(&mut self, text: &str) {
        let (echo, frame) = parse(text, self.state.hub.config().max_text_chars);
        let result = match frame {
            Ok(Frame::Subscribe { session, since }) => self.subscribe(&session, since, &echo).await,
            Ok(Frame::Unsubscribe { session }) => self.unsubscribe(&session, &echo).await,
            Ok(Frame::Send { session, req }) => self.send(&session, req, &echo).await,
            Ok(Frame::Cancel { session, run_id }) => self.cancel(&session, run_id).await,
            Ok(Frame::ResolveTool {
                session,
                call_id,
                how,
            }) => self.resolve_tool(&session, call_id, how, &echo).await,
            Ok(Frame::SetState {
                session,
                change,
                base,
            }) => {
                // The actor queues the ack on this connection, before the state event.
                let reply_ref = echo.reply_ref.clone();
                match self.subscribed(&session) {
                    Ok(sub) => sub.set_state(change, base, reply_ref).await,
                    Err(e) => Err(e),
                }
            }
            Ok(Frame::Ping) => {
                self.reply(wire::reply_frame("pong", &echo.reply_ref, None))
                    .await;
                Ok(())
            }
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            self.error(e, &echo).await;
        }
    }

    /// The connection's live subscription to `session`, in protocol order: an unknown
    /// session (or one deleted under us) is `not_found`, a known one this connection has not
    /// joined is `not_subscribed`.
    fn subscribed(&mut self, session: &str) -> Result<&Subscription, HubError> {
        if self.subs.get(session).is_some_and(Subscription::is_ended) {
            self.subs.remove(session);
            return Err(HubError::session_not_found());
        }
        if !self.subs.contains_key(session) {
            if !self
                .state
                .hub
                .exists(self.conn.principal.caller(), session)?
            {
                return Err(HubError::session_not_found());
            }
            return Err(HubError::NotSubscribed);
        }
        Ok(&self.subs[session])
    }

    async fn subscribe(
        &mut self,
        session: &str,
        since: Option<Position>,
        echo: &Echo,
    ) -> Result<(), HubError> {
        self.subs.retain(|_, s| !s.is_ended());
        if !self.subs.contains_key(session)
            && self.subs.len() >= self.state.hub.config().max_subscriptions
        {
            return Err(HubError::RateLimited(
                "too many subscriptions on this connection".into(),
            ));
        }
        // A fresh subscribe replaces the old one (the actor starts this connection afresh).
        let sub = self
            .state
            .hub
            .subscribe(
                self.conn.principal.caller(),
                session,
                self.conn.outbox.clone(),
                since,
                echo.reply_ref.clone(),
            )
            .await?;
        self.subs.insert(session.to_owned(), sub);
        Ok(())
    }

    async fn unsubscribe(&mut self, session: &str, echo: &Echo) -> Result<(), HubError> {
        self.subscribed(session)?;
        let sub = self.subs.remove(session).expect("checked above");
        sub.unsubscribe().await?;
        self.reply(wire::reply_frame(
            "unsubscribed",
            &echo.reply_ref,
            Some(session),
        ))
        .await;
        Ok(())
    }

    async fn send(&mut self, session: &str, req: SendRequest, echo: &Echo) -> Result<(), HubError> {
        // The actor queues the ack on this connection itself, before the `message` event.
        self.subscribed(session)?
            .send(req, echo.reply_ref.clone())
            .await
    }

    /// `tool_result` / `tool_approval`: the ack is queued by the actor before the call's
    /// `tool.result`.
    async fn resolve_tool(
        &mut self,
        session: &str,
        call_id: String,
        how: ToolResolution,
        echo: &Echo,
    ) -> Result<(), HubError> {
        self.subscribed(session)?
            .resolve_tool(call_id, how, echo.reply_ref.clone())
            .await
    }

    async fn cancel(&mut self, session: &str, run_id: Option<String>) -> Result<(), HubError> {
        self.subscribed(session)?.cancel(run_id).await
    }
}
