//! Tool calls (PROTOCOL 1.1): client calls end the run pending, server calls run inside it,
//! approvals, resolutions and their idempotency, continuations, cancel, limits, recovery.

use super::*;
use crate::domain::{Executor, ToolSpec};
use crate::session::state::{Resolve, Resolved};
use crate::store::CallRecord;
use crate::tools::ToolOutcome;

fn page_tool() -> ToolSpec {
    ToolSpec {
        name: "get_page".into(),
        description: Some("the page the user is on".into()),
        parameters: serde_json::json!({"type": "object"}),
    }
}

/// A message declaring the client tool `get_page`, committed.
fn send_with_tools(s: &mut SessionState, id: &str) -> (Ack, Vec<Effect>) {
    let r = SendRequest::new(id, "what page?", None, 1000)
        .unwrap()
        .with_tools(vec![page_tool()])
        .unwrap();
    let Accepted::New(msg) = s.send(&r, None, TOOLS, || Ok(())).unwrap() else {
        panic!("new")
    };
    let ack = msg.ack().clone();
    s.commit_message(msg);
    (ack, drain(s))
}

/// A model turn that calls `name` with `{"q":1}` in two fragments; the effects it queued.
fn call(s: &mut SessionState, call_id: &str, name: &str) -> Vec<Effect> {
    s.on_tool_started(call_id.into(), name.into(), TOOLS);
    s.on_tool_delta(call_id, "{\"q\":".into());
    s.on_tool_delta(call_id, "1}".into());
    drain(s)
}

/// The call record the effects wrote last for `call_id`.
fn record_of(effects: &[Effect], call_id: &str) -> Option<CallRecord> {
    effects.iter().rev().find_map(|e| match e {
        Effect::Write(b) => b
            .calls
            .iter()
            .rev()
            .find(|(_, c, _)| c == call_id)
            .map(|(_, _, r)| r.clone()),
        _ => None,
    })
}

fn event_item(effects: &[Effect], kind: &str) -> Item {
    effects
        .iter()
        .find_map(|e| match e {
            Effect::Emit(ev) if ev.body.kind() == kind => match &ev.body {
                EventBody::ToolCalled { item, .. }
                | EventBody::ToolResult { item, .. }
                | EventBody::ToolStarted { item, .. }
                | EventBody::ItemStarted { item, .. }
                | EventBody::ItemCompleted { item, .. } => Some(item.clone()),
                _ => None,
            },
            _ => None,
        })
        .unwrap_or_else(|| panic!("no {kind} in {:?}", shape(effects)))
}

fn resolve(
    s: &mut SessionState,
    call_id: &str,
    how: Resolve,
    rec: Option<CallRecord>,
) -> Vec<Effect> {
    match s.resolve(call_id, how, rec).expect("resolves") {
        Resolved::New(how) => {
            s.commit_resolution(call_id, how);
            drain(s)
        }
        other => panic!("{other:?}"),
    }
}

fn result(output: &str) -> Resolve {
    Resolve::Result {
        output: output.into(),
        is_error: false,
    }
}

