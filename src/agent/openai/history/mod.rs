//! The conversation sent upstream (PROTOCOL 1.1, "What the model sees"): the system prompt,
//! then the most recent turns that fit the character budget, oldest first.
//!
//! - A user item is its message, preceded by its context (if any: its `context` and its
//!   `context_sources`, PROTOCOL 1.2) as one system message of its own, so the context never
//!   mixes with what the user wrote.
//! - An assistant item is one assistant message carrying the calls of its tool items (those
//!   whose `parent_id` names it), followed by one `tool` message per call, in order. Each call
//!   goes with its result: a denied call's message says the user denied it, a stopped one says
//!   it was stopped. A turn and its tool messages are kept or dropped together, so the model
//!   never sees a call without its result, nor a result without its call.
//! - An assistant reply that did not finish (cancelled, failed, interrupted) and called no
//!   tools is sent with its partial text and a note, so the model does not take the fragment
//!   for a finished answer and build on it. A reply still streaming (never the case for a
//!   run's own history, but cheap to guard) is left out, with its calls.

use std::collections::HashMap;

use super::wire::{CallFunction, CallOut, Message};
use crate::domain::{Item, ItemStatus, Role, ToolCall};

/// Appended to an assistant reply that was stopped before it finished.
pub const STOPPED_NOTE: &str = "[This reply was stopped before it finished.]";
/// The result the model sees for a call a person denied.
pub const DENIED_NOTE: &str = "The user denied this tool call; it did not run.";
/// The result the model sees for a call that was cancelled or interrupted (or, in a history
/// that should not hold one, a call with no final status).
pub const TOOL_STOPPED_NOTE: &str =
    "This tool call was stopped before it finished; it has no result.";
/// Opens the system message that carries a user message's context.
pub const CONTEXT_PREFIX: &str = "Context for the next user message (JSON): ";
/// Opens the result of a call that failed (the tool's error, or its timeout, follows).
const FAILED_PREFIX: &str = "The tool call failed: ";

/// The messages for a model turn, given the session's items (oldest first).
///
/// The budget counts the characters of what the messages say (text, notes, context, tool
/// names, arguments and results), not the system prompt. The current exchange (the last user
/// message and every turn after it) always goes, even alone over budget: dropping the
/// question, or a tool result the model is about to read, would be worse than a server
/// refusing a long request with a clear error. Older turns go while they fit.
pub(super) fn messages(
    system_prompt: Option<&str>,
    items: &[Item],
    budget_chars: usize,
) -> Vec<Message> {
    let turns = turns(items);
    let current = turns
        .iter()
        .rposition(|t| t.is_user)
        .unwrap_or(turns.len().saturating_sub(1));
    let mut used: usize = turns[current..].iter().map(|t| t.chars).sum();
    let mut first = current;
    while first > 0 && used.saturating_add(turns[first - 1].chars) <= budget_chars {
        first -= 1;
        used = used.saturating_add(turns[first].chars);
    }
    let prompt = system_prompt.map(|p| Message::System {
        content: p.to_owned(),
    });
    prompt
        .into_iter()
        .chain(turns.into_iter().skip(first).flat_map(|t| t.messages))
        .collect()
}

/// Messages that are kept or dropped together.
struct Turn {
    messages: Vec<Message>,
    chars: usize,
    is_user: bool,
}

impl Turn {
    fn new(messages: Vec<Message>, is_user: bool) -> Self {
        let chars = messages.iter().map(Message::chars).sum();
        Turn {
            messages,
            chars,
            is_user,
        }
    }
}

/// The items as turns, oldest first: each user message (with its context), and each assistant
/// item with its calls and their results. Tool items go with their assistant item; one whose
/// assistant item is not in the history is not sent. Reasoning items are not sent at all.
fn turns(items: &[Item]) -> Vec<Turn> {
    let mut calls: HashMap<&str, Vec<(&Item, &ToolCall)>> = HashMap::new();
    for item in items.iter().filter(|i| i.role == Role::Tool) {
        if let Some(call) = &item.call {
            calls
                .entry(call.parent_id.as_str())
                .or_default()
                .push((item, call));
        }
    }
    items
        .iter()
        .filter(|item| item.status != ItemStatus::Streaming)
        .filter_map(|item| match item.role {
            Role::User => Some(Turn::new(user(item), true)),
            Role::Assistant => {
                let calls = calls.get(item.id.as_str()).map_or(&[][..], Vec::as_slice);
                Some(Turn::new(assistant(item, calls), false))
            }
            // Tool items go with their assistant item; reasoning is never sent back.
            Role::Tool | Role::Reasoning => None,
        })
        .collect()
}

