//! Shared state (PROTOCOL 1.2): the session's JSON state document and its version. A change
//! from a client (`state_set`, `state_patch`, AG-UI's run input) is decided here, made durable
//! by the actor (the record carries the document), then committed: `state.snapshot` or
//! `state.delta` is sequenced like any event. A change by the model (the built-in server tool
//! `state__patch`) is applied within the run: the record is written and made durable before
//! `state.delta`, then the call's `tool.result` follows.

use serde_json::Value;

use super::{Call, Effect, SessionState};
use crate::domain::{now_rfc3339, ItemStatus};
use crate::error::HubError;
use crate::session::event::{EventBody, StateAck};
use crate::store::{SessionRecord, WriteBatch};
use crate::tools::{state_patch, ToolOutcome};

/// A change a client asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum StateChange {
    /// Replace the whole document (`state_set`); announced by `state.snapshot`.
    Replace(Value),
    /// Apply an RFC 6902 JSON Patch (`state_patch`); announced by `state.delta`.
    Patch(Value),
}

/// A change decided but not yet durable: nothing in the state changed for it.
#[derive(Debug)]
pub(crate) struct NewState {
    /// What must be durable before the change is announced: the record with the document.
    pub(crate) batch: WriteBatch,
    record: SessionRecord,
    body: EventBody,
}

impl SessionState {
    /// Decide a client's change. `base` is the version it replaces (`state_set`,
    /// `state_patch`): another version is `conflict`. Without a base (AG-UI's run input, which
    /// carries no version) the client's document is adopted whatever the version, and one
    /// equal to the current document changes nothing (`Ok(None)`). Checks run shape first
    /// (`bad_request`, `too_large`), then the version, then the patch against the document.
    pub(crate) fn decide_state(
        &self,
        change: StateChange,
        base: Option<u64>,
    ) -> Result<Option<NewState>, HubError> {
        self.refuse_if_stopping()?;
        let current = self.record.state_version;
        let check_base = || match base {
            Some(b) if b != current => Err(HubError::Conflict(format!(
                "the state is at version {current}, not {b}: read it again and retry"
            ))),
            _ => Ok(()),
        };
        let (doc, body) = match change {
            StateChange::Replace(doc) => {
                check_document(&doc, self.rules.state_max_bytes)?;
                check_base()?;
                (doc, None)
            }
            StateChange::Patch(patch) => {
                state_patch::parse(&patch).map_err(HubError::BadRequest)?;
                check_base()?;
                let Some(doc) = self.record.state.as_ref() else {
                    return Err(HubError::BadRequest(
                        "the session has no state to patch: set one first".into(),
                    ));
                };
                let doc = state_patch::apply(doc, &patch).map_err(HubError::BadRequest)?;
                check_document(&doc, self.rules.state_max_bytes)?;
                (doc, Some(patch))
            }
        };
        if base.is_none() && self.record.state.as_ref() == Some(&doc) {
            return Ok(None);
        }
        let mut record = self.record.clone();
        record.state_version += 1;
        record.updated_at = now_rfc3339();
        let version = record.state_version;
        let body = match body {
            Some(patch) => EventBody::StateDelta { patch, version },
            None => EventBody::StateSnapshot {
                state: doc.clone(),
                version,
            },
        };
        record.state = Some(doc);
        Ok(Some(NewState {
            batch: WriteBatch {
                session: Some(record.clone()),
                ..Default::default()
            },
            record,
            body,
        }))
    }

    /// The change is durable: its event is sequenced; the ack names it.
    pub(crate) fn commit_state(&mut self, new: NewState) -> StateAck {
        let NewState { record, body, .. } = new;
        // Keep the head seq events moved; take the document from the written record.
        self.record.state = record.state;
        self.record.state_version = record.state_version;
        self.record.updated_at = record.updated_at;
        self.emit(body);
        StateAck {
            session: self.record.id.clone(),
            state_version: self.record.state_version,
            epoch: self.record.epoch.clone(),
            seq: self.record.head_seq,
            duplicate: false,
        }
    }

    /// Start the active turn's running server calls: MCP tools as `CallTool` effects (their
    /// outcomes come back later), `state__patch` in-process now, in the order the model made
    /// them (the last outcome may start the next turn). False when no call runs.
    pub(super) fn run_server_calls(&mut self) -> bool {
        let run = self.active.as_ref().expect("a run is active");
        let running = run
            .calls
            .iter()
            .filter(|c| c.item.status == ItemStatus::Running);
        let (in_process, starts): (Vec<&Call>, Vec<&Call>) =
            running.partition(|c| state_patch::is_state_tool(&c.call().name));
        let starts: Vec<Effect> = starts
            .into_iter()
            .map(|c| Effect::CallTool {
                call_id: c.call().call_id.clone(),
                name: c.call().name.clone(),
                arguments: c.call().arguments.clone(),
            })
            .collect();
        let in_process: Vec<(String, String)> = in_process
            .into_iter()
            .map(|c| (c.call().call_id.clone(), c.call().arguments.clone()))
            .collect();
        if starts.is_empty() && in_process.is_empty() {
            return false;
        }
        self.effects.extend(starts);
        for (call_id, arguments) in in_process {
            let outcome = self.run_state_patch(&arguments);
            self.on_tool_outcome(&call_id, outcome);
        }
        true
    }

    /// The model called `state__patch` with `arguments` (`{"patch":[...]}`): the patched
    /// document is written and made durable, `state.delta` announces it, and the call's
    /// outcome is a short confirmation. A patch that is malformed, does not apply, would make
    /// the document too large or finds no document fails the call and changes nothing.
    pub(super) fn run_state_patch(&mut self, arguments: &str) -> ToolOutcome {
        let failed = |output: String| ToolOutcome {
            output,
            is_error: true,
        };
        let Some(doc) = self.record.state.as_ref() else {
            return failed("this session has no shared state to patch".into());
        };
        let patched = state_patch::patch_from_arguments(arguments).and_then(|patch| {
            let doc = state_patch::apply(doc, &patch)?;
            check_document(&doc, self.rules.state_max_bytes).map_err(|e| e.to_string())?;
            Ok((patch, doc))
        });
        let (patch, doc) = match patched {
            Ok(p) => p,
            Err(e) => return failed(e),
        };
        self.record.state = Some(doc);
        self.record.state_version += 1;
        self.record.updated_at = now_rfc3339();
        let version = self.record.state_version;
        self.persist_record();
        self.effects.push_back(Effect::Barrier);
        self.emit(EventBody::StateDelta { patch, version });
        ToolOutcome {
            output: format!("the state is now at version {version}"),
            is_error: false,
        }
    }
}

/// A state document is a JSON object of at most `max_bytes` serialised.
pub(crate) fn check_document(doc: &Value, max_bytes: usize) -> Result<(), HubError> {
    if !doc.is_object() {
        return Err(HubError::BadRequest(
            "the state must be a JSON object".into(),
        ));
    }
    let len = serde_json::to_vec(doc).map_or(usize::MAX, |v| v.len());
    if len > max_bytes {
        return Err(HubError::TooLarge(format!(
            "the state takes {len} bytes; the limit is {max_bytes}"
        )));
    }
    Ok(())
}
