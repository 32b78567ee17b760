//! Schemas of the JSON that handlers parse field by field or build by hand (error bodies,
//! request bodies, ChatKit and AG-UI payloads). They describe the wire and are never built.
#![allow(
    dead_code,
    reason = "describe JSON built or parsed elsewhere; only their schemas are used"
)]

use serde::Serialize;
use utoipa::{IntoParams, IntoResponses, ToSchema};

use crate::config::BusyPolicy;
use crate::session::event::Ack;

/// Every error over HTTP: `{"error":{"code","message"}}`.
#[derive(ToSchema)]
#[schema(example = json!({"error": {"code": "not_found", "message": "no such session"}}))]
pub(crate) struct ErrorBody {
    pub(crate) error: ErrorDetail,
}

#[derive(ToSchema)]
pub(crate) struct ErrorDetail {
    /// Stable code (PROTOCOL.md): `bad_request`, `unknown_type`, `too_large`, `not_found`,
    /// `forbidden`, `unauthorized`, `busy`, `no_active_run`, `rate_limited`, `unavailable`,
    /// `internal`; ChatKit adds `unsupported`.
    pub(crate) code: String,
    /// What was wrong, for a person.
    pub(crate) message: String,
}

/// Refusals of every route that identifies its caller.
#[derive(IntoResponses)]
pub(crate) enum Refused {
    /// No valid bearer token (authentication on): `unauthorized`, with `WWW-Authenticate`.
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// The request's `Origin` is not allowed (`--cors-origins`): `forbidden`.
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// Over a request, message, run or connection limit: `rate_limited`.
    #[response(status = 429, headers(("Retry-After" = u64, description = "Seconds to wait")))]
    RateLimited(ErrorBody),
}

/// Refusals of a request body, before any handler sees it.
#[derive(IntoResponses)]
pub(crate) enum BodyRefused {
    /// The body did not arrive within `--body-timeout-secs`: code `bad_request`.
    #[response(status = 408)]
    TooSlow(ErrorBody),
    /// The body is over `--max-body-bytes`, or a field over its limit: `too_large`.
    #[response(status = 413)]
    TooLarge(ErrorBody),
}

/// The query of `GET /v1/sessions/{id}/events`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct EventsQuery {
    /// Resume after `<epoch>:<seq>` (an event id).
    since: Option<String>,
    /// A ticket from `POST /v1/ws-ticket`, for clients that cannot send a bearer token.
    ticket: Option<String>,
}

/// The answers of `GET /v1/sessions/{id}/events`.
#[derive(IntoResponses)]
pub(crate) enum EventStream {
    /// The session's snapshot (or the replay of the missed events), then every live event:
    /// `id: <epoch>:<seq>`, `event: <type>`, `data: <the JSON the WebSocket sends>`.
    #[response(status = 200, content_type = "text/event-stream", headers(
        ("Sessionhub-Resume" = String, description = "`replay` or `snapshot`"),
        ("Sessionhub-Epoch" = String, description = "The session's current epoch"),
        ("Sessionhub-Head-Seq" = u64, description = "The last sequence number at subscription"),
    ))]
    Events(String),
    /// A malformed resume position: `bad_request`.
    #[response(status = 400)]
    BadPosition(ErrorBody),
    /// No such session: `not_found`.
    #[response(status = 404)]
    NotFound(ErrorBody),
}

/// Refusals of the SSE fallback's commands (`messages`, `cancel`).
#[derive(IntoResponses)]
pub(crate) enum CommandErrors {
    /// A malformed body, or a missing or mistyped field: `bad_request`.
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// No such session: `not_found`.
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// A message while a run is active under the `reject` policy (`busy`), or a cancel with no
    /// such run active (`no_active_run`).
    #[response(status = 409)]
    Conflict(ErrorBody),
}

/// `POST /v1/sessions`; an empty body is `{}`.
#[derive(ToSchema)]
pub(crate) struct NewSession {
    /// At most 200 characters.
    #[schema(max_length = 200)]
    pub(crate) title: Option<String>,
    /// Any JSON object, stored and returned as given.
    #[schema(value_type = Option<Object>)]
    pub(crate) metadata: Option<serde_json::Value>,
}

/// `PATCH /v1/sessions/{id}`: only the fields present change; `"title": null` clears it.
#[derive(ToSchema)]
pub(crate) struct SessionPatch {
    #[schema(max_length = 200)]
    pub(crate) title: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub(crate) metadata: Option<serde_json::Value>,
}

