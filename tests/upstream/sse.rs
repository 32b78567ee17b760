//! The body of a streamed answer: `chat.completion.chunk` SSE frames rendered from the script,
//! with a drop guard that notices when the client closes the connection.

use std::collections::VecDeque;
use std::sync::Arc;

use axum::body::Bytes;
use serde_json::{json, Value};
use tokio::time::Instant;

use super::{End, Ev, State};

/// Lives inside the response body: when hyper drops the body before the script ended, the
/// client closed the connection.
pub(super) struct BodyGuard {
    pub(super) state: Arc<State>,
    pub(super) n: usize,
}

impl Drop for BodyGuard {
    fn drop(&mut self) {
        let at = Instant::now();
        self.state.update(self.n, |r| {
            if r.end == End::Open {
                r.end = End::ClientClosed(at);
            }
        });
    }
}

type Chunk = Result<Bytes, std::io::Error>;

pub(super) fn body_stream(
    guard: BodyGuard,
    evs: VecDeque<Ev>,
    model: String,
    usage_wanted: bool,
) -> impl futures::Stream<Item = Chunk> + Send {
    futures::stream::unfold(Some((guard, evs)), move |st| {
        let model = model.clone();
        async move {
            let (guard, mut evs) = st?;
            loop {
                let Some(ev) = evs.pop_front() else {
                    guard.state.update(guard.n, |r| r.end = End::Finished);
                    return None;
                };
                let data = match ev {
                    Ev::Role => chunk(&model, json!({"role": "assistant", "content": ""}), None),
                    Ev::Text(t) => {
                        guard.state.update(guard.n, |r| r.sent.push_str(&t));
                        chunk(&model, json!({"content": t}), None)
                    }
                    Ev::Stamp => {
                        let t = format!("{} ", loadtest::wire::unix_us());
                        guard.state.update(guard.n, |r| r.sent.push_str(&t));
                        chunk(&model, json!({"content": t}), None)
                    }
                    Ev::Calls(parts) => {
                        let calls: Vec<Value> = parts.iter().map(|p| p.to_json()).collect();
                        chunk(&model, json!({"tool_calls": calls}), None)
                    }
                    Ev::Finish(reason) => chunk(&model, json!({}), Some(reason)),
                    Ev::Usage { .. } if !usage_wanted => continue,
                    Ev::Usage { prompt, completion } => json!({
                        "id": "chatcmpl-scripted", "object": "chat.completion.chunk",
                        "created": 1_763_700_000, "model": model, "choices": [],
                        "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                                  "total_tokens": prompt + completion}
                    })
                    .to_string(),
                    Ev::Done => "[DONE]".to_owned(),
                    Ev::Raw(line) => line,
                    Ev::Bytes(bytes) => {
                        return Some((Ok(Bytes::from(bytes)), Some((guard, evs))));
                    }
                    Ev::Sleep(d) => {
                        tokio::time::sleep(d).await;
                        continue;
                    }
                    Ev::Reset => {
                        guard.state.update(guard.n, |r| r.end = End::Reset);
                        let err = std::io::Error::new(
                            std::io::ErrorKind::ConnectionReset,
                            "scripted reset",
                        );
                        return Some((Err(err), None));
                    }
                    Ev::Hang => std::future::pending::<String>().await,
                    Ev::Wait(gate) => {
                        gate.passed().await;
                        continue;
                    }
                };
                let frame = Bytes::from(format!("data: {data}\n\n"));
                return Some((Ok(frame), Some((guard, evs))));
            }
        }
    })
}

fn chunk(model: &str, delta: Value, finish: Option<&str>) -> String {
    json!({
        "id": "chatcmpl-scripted",
        "object": "chat.completion.chunk",
        "created": 1_763_700_000,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    })
    .to_string()
}
