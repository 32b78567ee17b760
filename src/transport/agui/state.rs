//! Shared state on an AG-UI stream (PROTOCOL 1.2): the request's `state` is adopted as the
//! thread's document at the run's start, `STATE_SNAPSHOT` follows `RUN_STARTED`, and the
//! thread's `state.snapshot` / `state.delta` events (a `state__patch` call, another tab's
//! `state_set`) become `STATE_SNAPSHOT` / `STATE_DELTA`. A state event that comes while a
//! text message or tool call is open is held until it ends (0.0.59 refuses anything else
//! inside one).

use bytes::Bytes;
use serde_json::Value;

use super::events::AguiEvent;
use super::input::RunInput;
use super::render::Out;
use crate::domain::now_ms;
use crate::error::HubError;
use crate::session::event::EventBody;
use crate::session::{Caller, Hub, StateChange};

/// The document the stream opens with, and the state frames waiting for an open message to end.
#[derive(Debug, Default)]
pub(super) struct Opening {
    /// `None` when the thread has no state: no `STATE_SNAPSHOT` opens the stream.
    doc: Option<Value>,
    /// State events up to this version are part of `doc`.
    version: u64,
    held: Vec<Bytes>,
}

/// Adopt the request's `state` (its client's document wins: AG-UI carries no version), then
/// read the document the stream opens with. The subscription is already open, so every later
/// change comes as an event with a higher version.
pub(super) async fn adopt(
    hub: &Hub,
    caller: &Caller,
    thread: &str,
    input: &RunInput,
) -> Result<Opening, HubError> {
    if let Some(doc) = &input.state {
        hub.set_state(caller, thread, StateChange::Replace(doc.clone()), None)
            .await?;
    }
    let (doc, version) = hub.get_state(caller, thread).await?;
    Ok(Opening {
        doc,
        version,
        held: Vec::new(),
    })
}

impl Opening {
    /// `STATE_SNAPSHOT` right after `RUN_STARTED`, when the thread has state. False when the
    /// client is gone.
    pub(super) async fn open(&mut self, out: &mut Out) -> bool {
        match self.doc.take() {
            Some(doc) => {
                out.event(AguiEvent::StateSnapshot {
                    snapshot: &doc,
                    timestamp: now_ms(),
                })
                .await
            }
            None => true,
        }
    }

    /// A state event as its AG-UI event: `None` for any other event; `Some(false)` when the
    /// client is gone.
    pub(super) async fn render(&mut self, body: &EventBody, out: &mut Out) -> Option<bool> {
        let (frame, version) = match body {
            EventBody::StateSnapshot { state, version } => (
                AguiEvent::StateSnapshot {
                    snapshot: state,
                    timestamp: now_ms(),
                }
                .frame(),
                *version,
            ),
            EventBody::StateDelta { patch, version } => (
                AguiEvent::StateDelta {
                    delta: patch,
                    timestamp: now_ms(),
                }
                .frame(),
                *version,
            ),
            _ => return None,
        };
        if version <= self.version {
            return Some(true);
        }
        self.version = version;
        self.held.push(frame);
        Some(self.flush(out).await)
    }

    /// Send the held state frames once no message or tool call is open.
    pub(super) async fn flush(&mut self, out: &mut Out) -> bool {
        if out.in_message() {
            return true;
        }
        for frame in std::mem::take(&mut self.held) {
            if !out.send(frame).await {
                return false;
            }
        }
        true
    }
}