#[test]
fn a_client_call_ends_the_run_pending_and_its_result_starts_a_continuation() {
    let mut s = state();
    let (ack, _) = send_with_tools(&mut s, "c1");
    let effects = call(&mut s, "call_1", "get_page");
    assert_eq!(
        kinds(&effects),
        vec!["tool.started", "tool.delta", "tool.delta"]
    );
    let started = event_item(&effects, "tool.started");
    assert_eq!(started.call.as_ref().unwrap().executor, Executor::Client);
    s.on_finished(FinishReason::ToolCalls, TOOLS);
    let effects = drain(&mut s);
    assert_eq!(kinds(&effects), vec!["tool.called", "run.completed"]);
    let order = shape(&effects);
    let pos = |n: &str| order.iter().position(|x| x == n).unwrap();
    assert!(
        pos("barrier") < pos("tool.called"),
        "durable before tool.called: {order:?}"
    );
    let called = event_item(&effects, "tool.called");
    assert_eq!(called.status, ItemStatus::Pending);
    assert_eq!(called.call.as_ref().unwrap().arguments, "{\"q\":1}");
    let Some(Effect::Emit(done)) = effects
        .iter()
        .find(|e| matches!(e, Effect::Emit(ev) if ev.body.kind() == "run.completed"))
    else {
        panic!()
    };
    match &done.body {
        EventBody::RunCompleted {
            pending_tool_calls, ..
        } => assert_eq!(pending_tool_calls, &vec!["call_1".to_owned()]),
        _ => unreachable!(),
    }
    assert!(
        !s.has_active_run(),
        "the session is not busy while a call waits"
    );
    assert_eq!(s.pending_tool_calls().len(), 1);
    assert!(
        s.record().waiting.is_some(),
        "the waiting run is in the record, for a restart"
    );
    // The client's result: durable, acknowledged with the position of its tool.result, then
    // a continuation answering the same message.
    let rec = record_of(&effects, "call_1");
    let effects = resolve(&mut s, "call_1", result("{\"title\":\"Pricing\"}"), rec);
    assert_eq!(kinds(&effects), vec!["tool.result", "run.started"]);
    let order = shape(&effects);
    let pos = |n: &str| order.iter().position(|x| x == n).unwrap();
    assert!(pos("barrier") < pos("tool_ack") && pos("tool_ack") < pos("tool.result"));
    let Some(Effect::ToolAck(tack)) = effects.iter().find(|e| matches!(e, Effect::ToolAck(_)))
    else {
        panic!()
    };
    let result_seq = events(&effects)[0].0;
    assert_eq!((tack.seq, tack.duplicate), (result_seq, false));
    let Some(Effect::Emit(started)) = effects
        .iter()
        .find(|e| matches!(e, Effect::Emit(ev) if ev.body.kind() == "run.started"))
    else {
        panic!()
    };
    match &started.body {
        EventBody::RunStarted {
            continues,
            reply_to,
            ..
        } => {
            assert_eq!(continues.as_deref(), ack.run_id.as_deref());
            assert_eq!(reply_to, &ack.item_id);
        }
        _ => unreachable!(),
    }
    let start = effects.iter().find_map(|e| match e {
        Effect::StartAgent { client_tools, .. } => Some(client_tools.clone()),
        _ => None,
    });
    assert_eq!(
        start.unwrap(),
        vec![page_tool()],
        "continuations keep the message's tools"
    );
    assert!(s.record().waiting.is_none());
}

#[test]
fn resolutions_are_idempotent_by_call_id_and_checked() {
    let mut s = state();
    send_with_tools(&mut s, "c1");
    call(&mut s, "call_1", "get_page");
    s.on_finished(FinishReason::ToolCalls, TOOLS);
    let effects = drain(&mut s);
    let pending = record_of(&effects, "call_1");
    // Unknown call, and the wrong kind of frame for a pending call.
    assert_eq!(
        s.resolve("nope", result("x"), None).unwrap_err().code(),
        "not_found"
    );
    let approve = Resolve::Approval {
        approved: true,
        arguments: None,
    };
    assert_eq!(
        s.resolve("call_1", approve, pending.clone())
            .unwrap_err()
            .code(),
        "bad_request"
    );
    let effects = resolve(&mut s, "call_1", result("A"), pending);
    let done = record_of(&effects, "call_1");
    let seq = done.as_ref().unwrap().resolved.as_ref().unwrap().seq;
    match s.resolve("call_1", result("A"), done.clone()).unwrap() {
        Resolved::Duplicate(ack) => assert_eq!((Some(ack.seq), ack.duplicate), (seq, true)),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        s.resolve("call_1", result("B"), done).unwrap_err().code(),
        "bad_request"
    );
}

#[test]
fn server_calls_run_inside_the_run_and_their_results_go_back_to_the_model() {
    let mut s = state();
    send(&mut s, "c1", "look it up", None);
    call(&mut s, "call_s", "search");
    s.on_finished(FinishReason::ToolCalls, TOOLS);
    let effects = drain(&mut s);
    assert_eq!(kinds(&effects), vec!["tool.called", "item.completed"]);
    assert_eq!(
        event_item(&effects, "tool.called").status,
        ItemStatus::Running
    );
    assert!(shape(&effects).contains(&"call:search".to_owned()));
    assert!(
        s.has_active_run(),
        "the run goes on while its server tool runs"
    );
    s.on_tool_outcome(
        "call_s",
        ToolOutcome {
            output: "42".into(),
            is_error: false,
        },
    );
    let effects = drain(&mut s);
    assert_eq!(kinds(&effects), vec!["tool.result", "item.started"]);
    let until = effects.iter().find_map(|e| match e {
        Effect::StartAgent { until_ord, .. } => Some(*until_ord),
        _ => None,
    });
    let next = event_item(&effects, "item.started");
    assert_eq!(next.status, ItemStatus::Streaming);
    s.on_delta("It is 42.".into());
    s.on_finished(FinishReason::Stop, TOOLS);
    let effects = drain(&mut s);
    assert_eq!(kinds(&effects), vec!["run.delta", "run.completed"]);
    assert_eq!(
        terminal_item(&effects).unwrap().id,
        next.id,
        "the last turn's item ends the run"
    );
    assert!(until.is_some());
}

