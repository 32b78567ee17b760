//! Resolving a waiting tool call (PROTOCOL 1.1): `tool_result` for a `pending` client call,
//! `tool_approval` for an `awaiting_approval` server call. Idempotent by `call_id`: the same
//! frame again gets the original ack (`duplicate: true`), a different one `bad_request`. The
//! ack names the call's `tool.result` event and goes out only once it is durable: for an
//! approved call, once the tool has run.

use serde::Serialize;

use super::{Effect, SessionState};
use crate::domain::{Item, ItemStatus};
use crate::error::HubError;
use crate::session::event::{EventBody, ToolAck};
use crate::store::{CallRecord, Resolution, StoredItem, WriteBatch};

/// What a client says about a waiting call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Resolve {
    /// A client tool's result.
    Result { output: String, is_error: bool },
    /// A person's decision on a server tool call; `arguments` replaces the model's.
    Approval {
        approved: bool,
        arguments: Option<String>,
    },
}

impl Resolve {
    /// The canonical form a repeat is compared with.
    fn digest(&self) -> String {
        serde_json::to_string(self).expect("a resolution serialises")
    }

    fn resolves(&self, status: ItemStatus) -> bool {
        matches!(
            (self, status),
            (Resolve::Result { .. }, ItemStatus::Pending)
                | (Resolve::Approval { .. }, ItemStatus::AwaitingApproval)
        )
    }
}

/// How a resolution was taken.
#[derive(Debug)]
pub(crate) enum Resolved {
    /// Resolved the same way before: the original ack.
    Duplicate(ToolAck),
    /// The same approval again while the approved call still runs: its ack comes with the
    /// call's `tool.result`.
    Deferred,
    /// New: [`SessionState::commit_resolution`] it.
    New(Resolve),
}

impl SessionState {
    /// Decide a resolution of `call_id`, given what the store knows of the call.
    pub(crate) fn resolve(
        &self,
        call_id: &str,
        how: Resolve,
        record: Option<CallRecord>,
    ) -> Result<Resolved, HubError> {
        self.refuse_if_stopping()?;
        let Some(record) = record else {
            let streaming = self
                .active
                .iter()
                .flat_map(|r| r.calls.iter())
                .any(|c| c.call().call_id == call_id);
            return Err(if streaming {
                HubError::BadRequest(format!("tool call `{call_id}` is not waiting yet"))
            } else {
                HubError::NotFound(format!("no tool call `{call_id}` in this session"))
            });
        };
        if let Some(done) = record.resolved {
            if done.digest != how.digest() {
                return Err(HubError::BadRequest(format!(
                    "tool call `{call_id}` was already resolved otherwise"
                )));
            }
            return Ok(match (done.epoch, done.seq) {
                (Some(epoch), Some(seq)) => Resolved::Duplicate(ToolAck {
                    session: self.record.id.clone(),
                    call_id: call_id.to_owned(),
                    epoch,
                    seq,
                    duplicate: true,
                }),
                // Approved, and the tool is still running: the ack comes with its result.
                _ if self.is_running(call_id) => Resolved::Deferred,
                // Approved, but the tool never finished (a crash cut it: it came back
                // `interrupted`): there is no result to name.
                _ => {
                    return Err(HubError::BadRequest(format!(
                        "tool call `{call_id}` was approved but ended without a result"
                    )))
                }
            });
        }
        let status = self
            .waiting
            .iter()
            .flat_map(|w| w.calls.iter())
            .find(|c| c.call().call_id == call_id)
            .map(|c| c.item.status);
        match status {
            Some(s) if how.resolves(s) => Ok(Resolved::New(how)),
            Some(s) => Err(HubError::BadRequest(format!(
                "tool call `{call_id}` is {}, which this frame does not resolve",
                serde_json::to_value(s).expect("a status serialises")
            ))),
            None => Err(HubError::BadRequest(format!(
                "tool call `{call_id}` is not waiting for a result or an approval"
            ))),
        }
    }

