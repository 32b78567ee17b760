//! The ChatKit requests that resolve a waiting tool call and stream what follows:
//! `threads.add_client_tool_output` (the newest pending client call's result) and
//! `threads.custom_action` (the approve / deny buttons of an approval widget). Everything that
//! can fail (no pending call, an unknown or already resolved call, an unknown action) is
//! answered with a 4xx before the stream starts, and nothing is stored then.

use axum::response::Response;
use serde_json::Value;

use super::items::{APPROVE, DENY};
use super::stream::{self, Follow, RunStream};
use super::{AppState, Reject};
use crate::domain::{Executor, Item, ItemStatus};
use crate::error::HubError;
use crate::session::{Caller, ItemOrder, ItemsQuery, Outbound, Outbox, ToolResolution};

/// Most recent items searched for a call a `custom_action` names that no longer waits.
const CALL_SCAN: usize = 200;

/// `threads.add_client_tool_output`: the SDK resolves the newest pending client call with
/// `result` (any JSON; a string is kept as it is, anything else as its JSON text).
pub(super) async fn client_tool_output(
    s: &AppState,
    caller: Caller,
    thread_id: &str,
    result: Value,
) -> Result<Response, Reject> {
    let output = match result {
        Value::String(s) => s,
        other => other.to_string(),
    };
    resolve(s, caller, thread_id, |waiting| {
        let call = waiting
            .iter()
            .rev()
            .find(|i| i.status == ItemStatus::Pending && executor(i) == Some(Executor::Client))
            .ok_or_else(|| {
                HubError::BadRequest("no client tool call is pending in this thread".into())
            })?;
        Ok((
            call.clone(),
            ToolResolution::Result {
                output,
                is_error: false,
            },
        ))
    })
    .await
}

/// `threads.custom_action` from an approval widget: `tool.approve` / `tool.deny` with
/// `{"call_id"}`.
pub(super) async fn custom_action(
    s: &AppState,
    caller: Caller,
    thread_id: &str,
    kind: &str,
    payload: &Value,
) -> Result<Response, Reject> {
    // Existence before the action's shape, as everywhere (PROTOCOL: the order of checks).
    s.hub.get_session(&caller, thread_id).await?;
    let approved = match kind {
        APPROVE => true,
        DENY => false,
        other => {
            return Err(HubError::BadRequest(format!(
                "unknown action `{other}`: this hub's widgets send `{APPROVE}` and `{DENY}`"
            ))
            .into())
        }
    };
    let Some(call_id) = payload.get("call_id").and_then(Value::as_str) else {
        return Err(HubError::BadRequest(format!("`{kind}` needs `payload.call_id`")).into());
    };
    let call_id = call_id.to_owned();
    // What became of the call when it no longer waits, for the error (unknown or resolved).
    let recent = s
        .hub
        .list_items(
            &caller,
            thread_id,
            ItemsQuery {
                limit: CALL_SCAN,
                before: None,
                after: None,
                order: ItemOrder::Desc,
            },
        )
        .await?;
    let seen = recent
        .items
        .into_iter()
        .find(|i| call_of(i) == Some(call_id.as_str()));
    resolve(s, caller, thread_id, move |waiting| {
        match waiting
            .iter()
            .find(|i| call_of(i) == Some(call_id.as_str()))
        {
            Some(call) if call.status == ItemStatus::AwaitingApproval => Ok((
                call.clone(),
                ToolResolution::Approval {
                    approved,
                    arguments: None,
                },
            )),
            _ => Err(match seen {
                Some(item) => HubError::BadRequest(format!(
                    "tool call `{call_id}` does not await approval: it is {}",
                    status_name(item.status)
                )),
                None => HubError::NotFound(format!("no tool call `{call_id}` in this thread")),
            }),
        }
    })
    .await
}

fn status_name(status: ItemStatus) -> String {
    serde_json::to_value(status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn executor(item: &Item) -> Option<Executor> {
    item.call.as_ref().map(|c| c.executor)
}

fn call_of(item: &Item) -> Option<&str> {
    item.call.as_ref().map(|c| c.call_id.as_str())
}

/// Subscribe (the snapshot names the waiting calls, atomically with the subscription), pick
/// the call and resolution with `choose`, resolve it, and stream what follows: the approved
/// call's result, then the continuation run once the run has no call left waiting.
async fn resolve(
    s: &AppState,
    caller: Caller,
    thread_id: &str,
    choose: impl FnOnce(&[Item]) -> Result<(Item, ToolResolution), HubError>,
) -> Result<Response, Reject> {
    let hub = &s.hub;
    let thread = hub.get_session(&caller, thread_id).await?;
    let cfg = hub.config();
    let (outbox, mut rx) = Outbox::channel(cfg.outbound_frames, cfg.outbound_bytes);
    let sub = hub
        .subscribe(&caller, thread_id, outbox, None, None)
        .await?;
    let waiting = loop {
        match rx.recv().await {
            Some(Outbound::Snapshot(snap)) => break snap.pending_tool_calls.clone(),
            Some(_) => continue,
            None => return Err(HubError::Unavailable("the thread went away".into()).into()),
        }
    };
    let (call, how) = choose(&waiting)?;
    let approval = matches!(how, ToolResolution::Approval { .. });
    let call_id = call_of(&call).unwrap_or_default().to_owned();
    hub.resolve_tool(&caller, thread_id, &call_id, how).await?;
    let run_id = call.run_id.clone().unwrap_or_default();
    let others = waiting
        .iter()
        .any(|i| i.run_id.as_deref() == Some(run_id.as_str()) && call_of(i) != Some(&call_id));
    let follow = if others {
        Follow::Nothing
    } else {
        Follow::ContinuationOf {
            run: run_id,
            reply_to: call.reply_to.clone(),
        }
    };
    let run = RunStream {
        hub: hub.clone(),
        caller,
        thread,
        rx,
        _sub: sub,
        follow,
        replace: approval.then(|| call.id.clone()),
        prelude: Vec::new(),
        user_item: None,
    };
    Ok(stream::respond(run, &s.signals))
}
