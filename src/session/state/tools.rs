//! Tool calls inside a run (PROTOCOL 1.1): a model turn's calls stream in as tool items, the
//! turn's end decides each call's fate (run it, wait for a client, wait for an approval),
//! server results go back to the model in a next turn of the same run, and a run that ends
//! with calls waiting leaves them in `Waiting` until they are resolved (then a continuation
//! run answers) or cancelled.

use super::run::{Next, Outcome};
use super::waiting::cancelled_record;
use super::{Call, Checkpoint, Effect, SessionState, ToolPolicy};
use crate::domain::{new_id, now_rfc3339, Executor, Item, ItemStatus, Role, ToolCall};
use crate::session::event::{EventBody, RunError};
use crate::store::{CallRecord, Resolution, StoredItem, WaitingRun, WriteBatch};
use crate::tools::{state_patch, ToolOutcome};

impl SessionState {
    /// The model started a call: a tool item, streaming its arguments, announced by
    /// `tool.started`. A name the hub does not run is a client tool if the message declared
    /// it; any other name fails at the end of the turn.
    pub(crate) fn on_tool_started(
        &mut self,
        call_id: String,
        name: String,
        tools: &dyn ToolPolicy,
    ) {
        let Some(run) = self.active.as_mut() else {
            return;
        };
        if run.in_tools || run.calls.iter().any(|c| c.call().call_id == call_id) {
            return;
        }
        // The turn's reasoning is over once it calls a tool.
        self.end_reasoning(ItemStatus::Complete);
        let run = self.active.as_mut().expect("checked above");
        let server = tools.is_server_tool(&name) || state_patch::is_state_tool(&name);
        let executor = if !server && run.client_tools.iter().any(|t| t.name == name) {
            Executor::Client
        } else {
            Executor::Server
        };
        let item = Item {
            run_id: Some(run.run_id.clone()),
            reply_to: Some(run.reply_to.clone()),
            call: Some(ToolCall {
                parent_id: run.item.id.clone(),
                call_id,
                name,
                arguments: String::new(),
                executor,
                output: None,
            }),
            ..Item::new(
                new_id("itm"),
                Role::Tool,
                String::new(),
                ItemStatus::Streaming,
                now_rfc3339(),
            )
        };
        let ord = self.record.next_ord;
        self.record.next_ord += 1;
        run.calls.push(Call {
            item: item.clone(),
            ord,
        });
        let run_id = run.run_id.clone();
        self.write_streaming(ord, &item);
        self.emit(EventBody::ToolStarted { run_id, item });
    }

    /// The next fragment of a call's arguments, fanned out as `tool.delta`.
    pub(crate) fn on_tool_delta(&mut self, call_id: &str, arguments: String) {
        let Some(run) = self.active.as_mut() else {
            return;
        };
        if arguments.is_empty() || run.in_tools {
            return;
        }
        let Some(call) = run.calls.iter_mut().find(|c| c.call().call_id == call_id) else {
            return;
        };
        call.call_mut().arguments.push_str(&arguments);
        let body = EventBody::ToolDelta {
            run_id: run.run_id.clone(),
            item_id: call.item.id.clone(),
            arguments,
        };
        self.emit(body);
    }

