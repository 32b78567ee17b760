//! The built-in scripted agent: a deterministic reply derived from the user's message, streamed
//! as a fixed number of deltas at a fixed pace, with no network.
//!
//! For a user text T, let `w = ["Echo:"] ++ T.split_whitespace()` (first 64 words); delta i is
//! `w[i % w.len()] + " "`. A text containing `[[fail]]` fails after its first delta with
//! `upstream_unavailable` (retryable), so every transport's failure path can be exercised
//! without a model. Pacing uses `tokio::time::interval`, so N deltas at D ms take N x D ms
//! however long each tick's work takes. Dropping the stream stops it at once.

use std::time::Duration;

use futures::StreamExt;
use tokio::time::MissedTickBehavior;

use super::{Agent, AgentChunk, AgentError, AgentRequest, AgentStream, FinishReason};
use crate::domain::Role;

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

impl Agent for ScriptedAgent {
    fn stream(&self, request: AgentRequest) -> AgentStream {
        let last_user = request
            .history
            .iter()
            .rev()
            .find(|i| i.role == Role::User)
            .map(|i| i.text.clone())
            .unwrap_or_default();
        let fail = last_user.contains(FAIL_MARKER);
        // Shared by every step of the stream: a step clones the Arc, not the words.
        let words: std::sync::Arc<[String]> = reply_words(&last_user).into();
        let total = self.deltas as usize;
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