#[test]
fn a_turn_with_server_and_client_calls_runs_one_and_ends_pending_on_the_other() {
    let mut s = state();
    send_with_tools(&mut s, "c1");
    call(&mut s, "call_s", "search");
    call(&mut s, "call_c", "get_page");
    s.on_finished(FinishReason::ToolCalls, TOOLS);
    let effects = drain(&mut s);
    assert_eq!(
        kinds(&effects),
        vec!["tool.called", "tool.called", "item.completed"]
    );
    s.on_tool_outcome(
        "call_s",
        ToolOutcome {
            output: "ok".into(),
            is_error: false,
        },
    );
    let effects = drain(&mut s);
    assert_eq!(kinds(&effects), vec!["tool.result", "run.completed"]);
    assert_eq!(
        s.pending_tool_calls()[0].call.as_ref().unwrap().call_id,
        "call_c"
    );
}

#[test]
fn an_approved_call_runs_and_its_ack_waits_for_its_result_a_denied_one_never_runs() {
    let mut s = state();
    send(&mut s, "c1", "ship it", None);
    call(&mut s, "call_d", "deploy");
    s.on_finished(FinishReason::ToolCalls, TOOLS);
    let effects = drain(&mut s);
    assert_eq!(kinds(&effects), vec!["tool.called", "run.completed"]);
    assert_eq!(
        event_item(&effects, "tool.called").status,
        ItemStatus::AwaitingApproval
    );
    let rec = record_of(&effects, "call_d");
    // A client result does not resolve an approval.
    assert_eq!(
        s.resolve("call_d", result("x"), rec.clone())
            .unwrap_err()
            .code(),
        "bad_request"
    );
    let approve = Resolve::Approval {
        approved: true,
        arguments: Some("{\"env\":\"prod\"}".into()),
    };
    let effects = resolve(&mut s, "call_d", approve.clone(), rec);
    assert!(
        kinds(&effects).is_empty(),
        "no event until the tool answers"
    );
    assert!(shape(&effects).contains(&"call:deploy".to_owned()));
    assert!(!shape(&effects).contains(&"tool_ack".to_owned()));
    // The same approval again while it runs waits for the same ack.
    let running = record_of(&effects, "call_d");
    assert!(matches!(
        s.resolve("call_d", approve, running).unwrap(),
        Resolved::Deferred
    ));
    s.on_tool_outcome(
        "call_d",
        ToolOutcome {
            output: "deployed".into(),
            is_error: false,
        },
    );
    let effects = drain(&mut s);
    assert_eq!(kinds(&effects), vec!["tool.result", "run.started"]);
    let item = event_item(&effects, "tool.result");
    assert_eq!(
        item.call.as_ref().unwrap().arguments,
        "{\"env\":\"prod\"}",
        "the approver's arguments ran"
    );
    assert!(shape(&effects).contains(&"tool_ack".to_owned()));

    let mut s = state();
    send(&mut s, "c1", "ship it", None);
    call(&mut s, "call_d", "deploy");
    s.on_finished(FinishReason::ToolCalls, TOOLS);
    let rec = record_of(&drain(&mut s), "call_d");
    let deny = Resolve::Approval {
        approved: false,
        arguments: None,
    };
    let effects = resolve(&mut s, "call_d", deny, rec);
    assert_eq!(kinds(&effects), vec!["tool.result", "run.started"]);
    assert_eq!(
        event_item(&effects, "tool.result").status,
        ItemStatus::Denied
    );
    assert!(
        !shape(&effects).iter().any(|e| e.starts_with("call:")),
        "a denied call never runs"
    );
}

