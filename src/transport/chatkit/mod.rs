//! `POST /chatkit`: the hub as a custom backend for the OpenAI ChatKit front end.
//!
//! A ChatKit thread is a hub session and its items are the session's items, so a run started
//! here streams to WebSocket tabs too and their messages show up here. The wire format is the
//! official Python SDK's (shared/research/chatkit.md), with two deliberate improvements: bad
//! requests get a 400 JSON error with a stable code instead of a 500, and an unknown thread
//! gets a 404 before any stream starts. Everything that can fail is checked before the SSE
//! headers go out.

mod calls;
mod items;
mod reasoning;
mod stream;
mod wire;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::AppState;
use crate::auth::Principal;
use crate::error::HubError;
use crate::session::{
    context, Caller, Hub, ItemOrder, ItemsQuery, Outbox, SendRequest, SessionInfo,
};
use stream::{Follow, RunStream};
use wire::{Order, PageParams, Request};

/// Longest thread title accepted by `threads.update` (as the REST API).
const MAX_TITLE_CHARS: usize = 200;
/// Most sessions read to serve `threads.list` in ascending order (the store lists newest first).
const MAX_ASC_SCAN: usize = 10_000;

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/chatkit", post(chatkit))
}

/// The request decoder alone, for the fuzz targets (`crate::fuzzing`): a description of the
/// request, or of why it is refused.
pub(crate) fn decode(body: &[u8]) -> String {
    match wire::parse(body) {
        Ok(Request::Create(input) | Request::AddUserMessage { input, .. }) => {
            format!("{} {:?}", input.text(), input.attachments)
        }
        Ok(Request::List(page) | Request::ItemsList { page, .. }) => {
            format!("{:?} {:?}", page.limit().map_err(|e| e.message), page)
        }
        Ok(other) => format!("{other:?}"),
        Err(e) => format!("{}: {}", e.code, e.message),
    }
}

/// An error answered before any stream starts: `{"error":{"code","message"}}` with a 4xx.
#[derive(Debug)]
struct Reject {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl From<HubError> for Reject {
    fn from(e: HubError) -> Self {
        Reject {
            status: crate::transport::error::status(&e),
            code: e.code(),
            message: e.to_string(),
        }
    }
}

impl From<wire::BadRequest> for Reject {
    fn from(e: wire::BadRequest) -> Self {
        Reject {
            status: StatusCode::BAD_REQUEST,
            code: e.code,
            message: e.message,
        }
    }
}

impl IntoResponse for Reject {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({"error": {"code": self.code, "message": self.message}})),
        )
            .into_response()
    }
}

fn unsupported(what: &str) -> Reject {
    Reject {
        status: StatusCode::BAD_REQUEST,
        code: "unsupported",
        message: format!("{what} are not supported by this hub"),
    }
}

