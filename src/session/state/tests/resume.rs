//! Subscribe and resume: replay or snapshot, epochs after a crash.

use super::*;

#[test]
fn resume_replays_exactly_what_was_missed_or_answers_with_a_snapshot() {
    let mut s = state();
    send(&mut s, "c1", "hi", None);
    s.on_delta("a".into());
    drain(&mut s);
    let head = s.record().head_seq;
    let at = |seq| Position {
        epoch: "e1".into(),
        seq,
    };
    assert_eq!(s.resume(None), Resume::Snapshot);
    assert_eq!(s.resume(Some(&at(head))), Resume::Replay { after: head });
    assert_eq!(
        s.replay(head).count(),
        0,
        "since the head: a replay of zero events"
    );
    assert_eq!(
        s.resume(Some(&at(head + 1))),
        Resume::Snapshot,
        "beyond the head"
    );
    let other = Position {
        epoch: "e0".into(),
        seq: 1,
    };
    assert_eq!(s.resume(Some(&other)), Resume::Snapshot, "another epoch");
    assert_eq!(s.resume(Some(&at(1))), Resume::Replay { after: 1 });
    let seqs: Vec<u64> = s.replay(1).map(|e| e.seq).collect();
    assert_eq!(seqs, (2..=head).collect::<Vec<_>>());
}

#[test]
fn events_older_than_the_tail_or_too_many_for_a_queue_get_a_snapshot() {
    let mut s = SessionState::load(
        record(),
        GENERATION,
        Rules {
            replay_tail: 4,
            replay_max: 3,
            ..rules()
        },
    );
    send(&mut s, "c1", "hi", None);
    for _ in 0..6 {
        s.on_delta("d".into());
    }
    drain(&mut s);
    let head = s.record().head_seq;
    assert_eq!(
        s.replay(0).count(),
        4,
        "the tail holds the configured number of events"
    );
    let at = |seq| Position {
        epoch: "e1".into(),
        seq,
    };
    assert_eq!(
        s.resume(Some(&at(1))),
        Resume::Snapshot,
        "older than the tail"
    );
    assert_eq!(
        s.resume(Some(&at(head - 4))),
        Resume::Snapshot,
        "more than fits"
    );
    assert_eq!(
        s.resume(Some(&at(head - 3))),
        Resume::Replay { after: head - 3 }
    );
}

#[test]
fn the_snapshot_shows_finished_items_the_active_run_and_the_queue() {
    let mut s = state();
    let (a1, _) = send(&mut s, "c1", "one", None);
    s.on_delta("Hel".into());
    send(&mut s, "c2", "two", None);
    let active = s.active_view().unwrap();
    let user = |id: &str| {
        Item::user(
            id.into(),
            "t".into(),
            format!("c-{id}"),
            "2026-12-04T00:00:00Z".into(),
        )
    };
    let mut streaming = Item::streaming_reply(
        active.item_id.clone(),
        active.run_id.clone(),
        a1.item_id.clone(),
        "2026-12-04T00:00:00Z".into(),
    );
    streaming.text = "stale".into();
    // Newest first, as the store reads them: the streaming item is left out of `items`.
    let newest = vec![user("u3"), streaming, user("u2"), user("u1"), user("u0")];
    let snap = s.snapshot(newest, false);
    assert_eq!(snap.seq, s.record().head_seq);
    let ids: Vec<&str> = snap.items.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, vec!["u1", "u2", "u3"], "oldest first, one page");
    assert!(snap.has_more);
    assert_eq!(snap.active_run.as_ref().unwrap().text, "Hel");
    assert_eq!(snap.queued.len(), 1);
}

#[test]
fn a_crash_since_the_record_was_written_starts_a_new_epoch() {
    let mut rec = record();
    rec.head_seq = 41;
    let crashed = SessionState::load(rec.clone(), GENERATION + 1, rules());
    assert_ne!(crashed.record().epoch, "e1");
    assert_eq!(crashed.record().head_seq, 0);
    let clean = SessionState::load(rec, GENERATION, rules());
    assert_eq!(
        (clean.record().epoch.as_str(), clean.record().head_seq),
        ("e1", 41)
    );
}

#[test]
fn a_resume_further_back_than_half_a_queue_in_bytes_gets_a_snapshot() {
    let mut s = SessionState::load(
        record(),
        GENERATION,
        Rules {
            resume_bytes: 2000,
            ..rules()
        },
    );
    send(&mut s, "c1", "hi", None);
    for _ in 0..6 {
        s.on_delta("x".repeat(300));
    }
    drain(&mut s);
    let head = s.record().head_seq;
    let at = |seq| Position {
        epoch: "e1".into(),
        seq,
    };
    // Each delta event is over 300 bytes: four fit 2000 bytes, six do not.
    assert_eq!(
        s.resume(Some(&at(head - 4))),
        Resume::Replay { after: head - 4 }
    );
    assert_eq!(s.resume(Some(&at(head - 6))), Resume::Snapshot);
}

#[test]
fn a_snapshot_keeps_the_newest_items_that_fit_half_a_queue() {
    let mut s = SessionState::load(
        record(),
        GENERATION,
        Rules {
            resume_bytes: 3000,
            ..rules()
        },
    );
    let big = |id: &str| {
        Item::user(
            id.into(),
            "x".repeat(1000),
            format!("c-{id}"),
            "2026-12-04T00:00:00Z".into(),
        )
    };
    // Newest first, as the store reads them; each item takes about 1160 bytes.
    let snap = s.snapshot(vec![big("u2"), big("u1"), big("u0")], false);
    let ids: Vec<&str> = snap.items.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, vec!["u1", "u2"], "the newest that fit, oldest first");
    assert!(snap.has_more, "the client pages the rest");
    assert!(snap.approx_bytes() <= 3000);
    // The active run's text counts against the budget too.
    send(&mut s, "c1", "go", None);
    s.on_delta("y".repeat(2000));
    let snap = s.snapshot(vec![big("u2"), big("u1"), big("u0")], false);
    assert_eq!(snap.items.len(), 0);
    assert!(snap.has_more);
    assert_eq!(snap.active_run.unwrap().text.len(), 2000);
}
