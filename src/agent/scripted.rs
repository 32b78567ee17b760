//! The built-in scripted agent: a deterministic reply derived from the user's message, streamed
//! as a fixed number of deltas at a fixed pace, with no network.
//!
//! For a user text T, let `w = ["Echo:"] ++ T.split_whitespace()` (first 64 words); delta i is
//! `w[i % w.len()] + " "`. A text containing `[[fail]]` fails after its first delta with
//! `upstream_unavailable` (retryable), so every transport's failure path can be exercised
//! without a model. Pacing uses `tokio::time::interval`, so N deltas at D ms take N x D ms
//! however long each tick's work takes. Dropping the stream stops it at once.
//!
//! Tools, so everything works with no model: a message `/tool NAME {json}` makes the first
//! turn call tool `NAME` (a server or a client tool) with those arguments (`{}` when none);
//! the turn after the results answers with text quoting each call's output.
//!
//! Reasoning, so thinking shows everywhere with no model: a message starting with `/think`
//! first streams as many reasoning deltas as it has reply deltas, cycling through
//! `["Thinking", "about"] ++ the message's other words` (each word then a space), at the same
//! pace, then the usual reply.

use std::time::Duration;

use futures::StreamExt;
use tokio::time::MissedTickBehavior;

use super::{Agent, AgentChunk, AgentError, AgentRequest, AgentStream, FinishReason};
use crate::domain::{Item, ItemStatus, Role};

/// The command that makes the scripted agent call a tool.
pub const TOOL_COMMAND: &str = "/tool ";

/// The command that makes the scripted agent reason before it replies.
pub const THINK_COMMAND: &str = "/think";

/// The words the reasoning of a `/think` message cycles through (`None`: not a `/think`
/// message).
pub fn reasoning_words(text: &str) -> Option<Vec<String>> {
    let rest = text.trim_start().strip_prefix(THINK_COMMAND)?;
    if !(rest.is_empty() || rest.starts_with(char::is_whitespace)) {
        return None;
    }
    let words = ["Thinking", "about"].into_iter().map(str::to_owned);
    Some(
        words
            .chain(rest.split_whitespace().take(64).map(str::to_owned))
            .collect(),
    )
}

/// The full reasoning the scripted agent streams for `text` with `deltas` deltas.
pub fn scripted_reasoning(text: &str, deltas: u32) -> Option<String> {
    let w = reasoning_words(text)?;
    Some(
        (0..deltas as usize)
            .map(|i| format!("{} ", w[i % w.len()]))
            .collect(),
    )
}

/// Marker that makes a scripted run fail after its first delta.
pub const FAIL_MARKER: &str = "[[fail]]";

#[derive(Debug, Clone)]
pub struct ScriptedAgent {
    pub deltas: u32,
    pub delay: Duration,
    /// Prefix every delta with the Unix time in microseconds (load tests measure latency).
    pub stamp: bool,
}

/// The words a reply to `text` cycles through.
pub fn reply_words(text: &str) -> Vec<String> {
    std::iter::once("Echo:".to_owned())
        .chain(text.split_whitespace().take(64).map(str::to_owned))
        .collect()
}

/// The full reply the scripted agent gives to `text` with `deltas` deltas (without stamps).
pub fn scripted_reply(text: &str, deltas: u32) -> String {
    let w = reply_words(text);
    (0..deltas as usize)
        .map(|i| format!("{} ", w[i % w.len()]))
        .collect()
}

/// `/tool NAME {json}` as (name, arguments).
pub fn tool_command(text: &str) -> Option<(String, String)> {
    let rest = text.trim().strip_prefix(TOOL_COMMAND)?.trim();
    let (name, args) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let args = args.trim();
    (!name.is_empty()).then(|| {
        let args = if args.is_empty() { "{}" } else { args };
        (name.to_owned(), args.to_owned())
    })
}

