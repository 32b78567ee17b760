//! What the hub takes from the items of an upstream response stream (text deltas of choice 0,
//! its reasoning text (`reasoning_content` or `reasoning`, which async-openai's typed chunk
//! drops: our `wire::Chunk` reads them from the chunk's JSON), tool-call fragments put together by [`Calls`], none after the finish; the finish reason; the
//! usage; in-band and stream errors) and how an ended reply is judged. No I/O and no clocks
//! (those stay in `run`), so the fuzz target `upstream_chunks` drives it through [`replay`].

use std::collections::VecDeque;

use async_openai::error::{OpenAIError, StreamError};
use bytes::Bytes;
use futures::{Stream, StreamExt};

use super::calls::Calls;
use super::http::{parse_error_body, truncate};
use super::wire::{Chunk, WireFinish};
use crate::agent::{AgentChunk, AgentError, FinishReason, Usage};

pub(super) type Output = Result<AgentChunk, AgentError>;

/// What the chunks of one response said so far.
#[derive(Debug, Default)]
pub(super) struct Tally {
    pub(super) got_token: bool,
    pub(super) finish: Option<WireFinish>,
    pub(super) usage: Option<Usage>,
    /// The turn's tool calls so far.
    calls: Calls,
}

/// What one more item of the response led to.
#[derive(Debug)]
pub(super) enum Step {
    /// Keep reading.
    More,
    /// The reply is over: emit the end (usage, then finished or an error).
    End(Result<FinishReason, AgentError>),
}

impl Tally {
    /// One item of the response stream (`None`: it ended), pushing any output to `out`.
    pub(super) fn take(
        &mut self,
        item: Option<Result<Chunk, OpenAIError>>,
        out: &mut VecDeque<Output>,
    ) -> Step {
        match item {
            None => self.end(),
            Some(Err(_)) if self.finish.is_some() => self.end(),
            Some(Err(e)) => Step::End(Err(classify_stream(&e))),
            // Like a broken stream, an error after the finish costs the usage, not the reply.
            Some(Ok(chunk)) if chunk.error.is_some() => match self.finish {
                Some(_) => self.end(),
                None => Step::End(Err(in_band_error(chunk.error.as_ref()))),
            },
            Some(Ok(chunk)) => {
                self.apply(chunk, out);
                Step::More
            }
        }
    }

    /// Takes text, tool-call fragments, finish reason and usage out of one chunk.
    fn apply(&mut self, chunk: Chunk, out: &mut VecDeque<Output>) {
        if let Some(u) = chunk.usage {
            self.usage = Some(Usage {
                prompt_tokens: u.prompt_tokens,
                completion_tokens: u.completion_tokens,
                total_tokens: u.total_tokens,
            });
        }
        // We ask for one choice; a server that sends more gets only the first one read.
        for choice in chunk.choices.into_iter().filter(|c| c.index == 0) {
            let mut delta = choice.delta;
            if self.finish.is_none() {
                if let Some(thought) = delta.reasoning_text() {
                    // Reasoning is the model answering: a token for the gap clock and retries.
                    self.got_token = true;
                    out.push_back(Ok(AgentChunk::Reasoning(thought)));
                }
                for text in [delta.content, delta.refusal].into_iter().flatten() {
                    if !text.is_empty() {
                        self.got_token = true;
                        out.push_back(Ok(AgentChunk::Delta(text)));
                    }
                }
                let mut started = Vec::new();
                for fragment in delta.tool_calls.into_iter().flatten() {
                    // Any fragment is a token, even one that only opens a call: the model is
                    // answering, so the gap clock applies and nothing may be retried.
                    self.got_token = true;
                    self.calls.apply(fragment, &mut started);
                }
                out.extend(started.into_iter().map(Ok));
            }
            if let Some(reason) = choice.finish_reason {
                self.finish.get_or_insert(reason);
            }
        }
    }

    /// The response ended (EOF, `[DONE]`, or trouble after the finish): judge by finish_reason.
    ///
    /// A turn that started calls ends with them whatever finish it names: Ollama, among others,
    /// says `stop` after tool calls. `tool_calls` with no call is a plain stop. `length` stays
    /// `Length` even after calls (their arguments may be cut), for the session to judge.
    pub(super) fn end(&self) -> Step {
        Step::End(match self.finish {
            Some(WireFinish::Length) => Ok(FinishReason::Length),
            Some(WireFinish::ContentFilter) => Err(AgentError::new(
                "upstream_content_filter",
                "the model server's content filter stopped the reply",
                false,
            )),
            Some(WireFinish::Stop | WireFinish::ToolCalls | WireFinish::FunctionCall) => {
                match self.calls.finish() {
                    Ok(0) => Ok(FinishReason::Stop),
                    Ok(_) => Ok(FinishReason::ToolCalls),
                    Err(e) => Err(e),
                }
            }
            None => Err(AgentError::new(
                "upstream_protocol",
                "the model server ended the stream without a finish_reason",
                true,
            )),
        })
    }
}

/// The stable error of a failure in the middle of the stream.
fn classify_stream(e: &OpenAIError) -> AgentError {
    match e {
        // The connection broke: reset, or closed before the body was complete.
        OpenAIError::StreamError(inner) if matches!(**inner, StreamError::EventStream(_)) => {
            AgentError::new(
                "upstream_unavailable",
                format!("the connection to the model server broke mid-reply: {inner}"),
                true,
            )
        }
        // Servers report mid-stream failures in-band as `data: {"error": {...}}`; one that
        // also breaks the chunk's shape still counts as that. Anything else unparsable is a
        // protocol error. The chunk itself is not repeated: it may hold completion text.
        OpenAIError::JSONDeserialize(parse, content) => {
            match serde_json::from_str::<serde_json::Value>(content) {
                Ok(v) if v.get("error").is_some() => in_band_error(v.get("error")),
                _ => AgentError::new(
                    "upstream_protocol",
                    format!("the model server sent a malformed chunk: {parse}"),
                    true,
                ),
            }
        }
        other => AgentError::new(
            "upstream_protocol",
            format!("the model server's stream failed: {other}"),
            true,
        ),
    }
}

