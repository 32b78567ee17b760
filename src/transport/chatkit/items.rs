//! Hub items as ChatKit `ThreadItem`s, in streams and listings alike, so a reload shows what
//! the stream showed: messages as messages; a client tool call as the `client_tool_call` item
//! the front end runs; a server tool call waiting for a person as a widget with approve and
//! deny buttons (their actions come back through `threads.custom_action`); a finished server
//! call as a `task` item (ChatKit's way of showing work done). One id throughout: the widget of
//! an approval is replaced by the call's task under the same id.

use serde_json::{json, Map, Value};

use crate::domain::{Executor, Item, ItemStatus, Role, ToolCall};

/// The `threads.custom_action` types of the approval widget's buttons; the payload is
/// `{"call_id": ...}`.
pub(super) const APPROVE: &str = "tool.approve";
pub(super) const DENY: &str = "tool.deny";

/// True for items a ChatKit client never sees: what the SDK would not have persisted (a failed
/// reply, an empty stopped one, a turn that only called tools) or not yet (a reply or call
/// still streaming, a server tool still running).
pub(super) fn hidden(item: &Item) -> bool {
    match item.role {
        Role::User => false,
        Role::Assistant => {
            matches!(item.status, ItemStatus::Failed | ItemStatus::Streaming)
                || item.text.is_empty()
        }
        Role::Tool => {
            item.call.is_none()
                || matches!(item.status, ItemStatus::Streaming | ItemStatus::Running)
        }
        Role::Reasoning => item.status == ItemStatus::Streaming || item.text.is_empty(),
    }
}

/// A hub item as a ChatKit `ThreadItem` (call [`hidden`] first).
pub(super) fn item(thread_id: &str, item: &Item) -> Value {
    match (item.role, &item.call) {
        (Role::User, _) => {
            let mut v = json!({
                "id": item.id, "thread_id": thread_id, "created_at": item.created_at,
                "type": "user_message",
                "content": [{"type": "input_text", "text": item.text}],
                "attachments": [], "inference_options": {},
            });
            // The quote the user referred to, kept as the SDK keeps it (PROTOCOL 1.2).
            if let Some(q) = quoted_text(item) {
                v["quoted_text"] = json!(q);
            }
            v
        }
        (Role::Tool, Some(call)) => tool(thread_id, item, call),
        (Role::Reasoning, _) => super::reasoning::workflow(thread_id, item),
        (Role::Assistant | Role::Tool, _) => {
            assistant(thread_id, &item.id, &item.created_at, Some(&item.text))
        }
    }
}

fn quoted_text(item: &Item) -> Option<&str> {
    item.context_sources
        .as_ref()?
        .get(crate::session::context::QUOTED_TEXT)?
        .as_str()
}

fn tool(thread_id: &str, item: &Item, call: &ToolCall) -> Value {
    let mut v = json!({"id": item.id, "thread_id": thread_id, "created_at": item.created_at});
    let body = match (call.executor, item.status) {
        (Executor::Client, status) => {
            let mut b = json!({
                "type": "client_tool_call",
                "status": if status == ItemStatus::Pending { "pending" } else { "completed" },
                "call_id": call.call_id, "name": call.name, "arguments": arguments(call),
            });
            if let Some(out) = &call.output {
                b["output"] = client_output(out);
            }
            b
        }
        (Executor::Server, ItemStatus::AwaitingApproval) => {
            json!({"type": "widget", "widget": approval_widget(call), "copy_text": format!("{} {}", call.name, call.arguments)})
        }
        (Executor::Server, status) => json!({"type": "task", "task": task(call, status)}),
    };
    merge(&mut v, body);
    v
}

/// The call's arguments as the object ChatKit wants (`{}` when the model wrote no object).
fn arguments(call: &ToolCall) -> Value {
    match serde_json::from_str::<Value>(&call.arguments) {
        Ok(Value::Object(o)) => Value::Object(o),
        _ => Value::Object(Map::new()),
    }
}

/// A client call's output as the front end gave it: `threads.add_client_tool_output` takes
/// any JSON, and the hub keeps a string as it is and anything else as its JSON text (what the
/// model reads). Structured text (an object or a list) goes back out as JSON, as the SDK
/// stores it; anything else stays the string it was.
fn client_output(out: &str) -> Value {
    match serde_json::from_str::<Value>(out) {
        Ok(v @ (Value::Object(_) | Value::Array(_))) => v,
        _ => json!(out),
    }
}

/// A Card naming the call, its arguments, and approve / deny buttons.
fn approval_widget(call: &ToolCall) -> Value {
    let button = |label: &str, action: &str, style: &str| {
        json!({"type": "Button", "label": label, "style": style,
               "onClickAction": {"type": action, "payload": {"call_id": call.call_id}}})
    };
    json!({"type": "Card", "children": [
        {"type": "Text", "value": format!("Run the tool {}?", call.name), "weight": "semibold"},
        {"type": "Markdown", "value": format!("```json\n{}\n```", call.arguments)},
        {"type": "Row", "gap": 2, "children": [
            button("Approve", APPROVE, "primary"),
            button("Deny", DENY, "secondary"),
        ]},
    ]})
}

/// A finished (or never run) server call as a custom task.
fn task(call: &ToolCall, status: ItemStatus) -> Value {
    let (title, done) = match status {
        ItemStatus::Complete => (format!("Called {}", call.name), true),
        ItemStatus::Failed => (format!("{} failed", call.name), true),
        ItemStatus::Denied => (format!("{} was denied", call.name), false),
        ItemStatus::Running | ItemStatus::Streaming => (format!("Calling {}", call.name), false),
        _ => (format!("{} was stopped", call.name), false),
    };
    let mut t = json!({"type": "custom", "title": title, "icon": "bolt",
                       "status_indicator": if done { "complete" } else { "none" }});
    if let Some(out) = &call.output {
        t["content"] = json!(out);
    }
    t
}

fn merge(into: &mut Value, from: Value) {
    if let (Value::Object(a), Value::Object(b)) = (into, from) {
        a.extend(b);
    }
}

/// An `assistant_message` item; `text: None` is the empty item of `thread.item.added`.
pub(super) fn assistant(thread_id: &str, id: &str, created_at: &str, text: Option<&str>) -> Value {
    let content: Vec<Value> = text.map(output_text).into_iter().collect();
    json!({"id": id, "thread_id": thread_id, "created_at": created_at, "type": "assistant_message", "content": content})
}

pub(super) fn output_text(text: &str) -> Value {
    json!({"type": "output_text", "text": text, "annotations": []})
}