    /// Queue the ack of `call_id`'s resolution, naming the next event (its `tool.result`).
    pub(super) fn ack_next_result(&mut self, call_id: &str) {
        self.effects.push_back(Effect::ToolAck(ToolAck {
            session: self.record.id.clone(),
            call_id: call_id.to_owned(),
            epoch: self.record.epoch.clone(),
            seq: self.record.head_seq + 1,
            duplicate: false,
        }));
    }

    /// Whether the approved call `call_id` is running now.
    fn is_running(&self, call_id: &str) -> bool {
        self.waiting
            .iter()
            .flat_map(|w| w.calls.iter())
            .any(|c| c.call().call_id == call_id && c.item.status == ItemStatus::Running)
    }

    /// Apply a new resolution: a result or a denial ends the call now (`tool.result`, its ack,
    /// and a continuation once nothing waits); an approval runs the tool, and the ack waits
    /// for its result.
    pub(crate) fn commit_resolution(&mut self, call_id: &str, how: Resolve) {
        let digest = how.digest();
        let w = self
            .waiting
            .as_mut()
            .expect("resolve() found the call waiting");
        let c = w
            .calls
            .iter_mut()
            .find(|c| c.call().call_id == call_id)
            .expect("resolve() found the call");
        match how {
            Resolve::Result { output, is_error } => {
                c.item.status = if is_error {
                    ItemStatus::Failed
                } else {
                    ItemStatus::Complete
                };
                c.call_mut().output = Some(output);
            }
            Resolve::Approval {
                approved: false, ..
            } => c.item.status = ItemStatus::Denied,
            Resolve::Approval {
                approved: true,
                arguments,
            } => {
                if let Some(a) = arguments {
                    c.call_mut().arguments = a;
                }
                c.item.status = ItemStatus::Running;
                let call = c.call().clone();
                let (item, ord) = (c.item.clone(), c.ord);
                w.approvals.push((call_id.to_owned(), digest.clone()));
                let id = self.record.id.clone();
                // Running: a crash brings it back `interrupted` (a streaming marker).
                self.write(WriteBatch {
                    items: vec![StoredItem { ord, item }],
                    streaming_started: vec![(id.clone(), ord)],
                    calls: vec![(
                        id,
                        call_id.to_owned(),
                        CallRecord {
                            ord,
                            resolved: Some(Resolution {
                                digest,
                                epoch: None,
                                seq: None,
                            }),
                        },
                    )],
                    ..Default::default()
                });
                self.effects.push_back(Effect::Barrier);
                self.effects.push_back(Effect::CallTool {
                    call_id: call.call_id,
                    name: call.name,
                    arguments: call.arguments,
                });
                return;
            }
        }
        let (item, ord, run_id) = (c.item.clone(), c.ord, w.run_id.clone());
        self.resolved_result(run_id, item, ord, call_id.to_owned(), Some(digest));
    }

    /// A waiting run's call has its result: stored with the position of its `tool.result`
    /// (for repeats of the resolving frame), durable, told, acknowledged; then a continuation
    /// if nothing else waits.
    pub(super) fn resolved_result(
        &mut self,
        run_id: String,
        item: Item,
        ord: u64,
        call_id: String,
        digest: Option<String>,
    ) {
        let digest = digest.or_else(|| {
            self.waiting
                .as_ref()
                .and_then(|w| w.approvals.iter().find(|(c, _)| *c == call_id))
                .map(|(_, d)| d.clone())
        });
        let (epoch, seq) = (self.record.epoch.clone(), self.record.head_seq + 1);
        let id = self.record.id.clone();
        let resolved = digest.map(|digest| Resolution {
            digest,
            epoch: Some(epoch.clone()),
            seq: Some(seq),
        });
        self.write(WriteBatch {
            session: Some(self.record.clone()),
            items: vec![StoredItem {
                ord,
                item: item.clone(),
            }],
            streaming_ended: vec![(id.clone(), ord)],
            calls: vec![(id.clone(), call_id.clone(), CallRecord { ord, resolved })],
            ..Default::default()
        });
        self.effects.push_back(Effect::Barrier);
        // On the resolving connection the ack goes just before the `tool.result` it names.
        self.ack_next_result(&call_id);
        self.emit(EventBody::ToolResult { run_id, item });
        self.maybe_continue();
    }
}