/// The error a server reported in the stream as `{"error": ...}`.
fn in_band_error(error: Option<&serde_json::Value>) -> AgentError {
    let body = serde_json::to_vec(&error).unwrap_or_default();
    let (_, message) = parse_error_body(&body);
    let message = message.unwrap_or_else(|| "no message".into());
    AgentError::new(
        "upstream_error",
        format!(
            "the model server reported an error mid-reply: {}",
            truncate(&message, 300)
        ),
        true,
    )
}

/// A UTF-8 byte order mark, which SSE says to ignore at the start of a stream.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// A response body without its leading byte order marks (in whatever reads they come).
/// eventsource-stream 0.2.3, the SSE parser async-openai runs, means to skip one but slices
/// the text at byte 1 of its 3 and panics, killing the reader task (seen in its source while
/// fuzzing; the `upstream_chunks` target panics on fuzz/regressions/upstream_chunks/ without
/// this). It would panic on a second one just the same (the fuzzer found that), so every
/// leading one goes. `http` hands async-openai the body through this. A read error while the
/// first bytes are held drops them: the stream fails anyway.
pub(super) fn skip_bom<S, E>(body: S) -> impl Stream<Item = Result<Bytes, E>>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    let state = (body.fuse(), Some(Vec::new()));
    futures::stream::unfold(state, |(mut body, head)| async move {
        let Some(mut head) = head else {
            let item = body.next().await?;
            return Some((item, (body, None)));
        };
        let first = loop {
            while head.starts_with(BOM) {
                head.drain(..BOM.len());
            }
            // Held while it is empty or may still turn out a BOM.
            if !head.is_empty() && !BOM.starts_with(&head) {
                break Ok(head);
            }
            match body.next().await {
                Some(Ok(bytes)) => head.extend_from_slice(&bytes),
                Some(Err(e)) => break Err(e),
                // Nothing but BOMs, or the start of one.
                None => return None,
            }
        };
        Some((first.map(Bytes::from), (body, None)))
    })
}

/// How many bytes of the body [`replay`] hands over at a time, like TCP reads: events and
/// UTF-8 characters cut across reads must come out whole.
const READ: usize = 13;

/// For the fuzz target: a response body through [`skip_bom`] and the SSE parser async-openai
/// uses (eventsource-stream), its event mapping (`[DONE]` ends, `keepalive` events are skipped,
/// `data` is parsed as a [`Chunk`]) and then [`Tally::take`], as `run` reads a response.
/// Returns what the run would yield, one output a line, the end last.
pub(crate) fn replay(body: &[u8]) -> String {
    let reads = body
        .chunks(READ)
        .map(|b| Ok::<_, std::io::Error>(Bytes::copy_from_slice(b)));
    let body = Box::pin(skip_bom(futures::stream::iter(reads)));
    let mut events = eventsource_stream::EventStream::new(body);
    let mut tally = Tally::default();
    let mut out = VecDeque::new();
    let end = futures::executor::block_on(async {
        loop {
            let item = loop {
                match events.next().await {
                    None => break None,
                    Some(Err(e)) => {
                        let e = StreamError::EventStream(e.to_string());
                        break Some(Err(OpenAIError::StreamError(Box::new(e))));
                    }
                    Some(Ok(event)) if event.data == "[DONE]" => break None,
                    Some(Ok(event)) if event.event == "keepalive" => continue,
                    Some(Ok(event)) => {
                        break Some(
                            serde_json::from_str::<Chunk>(&event.data)
                                .map_err(|e| OpenAIError::JSONDeserialize(e, event.data.clone())),
                        )
                    }
                }
            };
            if let Step::End(end) = tally.take(item, &mut out) {
                return end;
            }
        }
    });
    let mut lines: Vec<String> = out.into_iter().map(|o| format!("{o:?}")).collect();
    lines.push(format!("{:?} {end:?}", tally.usage));
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn through(reads: &[&[u8]]) -> Vec<u8> {
        let reads = reads
            .iter()
            .map(|r| Ok::<_, ()>(Bytes::copy_from_slice(r)))
            .collect::<Vec<_>>();
        let out = skip_bom(futures::stream::iter(reads)).collect::<Vec<_>>();
        futures::executor::block_on(out)
            .into_iter()
            .flat_map(|r| r.expect("no read error").to_vec())
            .collect()
    }

    #[test]
    fn a_leading_bom_goes_in_whatever_reads_it_comes() {
        assert_eq!(through(&[b"\xEF\xBB\xBFdata: x\n\n"]), b"data: x\n\n");
        assert_eq!(through(&[b"\xEF", b"", b"\xBB", b"\xBFda", b"ta"]), b"data");
        assert_eq!(through(&[b"\xEF\xBB"]), b"");
        assert_eq!(through(&[b"\xEF\xBB\xBF\xEF\xBB\xBFa"]), b"a");
        assert_eq!(
            through(&[b"\xEF\xBB\xBF", b"\xEF\xBB", b"\xBF", b"a"]),
            b"a"
        );
        // Only a leading one, and other bytes are kept as they are.
        assert_eq!(through(&[b"d", b"\xEF\xBB\xBF"]), b"d\xEF\xBB\xBF");
        assert_eq!(through(&[b"\xEFx", b"yz"]), b"\xEFxyz");
        assert_eq!(through(&[b"ab"]), b"ab");
        assert_eq!(through(&[]), b"");
    }
}
