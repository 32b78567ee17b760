//! Runs: streaming, durable terminal events, failures, cancel, checkpoints, shutdown, delete.

use super::*;

#[test]
fn a_finished_item_is_durable_before_its_terminal_event_and_equals_its_deltas() {
    let mut s = state();
    send(&mut s, "c1", "hi", None);
    for d in ["a", "", "b", "c"] {
        s.on_delta(d.into());
    }
    s.on_usage(crate::domain::Usage {
        prompt_tokens: 1,
        completion_tokens: 2,
        total_tokens: 3,
    });
    s.on_finished(FinishReason::Length, TOOLS);
    let effects = drain(&mut s);
    assert_eq!(events(&effects).len(), 4, "an empty delta is not an event");
    let order = shape(&effects);
    let pos = |name: &str| order.iter().position(|x| x == name).expect(name);
    assert!(pos("stop_agent") < pos("settle"));
    assert!(
        pos("settle") < pos("write"),
        "no late checkpoint may overtake the final write"
    );
    assert!(pos("write") < pos("barrier"));
    assert!(
        pos("barrier") < pos("run.completed"),
        "durable before it is told"
    );
    let item = terminal_item(&effects).unwrap();
    assert_eq!(item.text, "abc");
    assert_eq!(item.status, ItemStatus::Complete);
    assert_eq!(item.finish_reason, Some(FinishReason::Length));
    assert_eq!(item.usage.map(|u| u.total_tokens), Some(3));
    assert!(!s.has_active_run());
}

#[test]
fn a_failed_run_keeps_its_partial_text_and_error_code() {
    let mut s = state();
    send(&mut s, "c1", "hi", None);
    s.on_delta("par".into());
    s.on_failed(RunError {
        code: "upstream_timeout".into(),
        message: "no chunk".into(),
        retryable: true,
    });
    let effects = drain(&mut s);
    assert_eq!(kinds(&effects).last(), Some(&"run.failed"));
    let item = terminal_item(&effects).unwrap();
    assert_eq!(
        (item.text.as_str(), item.status),
        ("par", ItemStatus::Failed)
    );
    assert_eq!(item.error_code.as_deref(), Some("upstream_timeout"));
}

#[test]
fn cancel_rules_active_queued_unknown_and_finished() {
    let mut s = state();
    let (a1, _) = send(&mut s, "c1", "one", None);
    let (a2, _) = send(&mut s, "c2", "two", None);
    let (a3, _) = send(&mut s, "c3", "three", None);
    // A queued run leaves the queue; its message stays.
    s.cancel(Some(&run_id(&a2))).unwrap();
    let effects = drain(&mut s);
    let Effect::Emit(ev) = &effects[0] else {
        panic!("an event")
    };
    match &ev.body {
        EventBody::RunCancelled {
            run_id: r,
            reply_to,
            item,
        } => {
            assert_eq!(r, &run_id(&a2));
            assert_eq!(reply_to.as_deref(), Some(a2.item_id.as_str()));
            assert!(item.is_none());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(s.cancel(Some("run_unknown")), Err(HubError::NoActiveRun));
    // Cancelling the active run stops its agent and starts the next queued one.
    s.on_delta("x".into());
    drain(&mut s);
    s.cancel(None).unwrap();
    let effects = drain(&mut s);
    assert_eq!(shape(&effects)[0], "stop_agent");
    assert_eq!(kinds(&effects), vec!["run.cancelled", "run.started"]);
    assert_eq!(s.active_view().unwrap().reply_to, a3.item_id);
    // The finished run is no longer cancellable.
    assert_eq!(s.cancel(Some(&run_id(&a1))), Err(HubError::NoActiveRun));
}

#[test]
fn shutdown_drops_queued_runs_refuses_new_work_and_interrupts_the_active_run() {
    let mut s = state();
    send(&mut s, "c1", "one", None);
    let (queued, _) = send(&mut s, "c2", "two", None);
    s.on_delta("part".into());
    drain(&mut s);
    s.begin_shutdown();
    let effects = drain(&mut s);
    assert_eq!(kinds(&effects), vec!["run.cancelled"]);
    let Effect::Emit(ev) = &effects[0] else {
        panic!()
    };
    assert_eq!(ev.body.run_id(), queued.run_id.as_deref());
    assert_eq!(s.check_subscribe().unwrap_err().code(), "unavailable");
    let refused = s.send(&req("c3", "three", None), None, TOOLS, || Ok(()));
    assert_eq!(refused.unwrap_err().code(), "unavailable");
    s.interrupt_for_shutdown();
    let effects = drain(&mut s);
    assert_eq!(kinds(&effects), vec!["run.failed"]);
    let Some(Effect::Emit(ev)) = effects.iter().find(|e| matches!(e, Effect::Emit(_))) else {
        panic!()
    };
    match &ev.body {
        EventBody::RunFailed { item, error, .. } => {
            assert_eq!(
                (item.text.as_str(), item.status),
                ("part", ItemStatus::Interrupted)
            );
            assert_eq!(
                (error.code.as_str(), error.retryable),
                ("interrupted", true)
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(!s.has_active_run());
}

#[test]
fn a_run_finishing_during_shutdown_starts_nothing_after_it() {
    let mut s = state();
    send(&mut s, "c1", "one", None);
    s.begin_shutdown();
    s.on_finished(FinishReason::Stop, TOOLS);
    let effects = drain(&mut s);
    assert_eq!(kinds(&effects), vec!["run.completed"]);
    assert!(!s.has_active_run());
}

#[test]
fn delete_ends_every_run_before_session_deleted() {
    let mut s = state();
    send(&mut s, "c1", "one", None);
    send(&mut s, "c2", "two", None);
    drain(&mut s);
    s.delete();
    let effects = drain(&mut s);
    assert_eq!(
        kinds(&effects),
        vec!["run.cancelled", "run.cancelled", "session.deleted"]
    );
    let order = shape(&effects);
    let pos = |name: &str| order.iter().position(|x| x == name).expect(name);
    assert!(pos("delete") < pos("session.deleted"));
    assert_eq!(order.last().map(String::as_str), Some("end_subscriptions"));
}

#[test]
fn checkpoints_carry_only_new_text_and_a_refused_one_is_offered_again() {
    let mut s = state();
    send(&mut s, "c1", "one", None);
    assert!(s.take_checkpoint().is_none(), "nothing streamed yet");
    s.on_delta("abc".into());
    let first = s.take_checkpoint().unwrap();
    assert_eq!((first.text.as_str(), first.n), ("abc", 0));
    s.on_delta("de".into());
    let second = s.take_checkpoint().unwrap();
    assert_eq!((second.text.as_str(), second.n), ("de", 1));
    s.return_checkpoint(second);
    s.on_delta("f".into());
    let again = s.take_checkpoint().unwrap();
    assert_eq!((again.text.as_str(), again.n), ("def", 1));
}
