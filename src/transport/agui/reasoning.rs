//! Reasoning items (PROTOCOL 1.2) as AG-UI reasoning events: `REASONING_START` and
//! `REASONING_MESSAGE_START` when the item starts, `REASONING_MESSAGE_CONTENT` per
//! `reasoning.delta`, `REASONING_MESSAGE_END` and `REASONING_END` when it ends (or, at the
//! latest, before the run's end). The span and the message are both named by the item's id.
//! @ag-ui/client 0.0.59 and 1.0.0 verify these the same way, so both get them.

use super::events::AguiEvent;
use super::render::Out;
use crate::domain::Role;
use crate::session::event::EventBody;

impl Out {
    /// Render `body` if it is reasoning: `Some(false)` when the client is gone, `None` for any
    /// other event.
    pub(super) async fn reasoning(&mut self, body: &EventBody, timestamp: i64) -> Option<bool> {
        Some(match body {
            EventBody::ItemStarted { item, .. } if item.role == Role::Reasoning => {
                self.reasoning_end(None, timestamp).await
                    && self.reasoning_start(&item.id, timestamp).await
            }
            EventBody::ReasoningDelta { item_id, text, .. } => {
                if text.is_empty() || self.thinking.as_deref() != Some(item_id.as_str()) {
                    return Some(true);
                }
                self.event(AguiEvent::ReasoningMessageContent {
                    message_id: item_id,
                    delta: text,
                    timestamp,
                })
                .await
            }
            EventBody::ItemCompleted { item, .. } if item.role == Role::Reasoning => {
                self.reasoning_end(Some(&item.id), timestamp).await
            }
            _ => return None,
        })
    }

    async fn reasoning_start(&mut self, message_id: &str, timestamp: i64) -> bool {
        self.thinking = Some(message_id.to_owned());
        self.event(AguiEvent::ReasoningStart {
            message_id,
            timestamp,
        })
        .await
            && self
                .event(AguiEvent::ReasoningMessageStart {
                    message_id,
                    role: "reasoning",
                    timestamp,
                })
                .await
    }

    /// Close the open reasoning item if it is `message_id` (any open one for `None`).
    pub(super) async fn reasoning_end(&mut self, message_id: Option<&str>, timestamp: i64) -> bool {
        let Some(id) = self
            .thinking
            .take_if(|m| message_id.is_none_or(|id| id == m))
        else {
            return true;
        };
        self.event(AguiEvent::ReasoningMessageEnd {
            message_id: &id,
            timestamp,
        })
        .await
            && self
                .event(AguiEvent::ReasoningEnd {
                    message_id: &id,
                    timestamp,
                })
                .await
    }
}
