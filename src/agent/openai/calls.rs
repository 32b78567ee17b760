//! Streamed tool calls put back together: `delta.tool_calls` fragments matched to their call by
//! `id` and `index`, and turned into [`AgentChunk::ToolCallStarted`] and
//! [`AgentChunk::ToolCallDelta`] in the order they arrive.
//!
//! OpenAI sends a call's `id` and name on its first fragment and only `index` on the rest, one
//! index per parallel call. Others differ, and the matching covers them:
//! - Ollama reuses index 0 for parallel calls and tells them apart only by `id`: a fragment with
//!   an id not seen in this turn starts a new call, whatever its index;
//! - a fragment with an id already seen continues that call;
//! - without an id, `index` names the call last started at it (a new index starts a call, with
//!   an id made up as `call_<uuid>`);
//! - without either (Gemini leaves `index` out), the fragment continues the latest call.
//!
//! A call is announced once its name is known; argument text that comes before the name (some
//! servers stream it first) is held and sent right after the start.

use std::collections::HashMap;

use super::wire::CallChunk;
use crate::agent::{AgentChunk, AgentError};

/// The tool calls of one model turn.
#[derive(Debug, Default)]
pub(super) struct Calls {
    calls: Vec<Call>,
    /// The call a wire `index` names: the latest one started at it.
    by_index: HashMap<u32, usize>,
}

#[derive(Debug)]
struct Call {
    /// The id the model gave, to match later fragments by.
    wire_id: Option<String>,
    /// The id we report: the model's, or a made-up one.
    call_id: String,
    name: String,
    /// Whether `ToolCallStarted` went out.
    started: bool,
    /// Argument text that came before the name.
    held: String,
}

impl Calls {
    /// Applies one fragment, pushing the chunks it gives to `out`.
    pub(super) fn apply(&mut self, fragment: CallChunk, out: &mut Vec<AgentChunk>) {
        let id = fragment.id.filter(|id| !id.is_empty());
        let k = self.target(fragment.index, id);
        let (name, mut arguments) = match &fragment.function {
            Some(f) => (f.name.clone().unwrap_or_default(), f.arguments_text()),
            None => (String::new(), String::new()),
        };
        let call = &mut self.calls[k];
        // A repeated name (some servers send it with every fragment) changes nothing.
        if call.name.is_empty() {
            call.name = name;
        }
        if !call.started {
            if call.name.is_empty() {
                call.held.push_str(&arguments);
                return;
            }
            call.started = true;
            out.push(AgentChunk::ToolCallStarted {
                call_id: call.call_id.clone(),
                name: call.name.clone(),
            });
            arguments.insert_str(0, &std::mem::take(&mut call.held));
        }
        if !arguments.is_empty() {
            out.push(AgentChunk::ToolCallDelta {
                call_id: call.call_id.clone(),
                arguments,
            });
        }
    }

    /// The position of the call a fragment belongs to, starting a new call when it names none.
    fn target(&mut self, index: Option<u32>, id: Option<String>) -> usize {
        if let Some(id) = id {
            if let Some(k) = self
                .calls
                .iter()
                .position(|c| c.wire_id.as_deref() == Some(id.as_str()))
            {
                if let Some(i) = index {
                    self.by_index.insert(i, k);
                }
                return k;
            }
            return self.open(index, Some(id));
        }
        match index {
            Some(i) => match self.by_index.get(&i) {
                Some(&k) => k,
                None => self.open(Some(i), None),
            },
            None if self.calls.is_empty() => self.open(None, None),
            None => self.calls.len() - 1,
        }
    }

    fn open(&mut self, index: Option<u32>, wire_id: Option<String>) -> usize {
        let call_id = wire_id
            .clone()
            .unwrap_or_else(|| format!("call_{}", uuid::Uuid::new_v4().simple()));
        self.calls.push(Call {
            wire_id,
            call_id,
            name: String::new(),
            started: false,
            held: String::new(),
        });
        let k = self.calls.len() - 1;
        if let Some(i) = index {
            self.by_index.insert(i, k);
        }
        k
    }

