//! The JSON we exchange with the model server: the request body we send and the streamed
//! `chat.completion.chunk` as we read it.
//!
//! These are our own serde types; async-openai still sends the request and splits the SSE
//! stream (`create_stream_byot`). Its chunk type requires `index` on every streamed tool call,
//! which Gemini's OpenAI-compatible endpoint, older Ollama and some proxies leave out, so such a
//! reply would fail as a malformed chunk; and its assistant message leaves `content` out where
//! OpenAI's documents show `null` next to `tool_calls`. Fields we do not read are ignored.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::ToolSpec;

/// The body of `POST /chat/completions`.
#[derive(Debug, Clone, Serialize)]
pub(super) struct ChatRequest {
    pub(super) model: String,
    pub(super) messages: Vec<Message>,
    pub(super) stream: bool,
    pub(super) stream_options: StreamOptions,
    /// The model's output limit from the models file, when it sets one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) max_tokens: Option<u32>,
    /// Left out when empty: some servers reject an empty list.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) tools: Vec<Tool>,
}

#[derive(Debug, Clone, Serialize)]
pub(super) struct StreamOptions {
    /// Ask for the usage chunk; servers that ignore the option simply report none.
    pub(super) include_usage: bool,
}

/// A function tool: `{"type":"function","function":{name, description, parameters}}`.
#[derive(Debug, Clone, Serialize)]
pub(super) struct Tool {
    #[serde(rename = "type")]
    kind: &'static str,
    function: ToolFunction,
}

#[derive(Debug, Clone, Serialize)]
struct ToolFunction {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    parameters: Value,
}

impl From<&ToolSpec> for Tool {
    fn from(spec: &ToolSpec) -> Self {
        Tool {
            kind: "function",
            function: ToolFunction {
                name: spec.name.clone(),
                description: spec.description.clone(),
                parameters: spec.parameters.clone(),
            },
        }
    }
}

/// One message of the conversation, tagged by `role`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "role", rename_all = "lowercase")]
pub(super) enum Message {
    System {
        content: String,
    },
    User {
        content: String,
    },
    Assistant {
        /// `null` when a turn that called tools wrote no text.
        content: Option<String>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        tool_calls: Vec<CallOut>,
    },
    Tool {
        tool_call_id: String,
        content: String,
    },
}

impl Message {
    /// Characters of what the message says, for the history budget.
    pub(super) fn chars(&self) -> usize {
        let count = |s: &str| s.chars().count();
        match self {
            Message::System { content }
            | Message::User { content }
            | Message::Tool { content, .. } => count(content),
            Message::Assistant {
                content,
                tool_calls,
            } => {
                let calls: usize = tool_calls
                    .iter()
                    .map(|c| count(&c.function.name) + count(&c.function.arguments))
                    .sum();
                content.as_deref().map_or(0, count) + calls
            }
        }
    }
}

/// A call in an assistant message: `{"id","type":"function","function":{name, arguments}}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(super) struct CallOut {
    pub(super) id: String,
    #[serde(rename = "type")]
    pub(super) kind: &'static str,
    pub(super) function: CallFunction,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(super) struct CallFunction {
    pub(super) name: String,
    /// JSON text.
    pub(super) arguments: String,
}

/// One streamed `chat.completion.chunk` (or the final usage chunk, whose `choices` is empty).
#[derive(Debug, Deserialize)]
pub(super) struct Chunk {
    #[serde(default)]
    pub(super) choices: Vec<Choice>,
    #[serde(default)]
    pub(super) usage: Option<ChunkUsage>,
    /// An error reported in-band (`data: {"error": {...}}`) instead of a chunk.
    #[serde(default)]
    pub(super) error: Option<Value>,
}

