//! ChatKit wire shapes: request parsing (typed, with 400-ready messages) and the JSON the SDK
//! writes for threads, items, pages and stream events (nulls omitted, compact).
//!
//! Facts come from shared/research/chatkit.md; `tests/chatkit/` validates every byte against
//! the openai-chatkit models.

use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::domain::{Item, ItemStatus, Role};
use crate::session::SessionInfo;

/// Items per page when a request gives no `limit` (the SDK's `DEFAULT_PAGE_SIZE`).
pub(super) const DEFAULT_PAGE: usize = 20;
/// Largest page we serve, whatever `limit` asks.
pub(super) const MAX_PAGE: usize = 200;

/// A parsed request: `{"type": T, "params": {...}, "metadata"?: {...}}`.
#[derive(Debug)]
pub(super) enum Request {
    Create(UserInput),
    AddUserMessage {
        thread_id: String,
        input: UserInput,
    },
    RetryAfterItem {
        thread_id: String,
        item_id: String,
    },
    /// Streaming request types whose feature the hub lacks (client tools, structured input,
    /// custom actions): answered with an `error` event on an existing thread.
    StreamUnsupported {
        thread_id: String,
        what: &'static str,
    },
    GetById {
        thread_id: String,
    },
    List(PageParams),
    ItemsList {
        thread_id: String,
        page: PageParams,
    },
    Update {
        thread_id: String,
        title: String,
    },
    Delete {
        thread_id: String,
    },
    Feedback {
        thread_id: String,
        item_ids: Vec<String>,
        kind: String,
    },
    /// Non-streaming request types whose feature the hub lacks.
    JsonUnsupported {
        what: &'static str,
    },
}

/// Why a body is not a request we serve; becomes a 400.
#[derive(Debug)]
pub(super) struct BadRequest {
    pub(super) code: &'static str,
    pub(super) message: String,
}