/// `POST /v1/sessions/{id}/messages`: the WebSocket's `send` without `type` and `session`.
#[derive(ToSchema)]
pub(crate) struct SendMessage {
    /// The sender's id for this message, 1 to 256 bytes: a repeat is acknowledged again
    /// (`duplicate: true`) and stored once.
    #[schema(min_length = 1, max_length = 256)]
    pub(crate) client_msg_id: String,
    /// At most `--max-text-chars` characters (413 `too_large` beyond).
    pub(crate) text: String,
    /// What to do when a run is active (default: `--busy-policy`).
    pub(crate) on_busy: Option<BusyPolicy>,
    /// Client tools this message's run (and its continuations) may call: at most 64, names
    /// `[A-Za-z0-9_-]{1,64}`, unique, not a server tool's (PROTOCOL 1.1).
    pub(crate) tools: Option<Vec<crate::domain::ToolSpec>>,
    /// Given to the model with the message, never shown as text; a JSON object of at most
    /// 16 KiB.
    #[schema(value_type = Option<Object>)]
    pub(crate) context: Option<serde_json::Value>,
    /// The model id this message runs with (one of `GET /v1/models`; default: the hub's
    /// default model). An unknown id is 400 `bad_request` and stores nothing.
    pub(crate) model: Option<String>,
}

/// `POST /v1/sessions/{id}/tool-results`: the WebSocket's `tool_result` without `type` and
/// `session`; resolves a `pending` client tool call.
#[derive(ToSchema)]
pub(crate) struct ToolResultBody {
    #[schema(min_length = 1, max_length = 256)]
    pub(crate) call_id: String,
    pub(crate) output: String,
    /// The tool failed: the call becomes `failed`.
    pub(crate) is_error: Option<bool>,
}

/// `POST /v1/sessions/{id}/tool-approvals`: the WebSocket's `tool_approval` without `type`
/// and `session`; resolves an `awaiting_approval` server tool call.
#[derive(ToSchema)]
pub(crate) struct ToolApprovalBody {
    #[schema(min_length = 1, max_length = 256)]
    pub(crate) call_id: String,
    /// `false` makes the call `denied`: it never runs.
    pub(crate) approved: bool,
    /// JSON text that replaces the arguments the model wrote.
    pub(crate) arguments: Option<String>,
}

/// The `ack` of a tool call's resolution: the position of the call's `tool.result`.
#[derive(ToSchema, Serialize)]
pub(crate) struct ToolAckReply {
    #[serde(rename = "type")]
    pub(crate) kind: AckType,
    #[serde(flatten)]
    pub(crate) ack: crate::session::event::ToolAck,
}

/// `POST /v1/sessions/{id}/cancel`; an empty body is `{}`.
#[derive(ToSchema)]
pub(crate) struct CancelRun {
    /// The run to cancel; absent means the active run.
    pub(crate) run_id: Option<String>,
}

/// The `ack` of a stored message: the same object the WebSocket sends.
#[derive(ToSchema, Serialize)]
pub(crate) struct AckReply {
    #[serde(rename = "type")]
    pub(crate) kind: AckType,
    #[serde(flatten)]
    pub(crate) ack: Ack,
}

#[derive(ToSchema, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum AckType {
    Ack,
}

/// A ChatKit request (`{"type": "threads.create" | "threads.add_user_message" | ...,
/// "params": {...}}`), in the wire format of `openai-chatkit` 1.6.5; passed through as is.
#[derive(ToSchema)]
#[schema(value_type = Object)]
pub(crate) struct ChatKitRequest(serde_json::Value);

/// An AG-UI `RunAgentInput` (`threadId`, `runId`, `messages`, ...), as `@ag-ui/client` sends it.
#[derive(ToSchema)]
#[schema(value_type = Object)]
pub(crate) struct RunAgentInput(serde_json::Value);

/// `GET /v1/sessions/{id}/state`: the shared state document (PROTOCOL 1.2).
#[derive(ToSchema)]
pub(crate) struct StateDocument {
    /// The document (a JSON object), or null when the session has none yet.
    #[schema(value_type = Option<Object>)]
    pub(crate) state: Option<serde_json::Value>,
    /// 0 before any state, one more with each change.
    pub(crate) version: u64,
}

/// `POST /v1/sessions/{id}/state`: the WebSocket's `state_set` (`state`) or `state_patch`
/// (`patch`) without `type` and `session`.
#[derive(ToSchema)]
pub(crate) struct StateChangeBody {
    /// The new document (a JSON object, at most `--state-max-bytes` serialised).
    #[schema(value_type = Option<Object>)]
    pub(crate) state: Option<serde_json::Value>,
    /// RFC 6902 operations applied to the current document (instead of `state`).
    #[schema(value_type = Option<Vec<Object>>)]
    pub(crate) patch: Option<Vec<serde_json::Value>>,
    /// The version this change replaces; another current version is `conflict` (409).
    pub(crate) version: u64,
}

/// The `ack` of a shared-state change: the new version and the position of its event.
#[derive(ToSchema, Serialize)]
pub(crate) struct StateAckReply {
    #[serde(rename = "type")]
    pub(crate) kind: AckType,
    #[serde(flatten)]
    pub(crate) ack: crate::session::event::StateAck,
}