/// What the scripted agent says after tool results: one sentence per call.
pub fn tool_reply(calls: &[&Item]) -> String {
    calls
        .iter()
        .filter_map(|i| {
            let call = i.call.as_ref()?;
            let output = call.output.as_deref().unwrap_or("");
            Some(match i.status {
                ItemStatus::Complete => format!("Tool {} returned: {output}", call.name),
                ItemStatus::Failed => format!("Tool {} failed: {output}", call.name),
                ItemStatus::Denied => format!("Tool {} was denied.", call.name),
                _ => format!("Tool {} was stopped.", call.name),
            })
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A turn that calls one tool: started, arguments in two fragments, finished.
fn call_tool(name: String, args: String) -> AgentStream {
    let call_id = format!("call_{}", uuid::Uuid::new_v4().simple());
    let mut cut = args.len() / 2;
    while !args.is_char_boundary(cut) {
        cut -= 1;
    }
    let chunks = vec![
        Ok(AgentChunk::ToolCallStarted {
            call_id: call_id.clone(),
            name,
        }),
        Ok(AgentChunk::ToolCallDelta {
            call_id: call_id.clone(),
            arguments: args[..cut].to_owned(),
        }),
        Ok(AgentChunk::ToolCallDelta {
            call_id,
            arguments: args[cut..].to_owned(),
        }),
        Ok(AgentChunk::Finished(FinishReason::ToolCalls)),
    ];
    futures::stream::iter(chunks).boxed()
}

/// The one model id the scripted agent lists (PROTOCOL 1.2: picking it works, any other id is
/// `bad_request`).
pub const SCRIPTED_MODEL: &str = "scripted";

impl Agent for ScriptedAgent {
    fn models(&self) -> super::ModelList {
        super::ModelList::single(SCRIPTED_MODEL)
    }

    fn stream(&self, request: AgentRequest) -> AgentStream {
        // After tool results (the history ends with the turn's tool items): quote them.
        let trailing: Vec<&Item> = request
            .history
            .iter()
            .rev()
            .take_while(|i| i.role == Role::Tool)
            .collect();
        if !trailing.is_empty() {
            let calls: Vec<&Item> = trailing.into_iter().rev().collect();
            let text = tool_reply(&calls);
            let words = text.split(' ').count() as u32;
            return self.words(&text, words, false);
        }
        let last_user = request
            .history
            .last()
            .filter(|i| i.role == Role::User)
            .and_then(|i| tool_command(&i.text));
        if let Some((name, args)) = last_user {
            return call_tool(name, args);
        }
        let last_user = request
            .history
            .iter()
            .rev()
            .find(|i| i.role == Role::User)
            .map(|i| i.text.clone())
            .unwrap_or_default();
        let fail = last_user.contains(FAIL_MARKER);
        let reply = self.words_of(reply_words(&last_user), self.deltas, fail);
        match reasoning_words(&last_user) {
            Some(words) => self.thoughts(words).chain(reply).boxed(),
            None => reply,
        }
    }
}

impl ScriptedAgent {
    /// `self.deltas` reasoning deltas cycling through `words`, paced like the reply.
    fn thoughts(&self, words: Vec<String>) -> AgentStream {
        let mut interval = tokio::time::interval(self.delay.max(Duration::from_micros(1)));
        interval.set_missed_tick_behavior(MissedTickBehavior::Burst);
        let total = self.deltas as usize;
        futures::stream::unfold((0usize, interval), move |(i, mut interval)| {
            let word = (i < total).then(|| format!("{} ", words[i % words.len()]));
            async move {
                let word = word?;
                interval.tick().await;
                Some((Ok(AgentChunk::Reasoning(word)), (i + 1, interval)))
            }
        })
        .boxed()
    }

    /// `text` word by word, exactly (no `Echo:`, no cycling).
    fn words(&self, text: &str, deltas: u32, fail: bool) -> AgentStream {
        let words: Vec<String> = text.split(' ').map(str::to_owned).collect();
        self.words_of(words, deltas, fail)
    }

    /// `total` deltas cycling through `words`, paced, then `Finished` (or a failure after the
    /// first delta).
    fn words_of(&self, words: Vec<String>, total: u32, fail: bool) -> AgentStream {
        // Shared by every step of the stream: a step clones the Arc, not the words.
        let words: std::sync::Arc<[String]> = words.into();
        let total = total as usize;
        let stamp = self.stamp;
        let mut interval = tokio::time::interval(self.delay.max(Duration::from_micros(1)));
        // Burst keeps the schedule: a tick that fires late (the timer has 1 ms granularity) is
        // made up by the next ones, so N deltas at D take N x D. Delay would push every later
        // tick back and offer less than the asked rate (loadtest measured 450/s for 1000/s).
        interval.set_missed_tick_behavior(MissedTickBehavior::Burst);
        // State: (index of the next delta, interval). Index `total` means Finished is due.
        futures::stream::unfold((0usize, interval, false), move |(i, mut interval, done)| {
            let words = words.clone();
            async move {
                if done {
                    return None;
                }
                if i == total {
                    return Some((
                        Ok(AgentChunk::Finished(FinishReason::Stop)),
                        (i, interval, true),
                    ));
                }
                if fail && i == 1 {
                    let err = AgentError::new(
                        "upstream_unavailable",
                        "the scripted upstream failed on request",
                        true,
                    );
                    return Some((Err(err), (i, interval, true)));
                }
                interval.tick().await;
                let word = &words[i % words.len()];
                let text = if stamp {
                    let us = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_micros())
                        .unwrap_or(0);
                    format!("{us} {word} ")
                } else {
                    format!("{word} ")
                };
                Some((Ok(AgentChunk::Delta(text)), (i + 1, interval, false)))
            }
        })
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tool_command_names_a_tool_and_its_arguments() {
        assert_eq!(
            tool_command("/tool get_page {\"a\": 1}"),
            Some(("get_page".into(), "{\"a\": 1}".into()))
        );
        assert_eq!(tool_command("/tool now"), Some(("now".into(), "{}".into())));
        assert_eq!(tool_command("/tool "), None);
        assert_eq!(tool_command("hello /tool x"), None);
    }

    #[test]
    fn a_think_message_reasons_before_its_reply() {
        assert_eq!(
            scripted_reasoning("/think about cats", 5).as_deref(),
            Some("Thinking about about cats Thinking ")
        );
        assert_eq!(
            scripted_reasoning("/think", 3).as_deref(),
            Some("Thinking about Thinking ")
        );
        assert_eq!(scripted_reasoning("/thinker x", 3), None);
        assert_eq!(scripted_reasoning("hello /think", 3), None);
    }

    #[tokio::test]
    async fn the_reasoning_streams_before_the_reply() {
        let agent = ScriptedAgent {
            deltas: 2,
            delay: Duration::from_millis(1),
            stamp: false,
        };
        let user = Item::user("u".into(), "/think it".into(), "c".into(), "now".into());
        let request = AgentRequest {
            session_id: "s".into(),
            run_id: "r".into(),
            history: vec![user],
            tools: Vec::new(),
            model: None,
        };
        let chunks: Vec<AgentChunk> = agent
            .stream(request)
            .map(|c| c.expect("no error"))
            .collect()
            .await;
        assert_eq!(
            chunks,
            [
                AgentChunk::Reasoning("Thinking ".into()),
                AgentChunk::Reasoning("about ".into()),
                AgentChunk::Delta("Echo: ".into()),
                AgentChunk::Delta("/think ".into()),
                AgentChunk::Finished(FinishReason::Stop),
            ]
        );
    }
}