    /// At the end of the turn: how many calls were started, or an error for a call whose name
    /// never came (it cannot be run, and the model would not recognise it).
    pub(super) fn finish(&self) -> Result<usize, AgentError> {
        if let Some(call) = self.calls.iter().find(|c| !c.started) {
            return Err(AgentError::new(
                "upstream_protocol",
                format!(
                    "the model server sent tool call {:?} without a function name",
                    call.call_id
                ),
                true,
            ));
        }
        Ok(self.calls.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::openai::wire::FunctionChunk;

    fn part(index: Option<u32>, id: Option<&str>, name: Option<&str>, args: &str) -> CallChunk {
        CallChunk {
            index,
            id: id.map(str::to_owned),
            function: Some(FunctionChunk {
                name: name.map(str::to_owned),
                arguments: Some(args.into()),
            }),
        }
    }

    fn run(parts: Vec<CallChunk>) -> (Vec<AgentChunk>, Calls) {
        let mut calls = Calls::default();
        let mut out = Vec::new();
        for p in parts {
            calls.apply(p, &mut out);
        }
        (out, calls)
    }

    fn started(call_id: &str, name: &str) -> AgentChunk {
        AgentChunk::ToolCallStarted {
            call_id: call_id.into(),
            name: name.into(),
        }
    }

    fn delta(call_id: &str, arguments: &str) -> AgentChunk {
        AgentChunk::ToolCallDelta {
            call_id: call_id.into(),
            arguments: arguments.into(),
        }
    }

    #[test]
    fn openai_style_parallel_calls_by_index() {
        let (out, calls) = run(vec![
            part(Some(0), Some("a"), Some("f"), ""),
            part(Some(0), None, None, "{\"x\":"),
            part(Some(1), Some("b"), Some("g"), ""),
            part(Some(0), None, None, "1}"),
            part(Some(1), None, None, "{}"),
        ]);
        assert_eq!(
            out,
            vec![
                started("a", "f"),
                delta("a", "{\"x\":"),
                started("b", "g"),
                delta("a", "1}"),
                delta("b", "{}"),
            ]
        );
        assert_eq!(calls.finish().unwrap(), 2);
    }

    #[test]
    fn a_new_id_at_a_used_index_is_a_new_call() {
        let (out, _) = run(vec![
            part(Some(0), Some("a"), Some("f"), "{\"n\":1}"),
            part(Some(0), Some("b"), Some("f"), "{\"n\":"),
            part(Some(0), None, None, "2}"),
            // The same id again continues its call, wherever it is.
            part(Some(0), Some("a"), Some("f"), ""),
        ]);
        assert_eq!(
            out,
            vec![
                started("a", "f"),
                delta("a", "{\"n\":1}"),
                started("b", "f"),
                delta("b", "{\"n\":"),
                delta("b", "2}"),
            ]
        );
    }

    #[test]
    fn calls_without_ids_or_indexes() {
        let (out, calls) = run(vec![
            part(Some(0), None, Some("f"), "{"),
            part(Some(0), None, None, "}"),
            part(None, Some("c"), Some("g"), "{\"a\""),
            part(None, None, None, ":1}"),
        ]);
        let AgentChunk::ToolCallStarted { call_id: made, .. } = &out[0] else {
            panic!("{out:?}")
        };
        assert!(made.starts_with("call_") && made.len() > 10, "{made}");
        assert_eq!(
            out[1..],
            [
                delta(made, "{"),
                delta(made, "}"),
                started("c", "g"),
                delta("c", "{\"a\""),
                delta("c", ":1}"),
            ]
        );
        assert_eq!(calls.finish().unwrap(), 2);
    }

    #[test]
    fn arguments_before_the_name_are_held() {
        let (out, calls) = run(vec![
            part(Some(0), Some("a"), None, "{\"q\":"),
            part(Some(0), None, Some("f"), "2"),
            part(Some(0), None, None, "}"),
        ]);
        assert_eq!(
            out,
            vec![started("a", "f"), delta("a", "{\"q\":2"), delta("a", "}")]
        );
        assert!(calls.finish().is_ok());

        let (out, calls) = run(vec![part(Some(0), Some("a"), None, "{}")]);
        assert!(out.is_empty());
        let err = calls.finish().unwrap_err();
        assert_eq!(err.code, "upstream_protocol");
        assert!(err.message.contains("without a function name"), "{err}");
    }
}
