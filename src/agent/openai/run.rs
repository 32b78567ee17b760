//! One model turn against the upstream: connect (with retries before the first token), then
//! read chunks under two clocks, and turn what happens into [`AgentChunk`]s or one
//! [`AgentError`]. Text and tool-call fragments both count as tokens for the clocks.
//!
//! The run is a `futures::stream::unfold` over [`Run`], so all its state (the async-openai
//! stream included) lives inside the returned stream and we spawn nothing. Dropping it drops
//! async-openai's receiver; the reader task async-openai spawns per response sees that at once
//! (it selects on the channel closing) and drops the HTTP response, closing the connection.

use std::collections::VecDeque;
use std::sync::Arc;

use async_openai::error::OpenAIError;
use async_openai::types::stream::StreamResponse;
use futures::StreamExt;
use reqwest::StatusCode;
use tokio::time::{timeout_at, Instant};

use super::chunks::{Output, Step, Tally};
use super::http::UpstreamHttpError;
use super::retry::{is_retryable, Backoff};
use super::wire::{ChatRequest, Chunk, StreamOptions, Tool};
use super::{history, Shared};
use crate::agent::{AgentChunk, AgentError, AgentRequest, AgentStream};

pub(super) fn stream(shared: Arc<Shared>, request: AgentRequest) -> AgentStream {
    let run = Run {
        shared,
        request,
        phase: Phase::Connect,
        pending: VecDeque::new(),
    };
    Box::pin(futures::stream::unfold(run, |mut run| async move {
        let next = run.next().await?;
        Some((next, run))
    }))
}

struct Run {
    shared: Arc<Shared>,
    request: AgentRequest,
    phase: Phase,
    /// Outputs decided but not yet handed out (one chunk can carry text and a finish).
    pending: VecDeque<Output>,
}

enum Phase {
    Connect,
    Reading(Reading),
    Done,
}

/// A response being read.
struct Reading {
    stream: StreamResponse<Chunk>,
    /// When the current clock runs out: first-token clock until the first token, then the
    /// gap clock, restarted by every chunk.
    deadline: Instant,
    /// What the chunks said so far.
    tally: Tally,
}

impl Run {
    async fn next(&mut self) -> Option<Output> {
        loop {
            if let Some(out) = self.pending.pop_front() {
                return Some(out);
            }
            match &mut self.phase {
                Phase::Done => return None,
                Phase::Connect => match connect(&self.shared, &self.request).await {
                    Ok(reading) => self.phase = Phase::Reading(reading),
                    Err(e) => {
                        self.phase = Phase::Done;
                        self.log_failure(&e);
                        return Some(Err(e));
                    }
                },
                Phase::Reading(reading) => {
                    let step = read(reading, &self.shared, &mut self.pending).await;
                    if let Step::End(end) = step {
                        let usage = reading.tally.usage;
                        // Dropping `Reading` closes the upstream connection if the server left
                        // it open (a stall, or junk after the end).
                        self.phase = Phase::Done;
                        // The actor stores usage on the item and counts it in /metrics.
                        if let Some(usage) = usage {
                            self.pending.push_back(Ok(AgentChunk::Usage(usage)));
                        }
                        if let Err(e) = &end {
                            self.log_failure(e);
                        }
                        self.pending.push_back(end.map(AgentChunk::Finished));
                    }
                }
            }
        }
    }

    fn log_failure(&self, e: &AgentError) {
        tracing::warn!(
            session_id = %self.request.session_id,
            run_id = %self.request.run_id,
            code = %e.code,
            error = %e.message,
            "upstream run failed"
        );
    }
}

