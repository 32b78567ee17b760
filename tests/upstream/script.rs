//! What the scripted upstream answers: replies made of SSE steps, error answers, gates.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::watch;

/// One step of a streamed reply.
#[derive(Debug, Clone)]
pub(crate) enum Ev {
    /// The opening chunk OpenAI sends: `delta: {role: assistant, content: ""}`.
    Role,
    /// A content chunk.
    Text(String),
    /// A content chunk whose text is the Unix time in microseconds at which it is written, then
    /// a space: a production stamp for latency figures.
    Stamp,
    /// A chunk whose delta carries these `tool_calls` fragments.
    Calls(Vec<CallPart>),
    /// A chunk with an empty delta and this `finish_reason`.
    Finish(&'static str),
    /// The usage chunk (`choices: []`); sent only if the request asked for usage.
    Usage { prompt: u32, completion: u32 },
    /// `data: [DONE]`.
    Done,
    /// A raw SSE `data:` line, sent as is (malformed chunks, in-band errors).
    Raw(String),
    /// Bytes written to the body exactly as given, with no SSE framing (a byte order mark
    /// before the first event, a frame cut anywhere).
    Bytes(Vec<u8>),
    /// Wait before the next step.
    Sleep(Duration),
    /// Abort the connection mid-body (the client sees an incomplete chunked body).
    Reset,
    /// Send nothing more and keep the connection open until the client closes it.
    Hang,
    /// Hold the body until the test opens this gate (so a test can act at a known point).
    Wait(Gate),
}

/// One entry of a chunk's `delta.tool_calls`. Fields left `None` are left out of the JSON, so
/// scripts can play servers that omit the id (some local servers) or the index (Gemini).
#[derive(Debug, Clone, Default)]
pub(crate) struct CallPart {
    pub(crate) index: Option<u32>,
    pub(crate) id: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) arguments: Option<String>,
}

impl CallPart {
    /// A call's first fragment as OpenAI sends it: index, id, name and empty arguments.
    pub(crate) fn open(index: u32, id: &str, name: &str) -> CallPart {
        CallPart {
            index: Some(index),
            id: Some(id.to_owned()),
            name: Some(name.to_owned()),
            arguments: Some(String::new()),
        }
    }

    /// A later fragment: the index and a piece of the arguments.
    pub(crate) fn args(index: u32, fragment: &str) -> CallPart {
        CallPart {
            index: Some(index),
            arguments: Some(fragment.to_owned()),
            ..CallPart::default()
        }
    }

    /// A whole call in one fragment, as Ollama sends each of its parallel calls.
    pub(crate) fn whole(index: u32, id: &str, name: &str, arguments: &str) -> CallPart {
        CallPart {
            arguments: Some(arguments.to_owned()),
            ..CallPart::open(index, id, name)
        }
    }

    pub(crate) fn without_id(self) -> CallPart {
        CallPart { id: None, ..self }
    }

    pub(crate) fn without_index(self) -> CallPart {
        CallPart {
            index: None,
            ..self
        }
    }

    /// The JSON entry; `type` goes with the id, as OpenAI sends it.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        let mut entry = serde_json::Map::new();
        if let Some(index) = self.index {
            entry.insert("index".into(), json!(index));
        }
        if let Some(id) = &self.id {
            entry.insert("id".into(), json!(id));
            entry.insert("type".into(), json!("function"));
        }
        let mut function = serde_json::Map::new();
        if let Some(name) = &self.name {
            function.insert("name".into(), json!(name));
        }
        if let Some(arguments) = &self.arguments {
            function.insert("arguments".into(), json!(arguments));
        }
        entry.insert("function".into(), function.into());
        entry.into()
    }
}

/// A gate scripts wait on until the test opens it; it stays open (every waiter passes).
#[derive(Debug, Clone)]
pub(crate) struct Gate(Arc<watch::Sender<bool>>);

impl Default for Gate {
    fn default() -> Self {
        Gate(Arc::new(watch::channel(false).0))
    }
}

impl Gate {
    pub(crate) fn open(&self) {
        self.0.send_replace(true);
    }

    pub(super) async fn passed(&self) {
        let mut rx = self.0.subscribe();
        // Err only if the sender is gone, and we hold it.
        let _ = rx.wait_for(|open| *open).await;
    }
}

/// How the server answers one request.
#[derive(Debug, Clone)]
pub(crate) enum Reply {
    /// A non-streaming error answer.
    Status {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: String,
    },
    /// `200 text/event-stream` with these steps; the body ends after the last one.
    Stream(Vec<Ev>),
}

impl Reply {
    /// A well-formed streamed reply of these text pieces, `stop`, usage and `[DONE]`.
    pub(crate) fn text(pieces: &[&str]) -> Reply {
        let mut evs = vec![Ev::Role];
        evs.extend(pieces.iter().map(|p| Ev::Text((*p).to_owned())));
        evs.extend([
            Ev::Finish("stop"),
            Ev::Usage {
                prompt: 11,
                completion: pieces.len() as u32,
            },
            Ev::Done,
        ]);
        Reply::Stream(evs)
    }

    /// A reply of `n` stamped chunks (`Ev::Stamp`) `gap` apart, then `stop` and `[DONE]`.
    pub(crate) fn stamped(n: usize, gap: Duration) -> Reply {
        let mut evs = vec![Ev::Role];
        for i in 0..n {
            if i > 0 {
                evs.push(Ev::Sleep(gap));
            }
            evs.push(Ev::Stamp);
        }
        evs.extend([Ev::Finish("stop"), Ev::Done]);
        Reply::Stream(evs)
    }

    /// A turn that calls tools: the opening chunk, each step's fragments as one chunk,
    /// `finish_reason` (`tool_calls` unless the test plays a server that says otherwise), usage
    /// and `[DONE]`.
    pub(crate) fn calls(steps: Vec<Vec<CallPart>>, finish: &'static str) -> Reply {
        let mut evs = vec![Ev::Role];
        evs.extend(steps.into_iter().map(Ev::Calls));
        evs.extend([
            Ev::Finish(finish),
            Ev::Usage {
                prompt: 11,
                completion: 5,
            },
            Ev::Done,
        ]);
        Reply::Stream(evs)
    }

    /// An OpenAI-style JSON error answer.
    pub(crate) fn error(status: u16, kind: &str, message: &str) -> Reply {
        Reply::Status {
            status,
            headers: Vec::new(),
            body: json!({"error": {"message": message, "type": kind, "code": null}}).to_string(),
        }
    }

    pub(crate) fn with_header(mut self, name: &'static str, value: &str) -> Reply {
        if let Reply::Status { headers, .. } = &mut self {
            headers.push((name, value.to_owned()));
        }
        self
    }
}

/// The echo answer: "Upstream echo:" and the words of the last user message, one chunk each.
pub(crate) fn echo_pieces(user_text: &str) -> Vec<String> {
    std::iter::once("Upstream echo:".to_owned())
        .chain(user_text.split_whitespace().map(str::to_owned))
        .map(|w| format!("{w} "))
        .collect()
}
