//! The conversation sent upstream: the system prompt, then the most recent user and assistant
//! items that fit the character budget, oldest first.
//!
//! An assistant reply that did not finish (cancelled, failed, interrupted) is sent with its
//! partial text and a note, so the model does not take the fragment for a finished answer and
//! build on it. A reply still streaming (never the case for a run's own history, but cheap to
//! guard) is left out.

use async_openai::types::chat::{
    ChatCompletionRequestAssistantMessage, ChatCompletionRequestMessage,
    ChatCompletionRequestSystemMessage, ChatCompletionRequestUserMessage,
};

use crate::domain::{Item, ItemStatus, Role};

/// Appended to an assistant reply that was stopped before it finished.
pub const STOPPED_NOTE: &str = "[This reply was stopped before it finished.]";

/// The messages for a run, given the session's items (oldest first, the last being the user
/// message the run answers).
///
/// The budget counts the characters of the items' texts (notes included), not the system
/// prompt. The newest item always goes, even alone over budget: dropping the question would
/// be worse than a server refusing a long one with a clear error.
pub(super) fn messages(
    system_prompt: Option<&str>,
    items: &[Item],
    budget_chars: usize,
) -> Vec<ChatCompletionRequestMessage> {
    let mut picked: Vec<ChatCompletionRequestMessage> = Vec::new();
    let mut used = 0usize;
    for item in items.iter().rev() {
        let Some((message, chars)) = message(item) else {
            continue;
        };
        if !picked.is_empty() && used.saturating_add(chars) > budget_chars {
            break;
        }
        used = used.saturating_add(chars);
        picked.push(message);
    }
    if let Some(prompt) = system_prompt {
        picked.push(ChatCompletionRequestSystemMessage::from(prompt).into());
    }
    picked.reverse();
    picked
}

/// One item as a chat message, with its size in characters; `None` for items not sent.
fn message(item: &Item) -> Option<(ChatCompletionRequestMessage, usize)> {
    match (item.role, item.status) {
        (_, ItemStatus::Streaming) => None,
        (Role::User, _) => Some((
            ChatCompletionRequestUserMessage::from(item.text.as_str()).into(),
            item.text.chars().count(),
        )),
        (Role::Assistant, ItemStatus::Complete) => Some((
            ChatCompletionRequestAssistantMessage::from(item.text.as_str()).into(),
            item.text.chars().count(),
        )),
        (Role::Assistant, ItemStatus::Cancelled | ItemStatus::Failed | ItemStatus::Interrupted) => {
            let text = if item.text.trim().is_empty() {
                STOPPED_NOTE.to_owned()
            } else {
                format!("{}\n\n{STOPPED_NOTE}", item.text)
            };
            let chars = text.chars().count();
            Some((
                ChatCompletionRequestAssistantMessage::from(text).into(),
                chars,
            ))
        }
        // Tool items go upstream with their assistant turn; until the model side knows tool
        // calls, they are left out.
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item(role: Role, status: ItemStatus, text: &str) -> Item {
        Item::new(
            "i".into(),
            role,
            text.into(),
            status,
            "2026-11-21T10:00:00.000Z".into(),
        )
    }

    fn wire(messages: &[ChatCompletionRequestMessage]) -> serde_json::Value {
        serde_json::to_value(messages).unwrap()
    }

    #[test]
    fn history_in_order_with_system_prompt_and_notes() {
        let items = [
            item(Role::User, ItemStatus::Complete, "one"),
            item(Role::Assistant, ItemStatus::Complete, "reply one"),
            item(Role::User, ItemStatus::Complete, "two"),
            item(Role::Assistant, ItemStatus::Cancelled, "half a"),
            item(Role::User, ItemStatus::Complete, "three"),
            item(Role::Assistant, ItemStatus::Interrupted, ""),
            item(Role::Assistant, ItemStatus::Streaming, "never sent"),
            item(Role::User, ItemStatus::Complete, "four"),
        ];
        let got = wire(&messages(Some("be brief"), &items, 10_000));
        let note = format!("half a\n\n{STOPPED_NOTE}");
        assert_eq!(
            got,
            json!([
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "one"},
                {"role": "assistant", "content": "reply one"},
                {"role": "user", "content": "two"},
                {"role": "assistant", "content": note},
                {"role": "user", "content": "three"},
                {"role": "assistant", "content": STOPPED_NOTE},
                {"role": "user", "content": "four"},
            ])
        );
    }

    #[test]
    fn budget_keeps_the_most_recent_items() {
        let items = [
            item(Role::User, ItemStatus::Complete, "aaaaaaaaaa"),
            item(Role::Assistant, ItemStatus::Complete, "bbbbb"),
            item(Role::User, ItemStatus::Complete, "ccccc"),
        ];
        let got = wire(&messages(None, &items, 10));
        assert_eq!(
            got,
            json!([
                {"role": "assistant", "content": "bbbbb"},
                {"role": "user", "content": "ccccc"},
            ])
        );
    }

    #[test]
    fn newest_item_goes_even_over_budget() {
        let items = [
            item(Role::User, ItemStatus::Complete, "old"),
            item(Role::User, ItemStatus::Complete, "a long question"),
        ];
        let got = wire(&messages(Some("sys"), &items, 3));
        assert_eq!(
            got,
            json!([
                {"role": "system", "content": "sys"},
                {"role": "user", "content": "a long question"},
            ])
        );
    }
}