    /// The turn ended with calls. Each gets its fate: a server tool runs (or first awaits
    /// approval), a client tool is pending, an unknown name fails. The items are durable before
    /// `tool.called`; then the turn's assistant item completes (`item.completed`) unless the
    /// run ends here, with calls waiting (`run.completed` with `pending_tool_calls`).
    pub(super) fn end_turn_with_calls(&mut self, tools: &dyn ToolPolicy) {
        let id = self.record.id.clone();
        let run = self.active.as_mut().expect("a turn ends in a run");
        run.in_tools = true;
        let mut calls = Vec::new();
        let mut ended = vec![(id.clone(), run.ord)];
        for c in &mut run.calls {
            let (status, output, resolved) = match c.call().executor {
                Executor::Client => (ItemStatus::Pending, None, None),
                // The built-in state tool runs in-process and never waits for an approval.
                Executor::Server if state_patch::is_state_tool(&c.call().name) => {
                    (ItemStatus::Running, None, None)
                }
                Executor::Server if !tools.is_server_tool(&c.call().name) => {
                    let msg = format!("no tool named `{}` is available", c.call().name);
                    (ItemStatus::Failed, Some(msg), Some("failed"))
                }
                Executor::Server if tools.needs_approval(&c.call().name) => {
                    (ItemStatus::AwaitingApproval, None, None)
                }
                Executor::Server => (ItemStatus::Running, None, None),
            };
            c.item.status = status;
            c.call_mut().output = output;
            if status != ItemStatus::Running {
                ended.push((id.clone(), c.ord));
            }
            let resolved = resolved.map(|d| Resolution {
                digest: d.into(),
                epoch: None,
                seq: None,
            });
            calls.push((
                id.clone(),
                c.call().call_id.clone(),
                CallRecord {
                    ord: c.ord,
                    resolved,
                },
            ));
        }
        let running = run
            .calls
            .iter()
            .filter(|c| c.item.status == ItemStatus::Running)
            .count();
        let waiting = run
            .calls
            .iter()
            .filter(|c| c.item.status.is_waiting())
            .count();
        let ends_here = running == 0 && waiting > 0;
        // Written with this turn's calls even while its server calls still run, so a crash in
        // that window keeps the calls that wait for a client or an approval resolvable.
        if waiting > 0 {
            self.record.waiting = Some(WaitingRun {
                run_id: run.run_id.clone(),
                reply_to: run.reply_to.clone(),
                reply_ord: run.reply_ord,
                call_ords: run.calls.iter().map(|c| c.ord).collect(),
            });
        }
        let mut items = vec![StoredItem {
            ord: run.ord,
            item: run.item.clone(),
        }];
        items.extend(run.calls.iter().map(|c| StoredItem {
            ord: c.ord,
            item: c.item.clone(),
        }));
        let (run_id, assistant) = (run.run_id.clone(), run.item.clone());
        let called: Vec<Item> = run.calls.iter().map(|c| c.item.clone()).collect();
        self.effects.push_back(Effect::StopAgent);
        self.effects.push_back(Effect::SettleCheckpoints {
            ord: assistant_ord(self),
        });
        self.write(WriteBatch {
            session: Some(self.record.clone()),
            items,
            streaming_ended: ended,
            calls,
            ..Default::default()
        });
        self.effects.push_back(Effect::Barrier);
        for item in &called {
            self.emit(EventBody::ToolCalled {
                run_id: run_id.clone(),
                item: item.clone(),
            });
        }
        for item in called.iter().filter(|i| i.status == ItemStatus::Failed) {
            self.emit(EventBody::ToolResult {
                run_id: run_id.clone(),
                item: item.clone(),
            });
        }
        if ends_here {
            self.end_with_waiting();
            return;
        }
        self.emit(EventBody::ItemCompleted {
            run_id: run_id.clone(),
            item: assistant,
        });
        if !self.run_server_calls() {
            self.after_tools();
        }
    }

    /// A server tool call finished. In the active run: its `tool.result`, then, once no call
    /// of the turn runs, the next model turn (or the run's end, with calls waiting). Approved
    /// after its run ended: durable first (the approval's ack names its `tool.result`), then
    /// a continuation run once nothing is left waiting.
    pub(crate) fn on_tool_outcome(&mut self, call_id: &str, outcome: ToolOutcome) {
        let status = if outcome.is_error {
            ItemStatus::Failed
        } else {
            ItemStatus::Complete
        };
        let id = self.record.id.clone();
        if let Some(run) = self.active.as_mut() {
            if let Some(c) = run
                .calls
                .iter_mut()
                .find(|c| c.call().call_id == call_id && c.item.status == ItemStatus::Running)
            {
                c.item.status = status;
                c.call_mut().output = Some(outcome.output);
                let (item, ord, run_id) = (c.item.clone(), c.ord, run.run_id.clone());
                self.write(WriteBatch {
                    items: vec![StoredItem {
                        ord,
                        item: item.clone(),
                    }],
                    session: Some(self.record.clone()),
                    streaming_ended: vec![(id, ord)],
                    ..Default::default()
                });
                self.emit(EventBody::ToolResult { run_id, item });
                let run = self.active.as_ref().expect("still active");
                if !run
                    .calls
                    .iter()
                    .any(|c| c.item.status == ItemStatus::Running)
                {
                    self.after_tools();
                }
                return;
            }
        }
        let Some(w) = self.waiting.as_mut() else {
            return;
        };
        let Some(c) = w
            .calls
            .iter_mut()
            .find(|c| c.call().call_id == call_id && c.item.status == ItemStatus::Running)
        else {
            return;
        };
        c.item.status = status;
        c.call_mut().output = Some(outcome.output);
        let (item, ord, run_id) = (c.item.clone(), c.ord, w.run_id.clone());
        let call_id = c.call().call_id.clone();
        self.resolved_result(run_id, item, ord, call_id, None);
    }

