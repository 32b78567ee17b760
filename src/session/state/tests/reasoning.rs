//! Reasoning items (PROTOCOL 1.2): announced, streamed, durable before they end, ended by the
//! reply, a tool call, the turn's finish, or the run's cancel, failure or interruption.

use super::*;

/// The reasoning items the events carry (`item.started` / `item.completed`), in order.
fn reasoning_items(effects: &[Effect]) -> Vec<(&'static str, Item)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Emit(ev) => match &ev.body {
                EventBody::ItemStarted { item, .. } | EventBody::ItemCompleted { item, .. }
                    if item.role == Role::Reasoning =>
                {
                    Some((ev.body.kind(), item.clone()))
                }
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// The assistant item id `run.started` announced.
fn assistant_id(effects: &[Effect]) -> String {
    effects
        .iter()
        .find_map(|e| match e {
            Effect::Emit(ev) => match &ev.body {
                EventBody::RunStarted { item_id, .. } => Some(item_id.clone()),
                _ => None,
            },
            _ => None,
        })
        .expect("run.started")
}

#[test]
fn reasoning_streams_as_its_own_item_and_ends_durably_before_the_reply_starts() {
    let mut s = state();
    let (ack, started) = send(&mut s, "c1", "hi", None);
    let answer = assistant_id(&started);
    s.on_reasoning("let me ".into());
    s.on_reasoning("".into());
    s.on_reasoning("see".into());
    s.on_delta("Hi".into());
    s.on_reasoning("more".into());
    s.on_finished(FinishReason::Stop, TOOLS);
    let effects = drain(&mut s);
    assert_eq!(
        kinds(&effects),
        [
            "item.started",
            "reasoning.delta",
            "reasoning.delta",
            "item.completed",
            "run.delta",
            "item.started",
            "reasoning.delta",
            "item.completed",
            "run.completed"
        ],
        "an empty piece is no event; reasoning after the reply began is a new item"
    );
    let seqs: Vec<u64> = events(&effects).iter().map(|(q, _)| *q).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    let items = reasoning_items(&effects);
    let (_, first) = &items[0];
    assert_eq!(first.status, ItemStatus::Streaming);
    assert_eq!(first.answer_id.as_deref(), Some(answer.as_str()));
    assert_eq!(first.run_id, ack.run_id);
    assert_eq!(first.reply_to.as_deref(), Some(ack.item_id.as_str()));
    let (_, done) = &items[1];
    assert_eq!(
        (done.id.as_str(), done.text.as_str()),
        (first.id.as_str(), "let me see")
    );
    assert_eq!(done.status, ItemStatus::Complete);
    assert_eq!(items[3].1.text, "more");
    assert_eq!(items[3].1.status, ItemStatus::Complete);
    assert_ne!(items[3].1.id, first.id);
    // The reply holds none of the reasoning.
    assert_eq!(terminal_item(&effects).unwrap().text, "Hi");
    // Its end is written and durable before `item.completed`, no checkpoint overtaking it.
    let order = shape(&effects);
    let done_at = order.iter().position(|x| x == "item.completed").unwrap();
    let before = &order[..done_at];
    let settle = before.iter().rposition(|x| x == "settle").expect("settle");
    let write = before.iter().rposition(|x| x == "write").expect("write");
    let barrier = before
        .iter()
        .rposition(|x| x == "barrier")
        .expect("barrier");
    assert!(settle < write && write < barrier, "{order:?}");
    let stored = effects.iter().find_map(|e| match e {
        Effect::Write(b) => b
            .items
            .iter()
            .find(|i| i.item.id == first.id && i.item.status == ItemStatus::Complete),
        _ => None,
    });
    assert_eq!(stored.map(|i| i.item.text.as_str()), Some("let me see"));
}

#[test]
fn a_reasoning_item_is_stored_as_streaming_when_it_starts() {
    let mut s = state();
    send(&mut s, "c1", "hi", None);
    s.on_reasoning("hm".into());
    let effects = drain(&mut s);
    let started = effects.iter().find_map(|e| match e {
        Effect::Write(b) if !b.streaming_started.is_empty() => Some(b),
        _ => None,
    });
    let batch = started.expect("a streaming marker is written");
    assert_eq!(batch.items[0].item.role, Role::Reasoning);
    assert_eq!(batch.streaming_started[0].1, batch.items[0].ord);
    assert_eq!(
        shape(&effects),
        ["write", "item.started", "reasoning.delta"]
    );
}

#[test]
fn cancel_fail_and_shutdown_end_the_reasoning_item_with_their_status_and_partial_text() {
    type End = fn(&mut SessionState);
    let ends: [(End, ItemStatus, &str); 3] = [
        (
            |s| s.cancel(None).unwrap(),
            ItemStatus::Cancelled,
            "run.cancelled",
        ),
        (
            |s| {
                s.on_failed(RunError {
                    code: "upstream_timeout".into(),
                    message: "slow".into(),
                    retryable: true,
                })
            },
            ItemStatus::Failed,
            "run.failed",
        ),
        (
            |s| {
                s.begin_shutdown();
                s.interrupt_for_shutdown()
            },
            ItemStatus::Interrupted,
            "run.failed",
        ),
    ];
    for (end, status, terminal) in ends {
        let mut s = state();
        send(&mut s, "c1", "hi", None);
        s.on_reasoning("half a tho".into());
        drain(&mut s);
        end(&mut s);
        let effects = drain(&mut s);
        let order = kinds(&effects);
        assert_eq!(order, ["item.completed", terminal], "{status:?}");
        let items = reasoning_items(&effects);
        assert_eq!(items[0].1.status, status);
        assert_eq!(items[0].1.text, "half a tho");
        let shape = shape(&effects);
        assert_eq!(shape[0], "stop_agent", "the model stops first: {shape:?}");
        assert!(!s.has_active_run());
    }
}

#[test]
fn a_tool_call_ends_the_turns_reasoning_and_the_next_turn_reasons_anew() {
    let mut s = state();
    send(&mut s, "c1", "hi", None);
    s.on_reasoning("which tool".into());
    let effects = tools::call(&mut s, "call_1", "search");
    assert_eq!(
        kinds(&effects)[..4],
        [
            "item.started",
            "reasoning.delta",
            "item.completed",
            "tool.started"
        ]
    );
    s.on_finished(FinishReason::ToolCalls, TOOLS);
    drain(&mut s);
    s.on_tool_outcome(
        "call_1",
        crate::tools::ToolOutcome {
            output: "found".into(),
            is_error: false,
        },
    );
    let next = drain(&mut s);
    let second_turn = next
        .iter()
        .find_map(|e| match e {
            Effect::Emit(ev) => match &ev.body {
                EventBody::ItemStarted { item, .. } if item.role == Role::Assistant => {
                    Some(item.id.clone())
                }
                _ => None,
            },
            _ => None,
        })
        .expect("a second turn");
    s.on_reasoning("now answer".into());
    let effects = drain(&mut s);
    let items = reasoning_items(&effects);
    assert_eq!(items[0].1.answer_id.as_deref(), Some(second_turn.as_str()));
}

#[test]
fn snapshots_listings_and_checkpoints_see_the_streaming_reasoning() {
    let mut s = state();
    send(&mut s, "c1", "hi", None);
    assert!(s.take_checkpoint().is_none());
    s.on_reasoning("abc".into());
    let effects = drain(&mut s);
    let item = reasoning_items(&effects)[0].1.clone();
    let ord = effects
        .iter()
        .find_map(|e| match e {
            Effect::Write(b) if b.items.iter().any(|i| i.item.id == item.id) => {
                Some(b.items[0].ord)
            }
            _ => None,
        })
        .unwrap();
    let first = s.take_checkpoint().expect("reasoning is checkpointed");
    assert_eq!((first.ord, first.n, first.text.as_str()), (ord, 0, "abc"));
    s.on_reasoning("de".into());
    let second = s.take_checkpoint().unwrap();
    s.return_checkpoint(second);
    s.on_reasoning("f".into());
    let again = s.take_checkpoint().unwrap();
    assert_eq!((again.n, again.text.as_str()), (1, "def"));
    let active = s.active_view().expect("active");
    let live = active.reasoning.expect("the streaming reasoning item");
    assert_eq!(
        (live.id.as_str(), live.text.as_str()),
        (item.id.as_str(), "abcdef")
    );
    assert_eq!(s.live_item(item.clone()).text, "abcdef");
    // Once the reply starts the snapshot's active run has no reasoning, and the reply's text
    // is checkpointed from its start.
    s.on_delta("x".into());
    assert!(s.active_view().unwrap().reasoning.is_none());
    let reply = s.take_checkpoint().unwrap();
    assert_ne!(reply.ord, ord);
    assert_eq!(reply.text, "x");
}
