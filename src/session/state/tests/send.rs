//! Send, ack and idempotency, busy policies, titles, updates and retries.

use super::*;

#[test]
fn a_new_session_starts_at_seq_one_and_every_event_adds_exactly_one() {
    let mut s = state();
    let (ack, effects) = send(&mut s, "c1", "hello", None);
    assert_eq!(
        events(&effects),
        vec![(1, "message"), (2, "session.updated"), (3, "run.started")]
    );
    assert_eq!(
        (ack.epoch.as_str(), ack.seq, ack.duplicate),
        ("e1", 1, false)
    );
    s.on_delta("Hel".into());
    s.on_delta("lo".into());
    s.on_finished(FinishReason::Stop, TOOLS);
    let effects = drain(&mut s);
    assert_eq!(
        events(&effects),
        vec![(4, "run.delta"), (5, "run.delta"), (6, "run.completed")]
    );
    assert_eq!(s.record().head_seq, 6);
}

#[test]
fn the_ack_precedes_the_message_event_and_names_its_position() {
    let mut s = state();
    let (ack, effects) = send(&mut s, "c1", "hello", None);
    assert_eq!(
        shape(&effects)[..3],
        ["ack", "message", "session.updated"],
        "the ack goes out before the message event"
    );
    let Effect::Emit(message) = &effects[1] else {
        panic!("message event")
    };
    assert_eq!(
        (message.epoch.as_str(), message.seq),
        (ack.epoch.as_str(), ack.seq)
    );
}

#[test]
fn a_new_message_changes_nothing_until_it_is_committed() {
    let mut s = state();
    let Accepted::New(msg) = s
        .send(&req("c1", "hello", None), None, TOOLS, || Ok(()))
        .unwrap()
    else {
        panic!("new")
    };
    assert!(
        s.next_effect().is_none(),
        "nothing to do before the batch is durable"
    );
    assert_eq!((s.record().head_seq, s.record().next_ord), (0, 0));
    let batch = &msg.batch;
    assert_eq!(batch.items.len(), 1);
    assert_eq!(batch.items[0].item.role, Role::User);
    assert_eq!(
        batch.idem.len(),
        1,
        "the idempotency key is written with the message"
    );
    assert_eq!(batch.idem[0].2.seq, 1, "it remembers the ack's position");
    assert_eq!(batch.session.as_ref().unwrap().next_ord, 1);
    drop(msg);
    // An uncommitted message (its write failed) leaves the session as it was.
    assert_eq!(s.record().next_ord, 0);
}

#[test]
fn a_repeated_client_msg_id_gets_the_original_ack_and_no_quota_is_charged() {
    let s = state();
    let orig = IdemRecord {
        item_id: "itm_a".into(),
        epoch: "e0".into(),
        seq: 12,
        text: "hello".into(),
        run_id: Some("run_a".into()),
    };
    let charged = Cell::new(false);
    let admit = || {
        charged.set(true);
        Ok(())
    };
    let Accepted::Duplicate(ack) = s
        .send(&req("c1", "hello", None), Some(orig.clone()), TOOLS, admit)
        .unwrap()
    else {
        panic!("duplicate")
    };
    assert!(!charged.get(), "a duplicate costs nothing");
    assert_eq!(
        (
            ack.item_id.as_str(),
            ack.epoch.as_str(),
            ack.seq,
            ack.duplicate,
            ack.run_id.as_deref()
        ),
        ("itm_a", "e0", 12, true, Some("run_a"))
    );
    let other = s.send(&req("c1", "other text", None), Some(orig), TOOLS, || Ok(()));
    assert_eq!(other.unwrap_err().code(), "bad_request");
}

#[test]
fn a_refused_send_stores_nothing() {
    let mut s = state();
    send(&mut s, "c1", "first", None);
    let head = s.record().head_seq;
    let busy = s.send(
        &req("c2", "second", Some(BusyPolicy::Reject)),
        None,
        TOOLS,
        || Ok(()),
    );
    assert_eq!(busy.unwrap_err(), HubError::Busy);
    let limited = s.send(&req("c3", "third", None), None, TOOLS, || {
        Err(HubError::RateLimited("too many messages".into()))
    });
    assert_eq!(limited.unwrap_err().code(), "rate_limited");
    assert!(s.next_effect().is_none());
    assert_eq!(s.record().head_seq, head);
}