fn user(item: &Item) -> Vec<Message> {
    let context = context_message(item).map(|content| Message::System { content });
    let message = Message::User {
        content: item.text.clone(),
    };
    context.into_iter().chain([message]).collect()
}

/// The one system message that carries a user item's context (PROTOCOL 1.2, "Context"): its
/// native `context` alone as in 1.1, or, when other sources gave context too, one object
/// holding the native context under `context` next to the sources' keys.
fn context_message(item: &Item) -> Option<String> {
    let own = item.context.as_ref().filter(|c| !c.is_null());
    let sources = item
        .context_sources
        .as_ref()
        .and_then(|s| s.as_object())
        .filter(|s| !s.is_empty());
    let json = match (own, sources) {
        (None, None) => return None,
        (Some(c), None) => c.clone(),
        (own, Some(sources)) => {
            let mut all = serde_json::Map::new();
            if let Some(c) = own {
                all.insert("context".into(), c.clone());
            }
            all.extend(sources.iter().map(|(k, v)| (k.clone(), v.clone())));
            serde_json::Value::Object(all)
        }
    };
    Some(format!("{CONTEXT_PREFIX}{json}"))
}

fn assistant(item: &Item, calls: &[(&Item, &ToolCall)]) -> Vec<Message> {
    let stopped = matches!(
        item.status,
        ItemStatus::Cancelled | ItemStatus::Failed | ItemStatus::Interrupted
    );
    let content = if !calls.is_empty() {
        // The calls' results say what was stopped; the text before them was complete.
        (!item.text.is_empty()).then(|| item.text.clone())
    } else if stopped && item.text.trim().is_empty() {
        Some(STOPPED_NOTE.to_owned())
    } else if stopped {
        Some(format!("{}\n\n{STOPPED_NOTE}", item.text))
    } else {
        Some(item.text.clone())
    };
    let tool_calls = calls
        .iter()
        .map(|(_, call)| CallOut {
            id: call.call_id.clone(),
            kind: "function",
            function: CallFunction {
                name: call.name.clone(),
                arguments: arguments(&call.arguments),
            },
        })
        .collect();
    let results = calls.iter().map(|(tool, call)| Message::Tool {
        tool_call_id: call.call_id.clone(),
        content: result(tool.status, call.output.as_deref()),
    });
    std::iter::once(Message::Assistant {
        content,
        tool_calls,
    })
    .chain(results)
    .collect()
}

/// The arguments as sent back: the model's text when it is JSON, else `{}`. A call stopped
/// mid-arguments holds a fragment, and servers that parse the history's arguments (Ollama
/// does) refuse the whole request over one; its result says it was stopped.
fn arguments(text: &str) -> String {
    if serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok() {
        text.to_owned()
    } else {
        "{}".to_owned()
    }
}

/// What the tool message of a call says, by the tool item's status.
fn result(status: ItemStatus, output: Option<&str>) -> String {
    match status {
        ItemStatus::Complete => output.unwrap_or_default().to_owned(),
        ItemStatus::Failed => match output.filter(|o| !o.trim().is_empty()) {
            Some(o) => format!("{FAILED_PREFIX}{o}"),
            None => format!("{FAILED_PREFIX}no reason given."),
        },
        ItemStatus::Denied => DENIED_NOTE.to_owned(),
        ItemStatus::Cancelled
        | ItemStatus::Interrupted
        | ItemStatus::Streaming
        | ItemStatus::Running
        | ItemStatus::Pending
        | ItemStatus::AwaitingApproval => TOOL_STOPPED_NOTE.to_owned(),
    }
}

#[cfg(test)]
mod tests;