#[derive(Debug, Deserialize)]
pub(super) struct Choice {
    #[serde(default)]
    pub(super) index: u32,
    #[serde(default)]
    pub(super) delta: Delta,
    /// Unknown values fail the chunk (a protocol error), as they did with async-openai's types.
    #[serde(default)]
    pub(super) finish_reason: Option<WireFinish>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum WireFinish {
    Stop,
    Length,
    ToolCalls,
    ContentFilter,
    FunctionCall,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct Delta {
    #[serde(default)]
    pub(super) content: Option<String>,
    #[serde(default)]
    pub(super) refusal: Option<String>,
    #[serde(default)]
    pub(super) tool_calls: Option<Vec<CallChunk>>,
    /// Reasoning text, as DeepSeek, vLLM and llama.cpp name it (async-openai's chunk type has
    /// no field for it). Anything but a string is ignored rather than failing the chunk.
    #[serde(default)]
    pub(super) reasoning_content: Option<Value>,
    /// Reasoning text, as OpenRouter and Ollama's OpenAI-compatible endpoint name it.
    #[serde(default)]
    pub(super) reasoning: Option<Value>,
}

impl Delta {
    /// The reasoning text of this delta: `reasoning_content`, else `reasoning` (a server that
    /// sends both says the same thing twice), when it is a non-empty string.
    pub(super) fn reasoning_text(&mut self) -> Option<String> {
        let text = |v: Option<Value>| match v {
            Some(Value::String(s)) if !s.is_empty() => Some(s),
            _ => None,
        };
        text(self.reasoning_content.take()).or_else(|| text(self.reasoning.take()))
    }
}

/// One entry of `delta.tool_calls`: a fragment of a call.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub(super) struct CallChunk {
    /// Which call this fragment belongs to; missing on some servers.
    #[serde(default)]
    pub(super) index: Option<u32>,
    /// The call's id, usually on its first fragment only.
    #[serde(default)]
    pub(super) id: Option<String>,
    #[serde(default)]
    pub(super) function: Option<FunctionChunk>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub(super) struct FunctionChunk {
    #[serde(default)]
    pub(super) name: Option<String>,
    /// A fragment of JSON text; a server that sends an object instead gets it written out.
    #[serde(default)]
    pub(super) arguments: Option<Value>,
}

impl FunctionChunk {
    /// The arguments fragment as text ("" when there is none).
    pub(super) fn arguments_text(&self) -> String {
        match &self.arguments {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
        }
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct ChunkUsage {
    #[serde(default)]
    pub(super) prompt_tokens: u64,
    #[serde(default)]
    pub(super) completion_tokens: u64,
    #[serde(default)]
    pub(super) total_tokens: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tools_are_function_tools() {
        let spec = ToolSpec {
            name: "get_weather".into(),
            description: Some("Weather by city".into()),
            parameters: json!({"type": "object"}),
        };
        let bare = ToolSpec {
            description: None,
            ..spec.clone()
        };
        let got = serde_json::to_value([Tool::from(&spec), Tool::from(&bare)]).unwrap();
        assert_eq!(
            got,
            json!([
                {"type": "function", "function": {"name": "get_weather",
                    "description": "Weather by city", "parameters": {"type": "object"}}},
                {"type": "function", "function": {"name": "get_weather",
                    "parameters": {"type": "object"}}},
            ])
        );
    }

    #[test]
    fn lenient_tool_call_chunks() {
        let chunk: Chunk = serde_json::from_value(json!({
            "choices": [{"index": 0, "delta": {"tool_calls": [
                {"id": "a", "function": {"name": "f", "arguments": {"x": 1}}},
                {"index": 1, "function": {"arguments": null}},
            ]}, "finish_reason": null}],
            "usage": null,
        }))
        .unwrap();
        let calls = chunk.choices[0].delta.tool_calls.clone().unwrap();
        assert_eq!(calls[0].index, None);
        let f = calls[0].function.as_ref().unwrap();
        assert_eq!(f.arguments_text(), r#"{"x":1}"#);
        assert_eq!(calls[1].function.as_ref().unwrap().arguments_text(), "");
        let err: Result<Chunk, _> =
            serde_json::from_value(json!({"choices": [{"finish_reason": "bored"}]}));
        assert!(err.is_err(), "unknown finish reasons are malformed chunks");
    }
}