#[test]
fn queued_runs_are_announced_and_start_in_order_with_the_announced_ids() {
    let mut s = state();
    let (a1, _) = send(&mut s, "c1", "one", None);
    let (a2, e2) = send(&mut s, "c2", "two", None);
    let (a3, e3) = send(&mut s, "c3", "three", None);
    assert_eq!(kinds(&e2), vec!["message", "run.queued"]);
    assert_eq!(kinds(&e3), vec!["message", "run.queued"]);
    s.on_finished(FinishReason::Stop, TOOLS);
    let effects = drain(&mut s);
    assert_eq!(kinds(&effects), vec!["run.completed", "run.started"]);
    let started = effects.iter().find_map(|e| match e {
        Effect::Emit(ev) => match &ev.body {
            EventBody::RunStarted { run_id, .. } => Some(run_id.clone()),
            _ => None,
        },
        _ => None,
    });
    assert_eq!(started, Some(run_id(&a2)));
    assert_ne!(run_id(&a1), run_id(&a2));
    assert_eq!(s.queued_view().len(), 1);
    assert_eq!(s.queued_view()[0].run_id, run_id(&a3));
}

#[test]
fn interrupt_cancels_the_active_run_then_starts_the_new_one_and_keeps_the_queue() {
    let mut s = state();
    send(&mut s, "c1", "one", None);
    s.on_delta("partial".into());
    drain(&mut s);
    let (queued, _) = send(&mut s, "c2", "two", None);
    let (_, effects) = send(&mut s, "c3", "three", Some(BusyPolicy::Interrupt));
    assert_eq!(
        kinds(&effects),
        vec!["message", "run.cancelled", "run.started"]
    );
    assert_eq!(shape(&effects)[0], "ack");
    let cancelled = terminal_item(&effects).expect("the partial item");
    assert_eq!(
        (cancelled.text.as_str(), cancelled.status),
        ("partial", ItemStatus::Cancelled)
    );
    assert_eq!(
        s.queued_view().len(),
        1,
        "queued runs stay queued behind the new one"
    );
    assert_eq!(s.queued_view()[0].run_id, run_id(&queued));
}

#[test]
fn title_updates_are_told_and_metadata_alone_is_not() {
    let mut s = state();
    let (rec, changed) = s.update(Some(Some("Trip".into())), None);
    s.commit_update(rec, changed);
    assert_eq!(kinds(&drain(&mut s)), vec!["session.updated"]);
    let (rec, changed) = s.update(None, Some(serde_json::json!({"k": 1})));
    s.commit_update(rec, changed);
    assert!(drain(&mut s).iter().all(|e| !matches!(e, Effect::Emit(_))));
    assert_eq!(s.record().title.as_deref(), Some("Trip"));
}

#[test]
fn a_retry_needs_a_quiet_session_and_tells_what_was_removed_first() {
    let mut s = state();
    let (a1, _) = send(&mut s, "c1", "one", None);
    assert_eq!(s.check_retry(), Err(HubError::Busy));
    s.on_finished(FinishReason::Stop, TOOLS);
    drain(&mut s);
    s.check_retry().unwrap();
    let user = Item::user(a1.item_id.clone(), "one".into(), "c1".into(), "t".into());
    let run = s.commit_retry(&user, 0, vec!["itm_x".into()]);
    let effects = drain(&mut s);
    assert_eq!(kinds(&effects), vec!["items.removed", "run.started"]);
    assert_eq!(s.active_view().unwrap().run_id, run);
}

#[test]
fn a_first_message_names_the_session_from_its_first_line() {
    assert_eq!(
        crate::session::state::send::title_from("\n  Plan a trip  \nto Rome"),
        "Plan a trip"
    );
    let long = "word ".repeat(20);
    let title = crate::session::state::send::title_from(&long);
    assert!(
        title.ends_with('…') && title.chars().count() <= 49,
        "{title}"
    );
}
