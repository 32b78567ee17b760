//! Client frames of the WebSocket transport: parse, check in protocol order (shape, existence,
//! authorization, subscription, state), call the `Hub`, and queue the direct reply.

use std::sync::Arc;

use serde_json::{Map, Value};

use std::collections::HashMap;

use super::ws::Conn;
use super::{wire, AppState};
use crate::error::HubError;
use crate::session::{Outbound, Subscription};

/// Owned by the connection's reader task: the subscriptions end when it does.
pub(crate) struct FrameHandler {
    conn: Arc<Conn>,
    state: AppState,
    /// This connection's sessions. Dropping one ends it; one the session ended itself
    /// (deleted) is noticed by `is_ended` and forgotten on the next frame naming it.
    subs: HashMap<String, Subscription>,
}

/// A frame's `ref` and `session`, echoed in its error reply.
struct Echo {
    reply_ref: Option<Value>,
    session: Option<String>,
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
            "tool_result" => self.resolve_tool(&obj, false, &echo).await,
            "tool_approval" => self.resolve_tool(&obj, true, &echo).await,
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

    async fn subscribe(&mut self, obj: &Map<String, Value>, echo: &Echo) -> Result<(), HubError> {
        let session = wire::req_str(obj, "session")?;
        let since = match obj.get("since") {
            None | Some(Value::Null) => None,
            Some(v) => Some(wire::parse_since(v)?),
        };
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

    async fn unsubscribe(&mut self, obj: &Map<String, Value>, echo: &Echo) -> Result<(), HubError> {
        let session = wire::req_str(obj, "session")?;
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

    async fn send(&mut self, obj: &Map<String, Value>, echo: &Echo) -> Result<(), HubError> {
        let session = wire::req_str(obj, "session")?;
        let req = wire::send_request(obj, self.state.hub.config().max_text_chars)?;
        // The actor queues the ack on this connection itself, before the `message` event.
        self.subscribed(session)?
            .send(req, echo.reply_ref.clone())
            .await
    }

    /// `tool_result` / `tool_approval`: the ack is queued by the actor before the call's
    /// `tool.result`.
    async fn resolve_tool(
        &mut self,
        obj: &Map<String, Value>,
        approval: bool,
        echo: &Echo,
    ) -> Result<(), HubError> {
        let session = wire::req_str(obj, "session")?;
        let (call_id, how) = wire::tool_resolution(obj, approval)?;
        self.subscribed(session)?
            .resolve_tool(call_id, how, echo.reply_ref.clone())
            .await
    }

    async fn cancel(&mut self, obj: &Map<String, Value>) -> Result<(), HubError> {
        let session = wire::req_str(obj, "session")?;
        let run_id = wire::opt_str(obj, "run_id")?;
        self.subscribed(session)?.cancel(run_id).await
    }
}