/// Sends the request until a response starts streaming, retrying what may be retried
/// while attempts and budget last. Each attempt runs under the first-token clock.
async fn connect(shared: &Shared, request: &AgentRequest) -> Result<Reading, AgentError> {
    let settings = &shared.settings;
    let body = body(shared, request);
    let backoff = Backoff::new(settings);
    let started = Instant::now();
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let deadline = Instant::now() + settings.first_token_timeout;
        let chat = shared.client.chat();
        let error = match timeout_at(deadline, chat.create_stream_byot(body.clone())).await {
            Ok(Ok(stream)) => {
                return Ok(Reading {
                    stream,
                    deadline,
                    tally: Tally::default(),
                })
            }
            Ok(Err(e)) => e,
            Err(_) => return Err(first_token_timeout(settings.first_token_timeout)),
        };
        let http = match &error {
            OpenAIError::Boxed(inner) => inner.downcast_ref::<UpstreamHttpError>(),
            _ => None,
        };
        let Some(http) = http else {
            return Err(AgentError::new(
                "upstream_bad_request",
                format!("could not send the request: {error}"),
                false,
            ));
        };
        let retry_after = match http {
            UpstreamHttpError::Status { retry_after, .. } => *retry_after,
            UpstreamHttpError::Transport { .. } => None,
        };
        let give_up = |why: &str| {
            let mut e = classify_http(http);
            e.message = format!("{} ({why})", e.message);
            e
        };
        if !is_retryable(http) {
            return Err(classify_http(http));
        }
        if attempt >= settings.max_attempts {
            return Err(give_up(&format!("gave up after {attempt} attempts")));
        }
        let wait = backoff.delay(attempt, retry_after);
        if started.elapsed() + wait > settings.retry_budget {
            return Err(give_up(&format!(
                "gave up after {attempt} attempts: the retry budget of {:?} is spent",
                settings.retry_budget
            )));
        }
        tracing::warn!(
            session_id = %request.session_id,
            run_id = %request.run_id,
            attempt,
            wait_ms = wait.as_millis() as u64,
            error = %http,
            "upstream attempt failed before the first token; retrying"
        );
        tokio::time::sleep(wait).await;
    }
}

fn body(shared: &Shared, request: &AgentRequest) -> ChatRequest {
    let settings = &shared.settings;
    ChatRequest {
        model: settings.model.clone(),
        messages: history::messages(
            settings.system_prompt.as_deref(),
            &request.history,
            settings.history_chars,
        ),
        stream: true,
        stream_options: StreamOptions {
            include_usage: true,
        },
        max_tokens: settings.max_output_tokens,
        tools: request.tools.iter().map(Tool::from).collect(),
    }
}

/// Reads one item from the response under the clocks; [`Tally::take`] says what it means.
async fn read(r: &mut Reading, shared: &Shared, out: &mut VecDeque<Output>) -> Step {
    let settings = &shared.settings;
    let item = match timeout_at(r.deadline, r.stream.next()).await {
        Ok(item) => item,
        // The reply is complete once finish_reason came; a server that then stalls before
        // `[DONE]` (or the usage chunk) costs the usage figures, not the reply.
        Err(_) if r.tally.finish.is_some() => return r.tally.end(),
        Err(_) if r.tally.got_token => {
            return Step::End(Err(AgentError::new(
                "upstream_timeout",
                format!(
                    "the model server sent nothing for {:?} in the middle of the reply",
                    settings.chunk_timeout
                ),
                true,
            )))
        }
        Err(_) => return Step::End(Err(first_token_timeout(settings.first_token_timeout))),
    };
    let step = r.tally.take(item, out);
    if matches!(step, Step::More) && (r.tally.got_token || r.tally.finish.is_some()) {
        r.deadline = Instant::now() + settings.chunk_timeout;
    }
    step
}

fn first_token_timeout(limit: std::time::Duration) -> AgentError {
    AgentError::new(
        "upstream_timeout",
        format!("no first token from the model server within {limit:?}"),
        true,
    )
}

/// The stable error of a failed HTTP attempt.
fn classify_http(e: &UpstreamHttpError) -> AgentError {
    match e {
        UpstreamHttpError::Transport { .. } => {
            AgentError::new("upstream_unavailable", e.to_string(), true)
        }
        UpstreamHttpError::Status { status, .. } => {
            let (code, retryable) = match *status {
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => ("upstream_auth", false),
                StatusCode::TOO_MANY_REQUESTS => ("upstream_rate_limited", is_retryable(e)),
                StatusCode::REQUEST_TIMEOUT => ("upstream_timeout", true),
                s if s.is_server_error() => ("upstream_unavailable", true),
                _ => ("upstream_bad_request", false),
            };
            AgentError::new(code, e.to_string(), retryable)
        }
    }
}