#[utoipa::path(
    post, path = "/chatkit", tag = "chatkit", operation_id = "chatkit",
    request_body(content = crate::transport::openapi::ChatKitRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Streaming requests answer ChatKit's event stream, the others a JSON object", content(
            (String = "text/event-stream"), (Object = "application/json"),
        )),
        (status = 400, description = "A malformed request (`bad_request`) or a capability the hub lacks (`unsupported`)", body = crate::transport::openapi::ErrorBody),
        (status = 404, description = "No such thread or item: `not_found`", body = crate::transport::openapi::ErrorBody),
        (status = 409, description = "A run is active and the policy is `reject`: `busy`", body = crate::transport::openapi::ErrorBody),
        crate::transport::openapi::BodyRefused, crate::transport::openapi::Refused,
    ),
)]
async fn chatkit(State(s): State<AppState>, who: Principal, body: Bytes) -> Response {
    match handle(&s, who, &body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn handle(s: &AppState, who: Principal, body: &[u8]) -> Result<Response, Reject> {
    let hub = &s.hub;
    let caller = who.caller().clone();
    let json_ok = |v: Value| Ok(Json(v).into_response());
    match wire::parse(body)? {
        Request::Create(input) => {
            let req = send_request(hub, &input)?;
            let thread = hub.create_session(&caller, None, None).await?;
            let created = json!({"type": "thread.created", "thread": wire::thread(&thread, None)});
            match start(s, caller.clone(), thread.clone(), req, vec![created]).await {
                Ok(r) => Ok(r),
                Err(e) => {
                    // Nothing was stored in it: a failed create leaves no empty thread behind.
                    let _ = hub.delete_session(&caller, &thread.id).await;
                    Err(e)
                }
            }
        }
        Request::AddUserMessage { thread_id, input } => {
            let req = send_request(hub, &input)?;
            let thread = hub.get_session(&caller, &thread_id).await?;
            start(s, caller, thread, req, Vec::new()).await
        }
        Request::RetryAfterItem { thread_id, item_id } => {
            let thread = hub.get_session(&caller, &thread_id).await?;
            retry(s, caller, thread, item_id).await
        }
        Request::ClientToolOutput { thread_id, result } => {
            calls::client_tool_output(s, caller, &thread_id, result).await
        }
        Request::CustomAction {
            thread_id,
            kind,
            payload,
        } => calls::custom_action(s, caller, &thread_id, &kind, &payload).await,
        Request::StreamUnsupported { thread_id, what } => {
            hub.get_session(&caller, &thread_id).await?;
            let message = format!("{what} are not supported by this hub");
            Ok(stream::fixed(&[
                json!({"type": "error", "code": "custom", "message": message, "allow_retry": false}),
            ]))
        }
        Request::GetById { thread_id } => {
            let thread = hub.get_session(&caller, &thread_id).await?;
            let page = items_page(
                hub,
                &caller,
                &thread_id,
                &PageParams {
                    order: Some(Order::Asc),
                    ..Default::default()
                },
            )
            .await?;
            json_ok(wire::thread(&thread, Some(page)))
        }
        Request::List(page) => json_ok(threads_page(hub, &caller, &page).await?),
        Request::ItemsList { thread_id, page } => {
            json_ok(items_page(hub, &caller, &thread_id, &page).await?)
        }
        Request::Update { thread_id, title } => {
            if title.chars().count() > MAX_TITLE_CHARS {
                return Err(HubError::TooLarge(format!(
                    "`title` is longer than {MAX_TITLE_CHARS} characters"
                ))
                .into());
            }
            let thread = hub
                .update_session(&caller, &thread_id, Some(Some(title)), None)
                .await?;
            json_ok(wire::thread(&thread, None))
        }
        Request::Delete { thread_id } => {
            hub.delete_session(&caller, &thread_id).await?;
            json_ok(json!({}))
        }
        Request::Feedback {
            thread_id,
            item_ids,
            kind,
        } => {
            hub.set_feedback(&caller, &thread_id, &item_ids, &kind)
                .await?;
            json_ok(json!({}))
        }
        Request::JsonUnsupported { what } => Err(unsupported(what)),
    }
}

/// The message as a send (the session checks its size); attachments cannot exist here
/// (uploads are not supported), so any attachment id is unknown.
fn send_request(hub: &Hub, input: &wire::UserInput) -> Result<SendRequest, Reject> {
    if let Some(id) = input.attachments.first() {
        return Err(HubError::BadRequest(format!(
            "unknown attachment `{id}`: attachments are not supported"
        ))
        .into());
    }
    let client_msg_id = format!("chatkit-{}", uuid::Uuid::new_v4().simple());
    // PROTOCOL 1.2: the composer's model (refused here, before a thread is created, when
    // unknown) and the request's context.
    let model = input.inference_options.model.clone();
    hub.pick_model(model.as_deref())?;
    let req = SendRequest::new(
        client_msg_id,
        input.text(),
        None,
        hub.config().max_text_chars,
    )?
    .with_model(model)
    .with_context_source(
        context::CHATKIT_METADATA,
        input.metadata.clone().unwrap_or_default(),
    )?
    .with_context_source(context::QUOTED_TEXT, input.quoted_text.clone().into())?
    .with_context_source(context::TAGS, input.tags().into())?;
    // ChatKit front ends declare no tools: the configured ones are every run's client tools.
    let tools = hub.chatkit_client_tools();
    Ok(if tools.is_empty() {
        req
    } else {
        req.with_tools(tools.to_vec())?
    })
}

/// Subscribe (with a queue as bounded as a WebSocket connection's), store the user message
/// (its run starts or queues), then stream that run.
async fn start(
    s: &AppState,
    caller: Caller,
    thread: SessionInfo,
    req: SendRequest,
    prelude: Vec<Value>,
) -> Result<Response, Reject> {
    let hub = &s.hub;
    let cfg = hub.config();
    let (outbox, rx) = Outbox::channel(cfg.outbound_frames, cfg.outbound_bytes);
    let sub = hub
        .subscribe(&caller, &thread.id, outbox, None, None)
        .await?;
    let ack = hub.send(&caller, &thread.id, req).await?;
    let Some(run_id) = ack.run_id else {
        return Err(HubError::Internal("the message started no run".into()).into());
    };
    let run = RunStream {
        hub: hub.clone(),
        caller,
        thread,
        rx,
        _sub: sub,
        follow: Follow::Run(run_id),
        replace: None,
        prelude,
        user_item: Some(ack.item_id),
    };
    Ok(stream::respond(run, &s.signals))
}

/// `threads.retry_after_item`: the hub drops the items after the user message and answers it
/// again; the SDK sends no event for the dropped items (the client removes them itself).
async fn retry(
    s: &AppState,
    caller: Caller,
    thread: SessionInfo,
    item_id: String,
) -> Result<Response, Reject> {
    let hub = &s.hub;
    let cfg = hub.config();
    let (outbox, rx) = Outbox::channel(cfg.outbound_frames, cfg.outbound_bytes);
    let sub = hub
        .subscribe(&caller, &thread.id, outbox, None, None)
        .await?;
    let run_id = hub.retry_after(&caller, &thread.id, &item_id).await?;
    let run = RunStream {
        hub: hub.clone(),
        caller,
        thread,
        rx,
        _sub: sub,
        follow: Follow::Run(run_id),
        replace: None,
        prelude: Vec::new(),
        user_item: None,
    };
    Ok(stream::respond(run, &s.signals))
}

/// `items.list` (and the items of `threads.get_by_id`): hidden items are filtered after paging,
/// as the SDK does, so the cursor is always the last row read.
async fn items_page(
    hub: &Hub,
    who: &Caller,
    thread_id: &str,
    p: &PageParams,
) -> Result<Value, Reject> {
    let limit = p.limit()?;
    let order = p.order.unwrap_or_default();
    let query = ItemsQuery {
        limit,
        // ChatKit's `after` continues in the page's own order.
        after: if order == Order::Asc {
            p.after.clone()
        } else {
            None
        },
        before: if order == Order::Desc {
            p.after.clone()
        } else {
            None
        },
        order: if order == Order::Asc {
            ItemOrder::Asc
        } else {
            ItemOrder::Desc
        },
    };
    let page = hub.list_items(who, thread_id, query).await?;
    let last = page.items.last().map(|i| i.id.clone());
    let data = reasoning::before_answers(&page.items, order == Order::Desc)
        .into_iter()
        .filter(|i| !items::hidden(i))
        .map(|i| items::item(thread_id, i))
        .collect();
    Ok(wire::page(data, page.has_more, last.as_deref()))
}

/// `threads.list`: newest first by default; the cursor is the last thread's id.
async fn threads_page(hub: &Hub, who: &Caller, p: &PageParams) -> Result<Value, Reject> {
    let limit = p.limit()?;
    let (threads, has_more) = match p.order.unwrap_or_default() {
        Order::Desc => hub.list_sessions(who, limit, p.after.as_deref())?,
        Order::Asc => {
            let (mut all, _) = hub.list_sessions(who, MAX_ASC_SCAN, None)?;
            all.reverse();
            let start = match &p.after {
                Some(a) => all
                    .iter()
                    .position(|t| t.id == *a)
                    .map(|i| i + 1)
                    .ok_or_else(|| HubError::BadRequest("unknown thread id in `after`".into()))?,
                None => 0,
            };
            let rest: Vec<SessionInfo> = all.into_iter().skip(start).collect();
            let more = rest.len() > limit;
            (rest.into_iter().take(limit).collect(), more)
        }
    };
    let last = threads.last().map(|t| t.id.clone());
    let data = threads.iter().map(|t| wire::thread(t, None)).collect();
    Ok(wire::page(data, has_more, last.as_deref()))
}