    /// The calls of the turn are done: the run ends if some still wait for a client or an
    /// approval, fails if it used up its tool rounds, and otherwise the model takes a turn.
    fn after_tools(&mut self) {
        let run = self.active.as_ref().expect("a run is active");
        if run.calls.iter().any(|c| c.item.status.is_waiting()) {
            let run = self.active.as_ref().expect("a run is active");
            self.record.waiting = Some(WaitingRun {
                run_id: run.run_id.clone(),
                reply_to: run.reply_to.clone(),
                reply_ord: run.reply_ord,
                call_ords: run.calls.iter().map(|c| c.ord).collect(),
            });
            self.end_with_waiting();
            return;
        }
        if run.turns > self.rules.max_tool_rounds {
            let error = RunError {
                code: "tool_rounds".into(),
                message: format!(
                    "the model called tools {} times in a row; the limit is {}",
                    run.turns, self.rules.max_tool_rounds
                ),
                retryable: false,
            };
            let run = self.active.as_mut().expect("a run is active");
            run.item.error_code = Some(error.code.clone());
            self.finish(Outcome::Failed(error), Next::Queued);
            return;
        }
        self.next_turn();
    }

    /// A new model turn of the active run: its assistant item (`item.started`), then the model
    /// with the history so far, tool results included.
    fn next_turn(&mut self) {
        let ord = self.record.next_ord;
        self.record.next_ord += 1;
        let run = self.active.as_mut().expect("a run is active");
        let item = Item::streaming_reply(
            new_id("itm"),
            run.run_id.clone(),
            run.reply_to.clone(),
            now_rfc3339(),
        );
        run.item = item.clone();
        run.ord = ord;
        run.checkpoint = Checkpoint::default();
        run.calls.clear();
        run.turns += 1;
        run.in_tools = false;
        let start = Effect::StartAgent {
            run_id: run.run_id.clone(),
            reply_to: run.reply_to.clone(),
            reply_ord: run.reply_ord,
            until_ord: ord,
            client_tools: run.client_tools.clone(),
        };
        let run_id = run.run_id.clone();
        self.write_streaming(ord, &item);
        self.effects.push_back(start);
        self.emit(EventBody::ItemStarted { run_id, item });
    }

    /// End every call of the active run that has not ended (`cancelled` or `interrupted`),
    /// each told with `tool.result`, durably, before the run's terminal event.
    pub(super) fn end_active_calls(&mut self, status: ItemStatus) {
        let id = self.record.id.clone();
        let Some(run) = self.active.as_mut() else {
            return;
        };
        let open = |s: ItemStatus| {
            matches!(s, ItemStatus::Streaming | ItemStatus::Running) || s.is_waiting()
        };
        let mut stops = Vec::new();
        let mut ended = Vec::new();
        for c in run.calls.iter_mut().filter(|c| open(c.item.status)) {
            if c.item.status == ItemStatus::Running {
                stops.push(Effect::StopTool {
                    call_id: c.call().call_id.clone(),
                });
            }
            c.item.status = status;
            ended.push(c.clone());
        }
        if ended.is_empty() {
            return;
        }
        let run_id = run.run_id.clone();
        // Its waiting calls end here: the record (written when the run ends) no longer names them.
        if self
            .record
            .waiting
            .as_ref()
            .is_some_and(|w| w.run_id == run_id)
        {
            self.record.waiting = None;
        }
        self.effects.extend(stops);
        self.write(WriteBatch {
            items: ended
                .iter()
                .map(|c| StoredItem {
                    ord: c.ord,
                    item: c.item.clone(),
                })
                .collect(),
            streaming_ended: ended.iter().map(|c| (id.clone(), c.ord)).collect(),
            calls: ended
                .iter()
                .map(|c| {
                    (
                        id.clone(),
                        c.call().call_id.clone(),
                        cancelled_record(c.ord),
                    )
                })
                .collect(),
            ..Default::default()
        });
        self.effects.push_back(Effect::Barrier);
        for c in ended {
            self.emit(EventBody::ToolResult {
                run_id: run_id.clone(),
                item: c.item,
            });
        }
    }
}

fn assistant_ord(s: &SessionState) -> u64 {
    s.active.as_ref().map_or(0, |r| r.ord)
}
