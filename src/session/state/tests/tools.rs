//! Tool calls (PROTOCOL 1.1): client calls end the run pending, server calls run inside it,
//! resolutions and their idempotency, continuations (the rest is in tool_endings.rs).

use super::*;
use crate::domain::{Executor, ToolSpec};
use crate::session::state::{Resolve, Resolved};
use crate::store::CallRecord;
use crate::tools::ToolOutcome;

pub(super) fn page_tool() -> ToolSpec {
    ToolSpec {
        name: "get_page".into(),
        description: Some("the page the user is on".into()),
        parameters: serde_json::json!({"type": "object"}),
    }
}

/// A message declaring the client tool `get_page`, committed.
pub(super) fn send_with_tools(s: &mut SessionState, id: &str) -> (Ack, Vec<Effect>) {
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
pub(super) fn call(s: &mut SessionState, call_id: &str, name: &str) -> Vec<Effect> {
    s.on_tool_started(call_id.into(), name.into(), TOOLS);
    s.on_tool_delta(call_id, "{\"q\":".into());
    s.on_tool_delta(call_id, "1}".into());
    drain(s)
}

/// The call record the effects wrote last for `call_id`.
pub(super) fn record_of(effects: &[Effect], call_id: &str) -> Option<CallRecord> {
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

/// A run that called the approval-gated `deploy` (`call_d`) and ended awaiting approval; the
/// call's record.
pub(super) fn awaiting_deploy(s: &mut SessionState) -> Option<CallRecord> {
    send(s, "c1", "ship it", None);
    call(s, "call_d", "deploy");
    s.on_finished(FinishReason::ToolCalls, TOOLS);
    record_of(&drain(s), "call_d")
}

/// A turn that calls the server tool `search` (`call_s`) and the client tool `get_page`
/// (`call_id`); the effects of its end.
pub(super) fn mixed_turn(s: &mut SessionState, call_id: &str) -> Vec<Effect> {
    send_with_tools(s, "c1");
    call(s, "call_s", "search");
    call(s, call_id, "get_page");
    s.on_finished(FinishReason::ToolCalls, TOOLS);
    drain(s)
}

/// The item of the `tool.called` event for `call_id`.
pub(super) fn called_item(effects: &[Effect], call_id: &str) -> Item {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Emit(ev) => match &ev.body {
                EventBody::ToolCalled { item, .. } => Some(item),
                _ => None,
            },
            _ => None,
        })
        .find(|item| item.call.as_ref().is_some_and(|c| c.call_id == call_id))
        .cloned()
        .unwrap_or_else(|| panic!("no tool.called for {call_id}"))
}

pub(crate) fn event_item(effects: &[Effect], kind: &str) -> Item {
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

pub(super) fn resolve(
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

pub(super) fn result(output: &str) -> Resolve {
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
    let effects = mixed_turn(&mut s, "call_c");
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
