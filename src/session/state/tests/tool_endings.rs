//! Tool calls, continued: approvals, the round limit, cancel, unknown tools and recovery.

use super::tools::{
    awaiting_deploy, call, called_item, event_item, mixed_turn, page_tool, record_of, resolve,
    result, send_with_tools,
};
use super::*;
use crate::session::state::{Resolve, Resolved};
use crate::tools::ToolOutcome;

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
    let rec = awaiting_deploy(&mut s);
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
fn a_message_queued_while_the_run_streamed_cancels_the_calls_it_left_waiting() {
    let mut s = state();
    send_with_tools(&mut s, "c1");
    let (_, effects) = send(&mut s, "c2", "and then?", Some(BusyPolicy::Queue));
    assert_eq!(kinds(&effects), vec!["message", "run.queued"]);
    call(&mut s, "call_1", "get_page");
    s.on_finished(FinishReason::ToolCalls, TOOLS);
    let effects = drain(&mut s);
    assert_eq!(
        kinds(&effects),
        vec!["tool.called", "run.completed", "tool.result", "run.started"]
    );
    assert_eq!(
        event_item(&effects, "tool.result").status,
        ItemStatus::Cancelled,
        "the queued message's run does not start with a call still pending"
    );
    assert!(s.pending_tool_calls().is_empty());
    let order = shape(&effects);
    let at = |kind: &str| order.iter().position(|e| e == kind).unwrap();
    let between = &order[at("run.completed")..at("tool.result")];
    assert!(
        between.contains(&"write".to_owned()) && between.contains(&"barrier".to_owned()),
        "the cancellation is written and durable before it is told: {order:?}"
    );
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

#[test]
fn a_client_call_of_a_turn_whose_server_call_still_runs_survives_a_crash() {
    let mut s = state();
    let effects = mixed_turn(&mut s, "call_1");
    // The server call runs; the client call waits. The record written now names the calls.
    assert!(shape(&effects).contains(&"call:search".to_owned()));
    let written = effects
        .iter()
        .rev()
        .find_map(|e| match e {
            Effect::Write(b) => b.session.clone(),
            _ => None,
        })
        .expect("the session record is written with the turn's calls");
    assert!(written.waiting.is_some(), "{written:?}");
    let (client, server) = (
        called_item(&effects, "call_1"),
        called_item(&effects, "call_s"),
    );
    let (rec_1, rec_s) = (record_of(&effects, "call_1"), record_of(&effects, "call_s"));
    // kill -9 now: the server call comes back interrupted, the client call is still pending.
    let mut s = SessionState::load(written, GENERATION + 1, rules());
    s.restore_waiting(
        vec![
            Call {
                item: Item {
                    status: ItemStatus::Interrupted,
                    ..server
                },
                ord: rec_s.unwrap().ord,
            },
            Call {
                item: client,
                ord: rec_1.as_ref().unwrap().ord,
            },
        ],
        vec![page_tool()],
    );
    assert_eq!(s.pending_tool_calls().len(), 1);
    let effects = resolve(&mut s, "call_1", result("after the crash"), rec_1);
    assert_eq!(kinds(&effects), vec!["tool.result", "run.started"]);
}

#[test]
fn cancelling_an_approved_running_call_acks_the_approval_with_its_cancelled_result() {
    let mut s = state();
    let rec = awaiting_deploy(&mut s);
    let approve = Resolve::Approval {
        approved: true,
        arguments: None,
    };
    let effects = resolve(&mut s, "call_d", approve.clone(), rec);
    let approved = record_of(&effects, "call_d");
    s.cancel(None).unwrap();
    let effects = drain(&mut s);
    assert_eq!(kinds(&effects), vec!["tool.result"]);
    // The approval waited for the call's result: the cancelled `tool.result` is it, and its ack
    // goes just before it.
    let shape = shape(&effects);
    let (ack_at, result_at) = (
        shape
            .iter()
            .position(|e| e == "tool_ack")
            .expect("the approval is acknowledged"),
        shape.iter().position(|e| e == "tool.result").unwrap(),
    );
    assert!(ack_at < result_at, "{shape:?}");
    let (Effect::ToolAck(ack), Effect::Emit(ev)) = (&effects[ack_at], &effects[result_at]) else {
        unreachable!("positions found by shape")
    };
    assert_eq!((ack.call_id.as_str(), ack.seq), ("call_d", ev.seq));
    assert_eq!(
        event_item(&effects, "tool.result").status,
        ItemStatus::Cancelled
    );
    // Repeated now, the approval is refused: the call ended otherwise.
    let cancelled = record_of(&effects, "call_d");
    assert_eq!(
        s.resolve("call_d", approve.clone(), cancelled)
            .unwrap_err()
            .code(),
        "bad_request"
    );
    // A record that still says "approved" with nothing running (a crash cut the tool, which
    // came back `interrupted`) is refused too, never left waiting for an ack that cannot come.
    assert_eq!(
        s.resolve("call_d", approve, approved).unwrap_err().code(),
        "bad_request"
    );
}
