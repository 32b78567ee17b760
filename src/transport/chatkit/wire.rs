//! ChatKit wire shapes: request parsing (typed, with 400-ready messages) and the JSON the SDK
//! writes for threads, items, pages and stream events (nulls omitted, compact).
//!
//! Facts come from shared/research/chatkit.md; `tests/chatkit/` validates every byte against
//! the openai-chatkit models.

use serde::Deserialize;
use serde_json::{json, Map, Value};

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
    /// `threads.add_client_tool_output`: the result of the newest pending client call.
    ClientToolOutput {
        thread_id: String,
        result: Value,
    },
    /// `threads.custom_action`: the approval widget's buttons.
    CustomAction {
        thread_id: String,
        kind: String,
        payload: Value,
    },
    /// Streaming request types whose feature the hub lacks (structured input): answered with
    /// an `error` event on an existing thread.
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
    /// "The user is referring to this": context for the model (PROTOCOL 1.2).
    #[serde(default)]
    pub(super) quoted_text: Option<String>,
    pub(super) inference_options: InferenceOptions,
    /// The request's `metadata` (set by [`parse`] from the envelope): context for the model.
    #[serde(skip)]
    pub(super) metadata: Option<Value>,
}

/// `inference_options`: the composer's model picker (`tool_choice` is not used).
#[derive(Debug, Default, Deserialize)]
pub(super) struct InferenceOptions {
    #[serde(default)]
    pub(super) model: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum Content {
    InputText {
        text: String,
    },
    /// A mention chip; the hub keeps its visible text, and its `data` goes to the model as
    /// context (PROTOCOL 1.2).
    InputTag {
        text: String,
        #[serde(default)]
        id: Option<String>,
        #[serde(default)]
        data: Option<Map<String, Value>>,
    },
}

impl UserInput {
    /// The tags of the message as context: `[{id, text, data}]` (PROTOCOL 1.2).
    pub(super) fn tags(&self) -> Vec<Value> {
        self.content
            .iter()
            .filter_map(|c| match c {
                Content::InputTag { text, id, data } => {
                    Some(json!({"id": id, "text": text, "data": data}))
                }
                Content::InputText { .. } => None,
            })
            .collect()
    }

    /// The plain text the hub stores: the parts' texts, in order.
    pub(super) fn text(&self) -> String {
        self.content
            .iter()
            .map(|c| match c {
                Content::InputText { text } | Content::InputTag { text, .. } => text.as_str(),
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
    #[serde(default)]
    metadata: Option<Value>,
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
struct ToolOutputParams {
    thread_id: String,
    result: Value,
}
#[derive(Deserialize)]
struct ActionParams {
    thread_id: String,
    action: ActionShape,
}
#[derive(Deserialize)]
struct ActionShape {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    payload: Value,
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
        "threads.create" => {
            let mut input = p::<CreateParams>(k, params)?.input;
            input.metadata = env.metadata;
            Request::Create(input)
        }
        "threads.add_user_message" => {
            let mut a: AddParams = p(k, params)?;
            a.input.metadata = env.metadata;
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
        "threads.add_client_tool_output" => {
            let a: ToolOutputParams = p(k, params)?;
            Request::ClientToolOutput {
                thread_id: a.thread_id,
                result: a.result,
            }
        }
        "threads.add_structured_input" => Request::StreamUnsupported {
            thread_id: p::<ThreadItemParams>(k, params)?.thread_id,
            what: "structured input",
        },
        "threads.custom_action" => {
            let a: ActionParams = p(k, params)?;
            Request::CustomAction {
                thread_id: a.thread_id,
                kind: a.action.kind,
                payload: a.action.payload,
            }
        }
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