fn bad(message: impl Into<String>) -> BadRequest {
    BadRequest {
        code: "bad_request",
        message: message.into(),
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct UserInput {
    pub(super) content: Vec<Content>,
    pub(super) attachments: Vec<String>,
    #[allow(dead_code)] // required by the models; the hub has one model per deployment
    pub(super) inference_options: Map<String, Value>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum Content {
    InputText {
        text: String,
    },
    /// A mention chip; the hub keeps its visible text.
    InputTag {
        text: String,
    },
}

impl UserInput {
    /// The plain text the hub stores: the parts' texts, in order.
    pub(super) fn text(&self) -> String {
        self.content
            .iter()
            .map(|c| match c {
                Content::InputText { text } | Content::InputTag { text } => text.as_str(),
            })
            .collect()
    }
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct PageParams {
    pub(super) limit: Option<i64>,
    pub(super) order: Option<Order>,
    pub(super) after: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Order {
    Asc,
    #[default]
    Desc,
}

impl PageParams {
    /// `limit` as the SDK reads it (`limit or 20`), capped.
    pub(super) fn limit(&self) -> Result<usize, BadRequest> {
        match self.limit {
            None | Some(0) => Ok(DEFAULT_PAGE),
            Some(n) if n < 0 => Err(bad("`limit` must not be negative")),
            Some(n) => Ok((n as usize).min(MAX_PAGE)),
        }
    }
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: String,
    params: Option<Value>,
}

#[derive(Deserialize)]
struct ThreadParams {
    thread_id: String,
}
#[derive(Deserialize)]
struct CreateParams {
    input: UserInput,
}
#[derive(Deserialize)]
struct AddParams {
    thread_id: String,
    input: UserInput,
}
#[derive(Deserialize)]
struct ThreadItemParams {
    thread_id: String,
    item_id: String,
}
#[derive(Deserialize)]
struct ItemsListParams {
    thread_id: String,
    #[serde(flatten)]
    page: PageParams,
}
#[derive(Deserialize)]
struct UpdateParams {
    thread_id: String,
    title: String,
}
#[derive(Deserialize)]
struct FeedbackParams {
    thread_id: String,
    item_ids: Vec<String>,
    kind: FeedbackKind,
}
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum FeedbackKind {
    Positive,
    Negative,
}
#[derive(Deserialize)]
struct ActionParams {
    thread_id: String,
    #[allow(dead_code)] // checked for shape only: the hub has no custom actions
    action: ActionShape,
}
#[derive(Deserialize)]
struct ActionShape {
    #[serde(rename = "type")]
    #[allow(dead_code)]
    kind: String,
}

/// Parse a request body. Unknown keys are ignored (as the SDK's models do); missing or
/// mistyped fields and unknown request types are errors.
pub(super) fn parse(body: &[u8]) -> Result<Request, BadRequest> {
    let env: Envelope =
        serde_json::from_slice(body).map_err(|e| bad(format!("malformed request: {e}")))?;
    let params = env.params.unwrap_or(Value::Null);
    fn p<T: for<'de> Deserialize<'de>>(kind: &str, v: Value) -> Result<T, BadRequest> {
        if !v.is_object() {
            return Err(bad(format!("{kind}: `params` must be an object")));
        }
        serde_json::from_value(v).map_err(|e| bad(format!("{kind}: invalid params: {e}")))
    }
    let k = env.kind.as_str();
    Ok(match k {
        "threads.create" => Request::Create(p::<CreateParams>(k, params)?.input),
        "threads.add_user_message" => {
            let a: AddParams = p(k, params)?;
            Request::AddUserMessage {
                thread_id: a.thread_id,
                input: a.input,
            }
        }
        "threads.retry_after_item" => {
            let a: ThreadItemParams = p(k, params)?;
            Request::RetryAfterItem {
                thread_id: a.thread_id,
                item_id: a.item_id,
            }
        }
        "threads.add_client_tool_output" => Request::StreamUnsupported {
            thread_id: p::<ThreadParams>(k, params)?.thread_id,
            what: "client tool calls",
        },
        "threads.add_structured_input" => Request::StreamUnsupported {
            thread_id: p::<ThreadItemParams>(k, params)?.thread_id,
            what: "structured input",
        },
        "threads.custom_action" => Request::StreamUnsupported {
            thread_id: p::<ActionParams>(k, params)?.thread_id,
            what: "custom actions",
        },
        "threads.get_by_id" => Request::GetById {
            thread_id: p::<ThreadParams>(k, params)?.thread_id,
        },
        "threads.list" => Request::List(if params.is_null() {
            PageParams::default()
        } else {
            p(k, params)?
        }),
        "items.list" => {
            let a: ItemsListParams = p(k, params)?;
            Request::ItemsList {
                thread_id: a.thread_id,
                page: a.page,
            }
        }
        "threads.update" => {
            let a: UpdateParams = p(k, params)?;
            Request::Update {
                thread_id: a.thread_id,
                title: a.title,
            }
        }
        "threads.delete" => Request::Delete {
            thread_id: p::<ThreadParams>(k, params)?.thread_id,
        },
        "items.feedback" => {
            let a: FeedbackParams = p(k, params)?;
            let kind = match a.kind {
                FeedbackKind::Positive => "positive",
                FeedbackKind::Negative => "negative",
            };
            Request::Feedback {
                thread_id: a.thread_id,
                item_ids: a.item_ids,
                kind: kind.to_owned(),
            }
        }
        "threads.sync_custom_action" => {
            p::<ActionParams>(k, params)?;
            Request::JsonUnsupported {
                what: "custom actions",
            }
        }
        "attachments.create" | "attachments.delete" => Request::JsonUnsupported {
            what: "attachments",
        },
        "input.transcribe" => Request::JsonUnsupported {
            what: "dictation (input.transcribe)",
        },
        other => {
            return Err(BadRequest {
                code: "unknown_type",
                message: format!("unknown request type `{other}`"),
            })
        }
    })
}

/// True for items a ChatKit client never sees: what the SDK would not have persisted (a failed
/// reply, an empty stopped one) or not yet (a reply still streaming).
pub(super) fn hidden(item: &Item) -> bool {
    match item.role {
        Role::User => false,
        Role::Assistant => {
            matches!(item.status, ItemStatus::Failed | ItemStatus::Streaming)
                || item.text.is_empty()
        }
        // ChatKit shows tool calls its own way (client_tool_call items), not as messages.
        Role::Tool => true,
    }
}

/// A hub item as a ChatKit `ThreadItem`.
pub(super) fn item(thread_id: &str, item: &Item) -> Value {
    match item.role {
        Role::User => json!({
            "id": item.id, "thread_id": thread_id, "created_at": item.created_at,
            "type": "user_message",
            "content": [{"type": "input_text", "text": item.text}],
            "attachments": [], "inference_options": {},
        }),
        Role::Assistant | Role::Tool => {
            assistant(thread_id, &item.id, &item.created_at, Some(&item.text))
        }
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

/// `Page<T>`: `after` (the last row's id) is omitted when there is none.
pub(super) fn page(data: Vec<Value>, has_more: bool, after: Option<&str>) -> Value {
    let mut p = json!({"data": data, "has_more": has_more});
    if let Some(a) = after {
        p["after"] = json!(a);
    }
    p
}

/// A `Thread`; `items` defaults to the empty page, as in listings and `thread.updated`.
pub(super) fn thread(info: &SessionInfo, items: Option<Value>) -> Value {
    let mut t = json!({
        "id": info.id, "created_at": info.created_at, "status": {"type": "active"},
        "metadata": {}, "items": items.unwrap_or_else(|| page(Vec::new(), false, None)),
    });
    if let Some(title) = &info.title {
        t["title"] = json!(title);
    }
    t
}

/// One stream event as the SDK frames it: `data: <compact json>\n\n`.
pub(super) fn frame(event: &Value) -> bytes::Bytes {
    let mut out = b"data: ".to_vec();
    serde_json::to_writer(&mut out, event).expect("a JSON value always serialises");
    out.extend_from_slice(b"\n\n");
    out.into()
}

pub(super) fn item_updated(item_id: &str, update: Value) -> Value {
    json!({"type": "thread.item.updated", "item_id": item_id, "update": update})
}
