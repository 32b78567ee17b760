//! How a request's runs ended, for the event that closes its AG-UI run: the first failure, a
//! cancellation, and the calls the last run left waiting, which `RUN_FINISHED.outcome` names.

use serde_json::json;

use super::events::{Interrupt, Outcome};

/// A server call waiting for a person's approval, told as an interrupt.
#[derive(Debug, Clone)]
pub(super) struct Approval {
    pub(super) call_id: String,
    pub(super) name: String,
}

/// How the request's runs ended, for the closing event.
#[derive(Default)]
pub(super) struct Ending {
    /// The first failure: `(code, message)`.
    pub(super) failed: Option<(String, String)>,
    pub(super) cancelled: bool,
    /// Client calls the last run ended waiting for.
    pending_calls: Vec<String>,
    /// Server calls the last run ended waiting on a person's approval.
    approvals: Vec<Approval>,
}

impl Ending {
    /// `RUN_FINISHED.outcome`: calls awaiting approval as interrupts (both client lines know
    /// them); for 1.0 clients also a cancelled run, and the client calls left pending.
    pub(super) fn outcome(&self, v1: bool) -> Option<Outcome> {
        if v1 && self.cancelled {
            return Some(Outcome::Cancelled);
        }
        if !self.approvals.is_empty() {
            let interrupts = self.approvals.iter().map(|a| Interrupt {
                id: a.call_id.clone(),
                reason: "tool_call",
                message: format!("The tool `{}` waits for your approval.", a.name),
                tool_call_id: a.call_id.clone(),
                response_schema: json!({
                    "type": "object",
                    "properties": {
                        "approved": {"type": "boolean"},
                        "arguments": {"type": "object"}
                    },
                    "required": ["approved"]
                }),
            });
            return Some(Outcome::Interrupt {
                interrupts: interrupts.collect(),
            });
        }
        (v1 && !self.pending_calls.is_empty()).then(|| Outcome::Success {
            pending_tool_call_ids: self.pending_calls.clone(),
        })
    }

    /// What the last run left waiting.
    pub(super) fn waiting(&mut self, pending_calls: Vec<String>, approvals: Vec<Approval>) {
        self.pending_calls = pending_calls;
        self.approvals = approvals;
    }

    /// A call ended (resolved, cancelled): it no longer waits.
    pub(super) fn forget(&mut self, call_id: &str) {
        self.pending_calls.retain(|c| c != call_id);
        self.approvals.retain(|a| a.call_id != call_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn approval(id: &str) -> Approval {
        Approval {
            call_id: id.into(),
            name: "py__echo".into(),
        }
    }

    #[test]
    fn the_outcome_fits_the_client_line() {
        let mut e = Ending::default();
        assert_eq!((e.outcome(true), e.outcome(false)), (None, None));
        e.waiting(vec!["c1".into()], Vec::new());
        // 0.0.59 rejects pendingToolCallIds: it finds the calls in the stream itself.
        assert_eq!(e.outcome(false), None);
        assert_eq!(
            e.outcome(true),
            Some(Outcome::Success {
                pending_tool_call_ids: vec!["c1".into()]
            })
        );
        e.waiting(vec!["c1".into()], vec![approval("c2")]);
        for v1 in [true, false] {
            let Some(Outcome::Interrupt { interrupts }) = e.outcome(v1) else {
                panic!("an interrupt for {v1}");
            };
            assert_eq!(interrupts.len(), 1);
            assert_eq!(
                (
                    interrupts[0].id.as_str(),
                    interrupts[0].tool_call_id.as_str()
                ),
                ("c2", "c2")
            );
            assert_eq!(interrupts[0].reason, "tool_call");
        }
        e.forget("c2");
        e.forget("c1");
        assert_eq!(e.outcome(true), None);
        e.cancelled = true;
        assert_eq!(e.outcome(true), Some(Outcome::Cancelled));
    }
}
