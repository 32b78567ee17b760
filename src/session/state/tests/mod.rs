//! The protocol rules of PROTOCOL.md ("Details") driven through `SessionState` directly: no
//! runtime, no store, no sockets. Each test feeds commands and agent chunks and checks the
//! effects queued, in order.

use std::cell::Cell;

use super::*;

mod reasoning;
mod resume;
mod runs;
mod send;
mod shared;
mod tool_endings;
mod tools;
use crate::domain::{FinishReason, Item, ItemStatus, Position, Role};
use crate::error::HubError;
use crate::session::event::{Ack, RunError};
use crate::session::request::SendRequest;
use crate::store::IdemRecord;

const GENERATION: u64 = 7;

fn rules() -> Rules {
    Rules {
        replay_tail: 1024,
        replay_max: 512,
        resume_bytes: 1 << 20,
        busy_policy: BusyPolicy::Queue,
        snapshot_items: 3,
        max_tool_rounds: 2,
        state_max_bytes: 256,
    }
}

/// Server tools for the rules: `search` runs at once, `deploy` waits for an approval.
struct Policy;

impl ToolPolicy for Policy {
    fn is_server_tool(&self, name: &str) -> bool {
        matches!(name, "search" | "deploy")
    }
    fn needs_approval(&self, name: &str) -> bool {
        name == "deploy"
    }
}

const TOOLS: &Policy = &Policy;

fn record() -> SessionRecord {
    SessionRecord {
        id: "ses_1".into(),
        owner: "u".into(),
        title: None,
        metadata: None,
        created_at: "2026-12-04T00:00:00.000Z".into(),
        created_ms: 0,
        updated_at: "2026-12-04T00:00:00.000Z".into(),
        epoch: "e1".into(),
        head_seq: 0,
        generation: GENERATION,
        next_ord: 0,
        waiting: None,
        state: None,
        state_version: 0,
    }
}

fn state() -> SessionState {
    SessionState::load(record(), GENERATION, rules())
}

fn drain(s: &mut SessionState) -> Vec<Effect> {
    let effects: Vec<Effect> = std::iter::from_fn(|| s.next_effect()).collect();
    for e in &effects {
        if let Effect::Write(b) = e {
            // The store files items under the batch's session record and refuses a batch
            // without one (the write fails and nothing of it is stored).
            assert!(
                b.items.is_empty() || b.session.is_some(),
                "a write with items but no session record: {:?}",
                b.items.iter().map(|i| i.ord).collect::<Vec<_>>()
            );
        }
    }
    effects
}

/// The events among `effects`, as (seq, type) pairs.
fn events(effects: &[Effect]) -> Vec<(u64, &'static str)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Emit(ev) => Some((ev.seq, ev.body.kind())),
            _ => None,
        })
        .collect()
}

fn kinds(effects: &[Effect]) -> Vec<&'static str> {
    events(effects).into_iter().map(|(_, k)| k).collect()
}

/// A short name per effect, to check orderings.
fn shape(effects: &[Effect]) -> Vec<String> {
    effects
        .iter()
        .map(|e| match e {
            Effect::Write(_) => "write".to_owned(),
            Effect::Barrier => "barrier".to_owned(),
            Effect::SettleCheckpoints { .. } => "settle".to_owned(),
            Effect::Ack(_) => "ack".to_owned(),
            Effect::Emit(ev) => ev.body.kind().to_owned(),
            Effect::StartAgent { .. } => "start_agent".to_owned(),
            Effect::StopAgent => "stop_agent".to_owned(),
            Effect::RunEnded(l) => format!("ended:{l}"),
            Effect::DeleteSession(_) => "delete".to_owned(),
            Effect::EndSubscriptions => "end_subscriptions".to_owned(),
            Effect::CallTool { name, .. } => format!("call:{name}"),
            Effect::StopTool { .. } => "stop_tool".to_owned(),
            Effect::ToolAck(_) => "tool_ack".to_owned(),
        })
        .collect()
}

fn req(id: &str, text: &str, on_busy: Option<BusyPolicy>) -> SendRequest {
    SendRequest::new(id, text, on_busy, 1000).expect("valid")
}

/// Send and commit a new message as the actor does once its batch is durable.
fn send(
    s: &mut SessionState,
    id: &str,
    text: &str,
    on_busy: Option<BusyPolicy>,
) -> (Ack, Vec<Effect>) {
    match s
        .send(&req(id, text, on_busy), None, TOOLS, || Ok(()))
        .expect("accepted")
    {
        Accepted::New(msg) => {
            let ack = msg.ack().clone();
            s.commit_message(msg);
            (ack, drain(s))
        }
        Accepted::Duplicate(_) => panic!("not a duplicate"),
    }
}

fn run_id(ack: &Ack) -> String {
    ack.run_id.clone().expect("run id")
}

fn terminal_item(effects: &[Effect]) -> Option<Item> {
    effects.iter().find_map(|e| match e {
        Effect::Emit(ev) => match &ev.body {
            EventBody::RunCompleted { item, .. } | EventBody::RunFailed { item, .. } => {
                Some(item.clone())
            }
            EventBody::RunCancelled { item, .. } => item.clone(),
            _ => None,
        },
        _ => None,
    })
}