#[test]
fn a_run_that_keeps_calling_server_tools_fails_at_the_round_limit() {
    let mut s = state();
    send(&mut s, "c1", "loop", None);
    let mut last = Vec::new();
    for round in 0..3 {
        let id = format!("call_{round}");
        call(&mut s, &id, "search");
        s.on_finished(FinishReason::ToolCalls, TOOLS);
        s.on_tool_outcome(
            &id,
            ToolOutcome {
                output: "again".into(),
                is_error: false,
            },
        );
        last = drain(&mut s);
    }
    assert_eq!(kinds(&last).last(), Some(&"run.failed"));
    assert!(!s.has_active_run());
    match &last.iter().rev().find_map(|e| match e {
        Effect::Emit(ev) => Some(ev.body.clone()),
        _ => None,
    }) {
        Some(EventBody::RunFailed { error, .. }) => assert_eq!(error.code, "tool_rounds"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn cancelling_a_run_cancels_its_running_tools_before_run_cancelled() {
    let mut s = state();
    send(&mut s, "c1", "look it up", None);
    call(&mut s, "call_s", "search");
    s.on_finished(FinishReason::ToolCalls, TOOLS);
    drain(&mut s);
    s.cancel(None).unwrap();
    let effects = drain(&mut s);
    assert_eq!(kinds(&effects), vec!["tool.result", "run.cancelled"]);
    assert!(
        shape(&effects).contains(&"stop_tool".to_owned()),
        "the tool request is cancelled"
    );
    assert_eq!(
        event_item(&effects, "tool.result").status,
        ItemStatus::Cancelled
    );
}

#[test]
fn cancelling_pending_calls_ends_them_and_no_continuation_follows() {
    let mut s = state();
    send_with_tools(&mut s, "c1");
    call(&mut s, "call_1", "get_page");
    s.on_finished(FinishReason::ToolCalls, TOOLS);
    drain(&mut s);
    s.cancel(None).unwrap();
    let effects = drain(&mut s);
    assert_eq!(kinds(&effects), vec!["tool.result"]);
    assert_eq!(
        event_item(&effects, "tool.result").status,
        ItemStatus::Cancelled
    );
    let rec = record_of(&effects, "call_1");
    assert_eq!(
        s.resolve("call_1", result("late"), rec).unwrap_err().code(),
        "bad_request"
    );
    assert_eq!(s.cancel(None), Err(HubError::NoActiveRun));
}

#[test]
fn a_new_message_cancels_waiting_calls_first() {
    let mut s = state();
    send_with_tools(&mut s, "c1");
    call(&mut s, "call_1", "get_page");
    s.on_finished(FinishReason::ToolCalls, TOOLS);
    drain(&mut s);
    let (ack, effects) = send(&mut s, "c2", "never mind", None);
    assert_eq!(
        kinds(&effects),
        vec!["tool.result", "message", "run.started"]
    );
    let order = shape(&effects);
    assert_eq!(&order[..3], ["tool.result", "ack", "message"]);
    let message_seq = events(&effects)[1].0;
    assert_eq!(ack.seq, message_seq, "the ack names the message event");
    assert!(s.pending_tool_calls().is_empty());
}

#[test]
fn an_unknown_tool_fails_and_the_model_is_told() {
    let mut s = state();
    send(&mut s, "c1", "hi", None);
    call(&mut s, "call_x", "no_such_tool");
    s.on_finished(FinishReason::ToolCalls, TOOLS);
    let effects = drain(&mut s);
    assert_eq!(
        kinds(&effects),
        vec![
            "tool.called",
            "tool.result",
            "item.completed",
            "item.started"
        ]
    );
    let failed = event_item(&effects, "tool.result");
    assert_eq!(failed.status, ItemStatus::Failed);
    assert!(failed
        .call
        .unwrap()
        .output
        .unwrap()
        .contains("no_such_tool"));
}

#[test]
fn waiting_calls_come_back_after_a_restart_and_can_be_resolved() {
    let mut s = state();
    send_with_tools(&mut s, "c1");
    call(&mut s, "call_1", "get_page");
    s.on_finished(FinishReason::ToolCalls, TOOLS);
    let effects = drain(&mut s);
    let rec = record_of(&effects, "call_1");
    let pending = s.pending_tool_calls();
    let record = s.record().clone();
    // A new process: the record (with `waiting`) and the stored items are all there is.
    let mut s = SessionState::load(record, GENERATION + 1, rules());
    let ord = rec.as_ref().unwrap().ord;
    s.restore_waiting(
        vec![Call {
            item: pending[0].clone(),
            ord,
        }],
        vec![page_tool()],
    );
    assert_eq!(s.pending_tool_calls().len(), 1);
    let snap = s.snapshot(Vec::new(), false);
    assert_eq!(snap.pending_tool_calls.len(), 1);
    let effects = resolve(&mut s, "call_1", result("after restart"), rec);
    assert_eq!(kinds(&effects), vec!["tool.result", "run.started"]);
}
