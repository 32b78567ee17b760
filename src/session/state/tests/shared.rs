//! Shared state (PROTOCOL 1.2): versioned changes, durable before their event, stale versions
//! refused without a trace, the `state__patch` tool inside a run, the snapshot's document.

use serde_json::json;

use super::*;
use crate::session::state::StateChange;
use crate::tools::state_patch;

/// Decide and commit a change as the actor does once its batch is durable.
fn set(s: &mut SessionState, change: StateChange, base: Option<u64>) -> Result<u64, HubError> {
    let new = s.decide_state(change, base)?.expect("a change");
    assert_eq!(
        new.batch.session.as_ref().map(|r| r.state_version),
        Some(s.record().state_version + 1),
        "the batch written before the event carries the new document"
    );
    Ok(s.commit_state(new).state_version)
}

fn state_events(effects: &[Effect]) -> Vec<(u64, EventBody)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Emit(ev) if ev.body.kind().starts_with("state.") => {
                Some((ev.seq, ev.body.clone()))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn a_change_is_versioned_and_sequenced_and_the_snapshot_carries_the_document() {
    let mut s = state();
    let doc = json!({"count": 1});
    assert_eq!(
        set(&mut s, StateChange::Replace(doc.clone()), Some(0)),
        Ok(1)
    );
    let patch = json!([{"op": "replace", "path": "/count", "value": 2}]);
    assert_eq!(
        set(&mut s, StateChange::Patch(patch.clone()), Some(1)),
        Ok(2)
    );
    let effects = drain(&mut s);
    assert_eq!(
        state_events(&effects),
        vec![
            (
                1,
                EventBody::StateSnapshot {
                    state: doc,
                    version: 1
                }
            ),
            (2, EventBody::StateDelta { patch, version: 2 }),
        ]
    );
    let snap = s.snapshot(Vec::new(), false);
    assert_eq!(snap.state, Some(json!({"count": 2})));
    assert_eq!(snap.state_version, 2);
    assert_eq!(snap.seq, 2);
    // Both are in the replay tail, in order.
    let replayed: Vec<&str> = s.replay(0).map(|e| e.body.kind()).collect();
    assert_eq!(replayed, vec!["state.snapshot", "state.delta"]);
}

#[test]
fn a_stale_version_or_bad_input_is_refused_and_changes_nothing() {
    let mut s = state();
    set(&mut s, StateChange::Replace(json!({"a": 1})), Some(0)).unwrap();
    drain(&mut s);
    let head = s.record().head_seq;
    let refused = [
        (StateChange::Replace(json!({"a": 2})), Some(0), "conflict"),
        (StateChange::Replace(json!({"a": 2})), Some(5), "conflict"),
        (StateChange::Replace(json!([1, 2])), Some(1), "bad_request"),
        (StateChange::Replace(json!("text")), Some(1), "bad_request"),
        (
            StateChange::Replace(json!({"big": "x".repeat(300)})),
            Some(1),
            "too_large",
        ),
        (
            StateChange::Patch(json!({"op": "add"})),
            Some(1),
            "bad_request",
        ),
        (
            StateChange::Patch(json!([{"op": "remove", "path": "/nope"}])),
            Some(1),
            "bad_request",
        ),
        (
            StateChange::Patch(json!([{"op": "add", "path": "/b", "value": "x".repeat(300)}])),
            Some(1),
            "too_large",
        ),
        (
            StateChange::Patch(json!([{"op": "replace", "path": "", "value": 3}])),
            Some(1),
            "bad_request",
        ),
        (
            StateChange::Patch(json!([{"op": "remove", "path": "/a"}])),
            Some(0),
            "conflict",
        ),
    ];
    for (change, base, code) in refused {
        let e = s.decide_state(change.clone(), base).err();
        assert_eq!(
            e.as_ref().map(HubError::code),
            Some(code),
            "{change:?} from {base:?}"
        );
    }
    assert!(drain(&mut s).is_empty(), "a refused change queues nothing");
    assert_eq!(s.record().head_seq, head);
    assert_eq!(s.record().state_version, 1);
    assert_eq!(s.record().state, Some(json!({"a": 1})));
}

#[test]
fn a_patch_needs_a_document_and_adoption_of_an_equal_one_changes_nothing() {
    let mut s = state();
    let e = s.decide_state(StateChange::Patch(json!([])), Some(0)).err();
    assert_eq!(e.map(|e| e.code()), Some("bad_request"));
    // Adoption (AG-UI's run input) ignores the version, and an equal document is no change.
    set(&mut s, StateChange::Replace(json!({"a": 1})), Some(0)).unwrap();
    set(&mut s, StateChange::Replace(json!({"a": 1})), Some(1)).unwrap();
    assert_eq!(s.record().state_version, 2);
    drain(&mut s);
    assert!(s
        .decide_state(StateChange::Replace(json!({"a": 1})), None)
        .unwrap()
        .is_none());
    assert!(drain(&mut s).is_empty());
    assert_eq!(
        set(&mut s, StateChange::Replace(json!({"a": 3})), None),
        Ok(3)
    );
}

/// A turn that calls `state__patch` with `arguments`; the effects of its end.
fn patch_call(s: &mut SessionState, arguments: &str) -> Vec<Effect> {
    s.on_tool_started("call_p".into(), state_patch::NAME.into(), TOOLS);
    s.on_tool_delta("call_p", arguments.into());
    drain(s);
    s.on_finished(FinishReason::ToolCalls, TOOLS);
    drain(s)
}

#[test]
fn the_state_tool_patches_durably_before_its_delta_and_its_result() {
    let mut s = state();
    set(&mut s, StateChange::Replace(json!({"todo": []})), Some(0)).unwrap();
    send(&mut s, "c1", "add milk", None);
    let effects = patch_call(
        &mut s,
        r#"{"patch":[{"op":"add","path":"/todo/-","value":"milk"}]}"#,
    );
    let shape = shape(&effects);
    let pos = |k: &str| {
        shape
            .iter()
            .position(|x| x == k)
            .unwrap_or_else(|| panic!("{k} in {shape:?}"))
    };
    assert!(
        !shape.iter().any(|x| x.starts_with("call:")),
        "runs in-process: {shape:?}"
    );
    assert_eq!(
        kinds(&effects),
        vec![
            "tool.called",
            "item.completed",
            "state.delta",
            "tool.result",
            "item.started"
        ]
    );
    // The record with the new document is written and made durable before `state.delta`.
    let delta = pos("state.delta");
    let written = effects[..delta].iter().rposition(|e| {
        matches!(e, Effect::Write(b) if b.session.as_ref().is_some_and(|r| r.state_version == 2))
    });
    let barrier = effects[..delta]
        .iter()
        .rposition(|e| matches!(e, Effect::Barrier));
    assert!(written.is_some() && barrier > written, "{shape:?}");
    let result = tools::event_item(&effects, "tool.result");
    assert_eq!(result.status, ItemStatus::Complete);
    assert_eq!(s.record().state, Some(json!({"todo": ["milk"]})));
    assert_eq!(s.record().state_version, 2);
    assert!(s.has_active_run(), "the model takes its next turn");
}

#[test]
fn a_state_tool_call_that_fails_changes_nothing() {
    let mut s = state();
    set(&mut s, StateChange::Replace(json!({"todo": []})), Some(0)).unwrap();
    send(&mut s, "c1", "remove it", None);
    let effects = patch_call(&mut s, r#"{"patch":[{"op":"remove","path":"/todo/0"}]}"#);
    assert_eq!(
        kinds(&effects),
        vec![
            "tool.called",
            "item.completed",
            "tool.result",
            "item.started"
        ]
    );
    let result = tools::event_item(&effects, "tool.result");
    assert_eq!(result.status, ItemStatus::Failed);
    let output = result.call.and_then(|c| c.output).unwrap_or_default();
    assert!(output.contains("does not apply"), "{output}");
    assert_eq!(s.record().state, Some(json!({"todo": []})));
    assert_eq!(s.record().state_version, 1);
}

#[test]
fn the_state_tool_without_a_document_fails_and_no_client_tool_may_take_its_name() {
    let mut s = state();
    send(&mut s, "c1", "hi", None);
    let effects = patch_call(&mut s, r#"{"patch":[]}"#);
    assert_eq!(
        tools::event_item(&effects, "tool.result").status,
        ItemStatus::Failed
    );
    assert!(s.record().state.is_none());
    let r = SendRequest::new("c2", "x", None, 1000)
        .unwrap()
        .with_tools(vec![crate::domain::ToolSpec {
            name: state_patch::NAME.into(),
            description: None,
            parameters: json!({"type": "object"}),
        }])
        .unwrap();
    let e = s.send(&r, None, TOOLS, || Ok(())).err();
    assert_eq!(e.map(|e| e.code()), Some("bad_request"));
}
