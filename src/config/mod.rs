//! Typed configuration, parsed once at start-up. Every flag is also an environment variable;
//! defaults live in the `DEFAULT_*` consts. Tests build a `Config` with [`Config::for_tests`].
//! A boolean is off by default; `--flag` turns it on, and `--flag=<value>` or its variable takes
//! 1/0, yes/no, true/false, on/off (see [`parse_bool`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Parser, ValueEnum};
use serde::{Deserialize, Serialize};

mod models;
mod tools;
mod values;

pub use models::{load_models, ModelConfig, ModelsConfig};
pub use tools::{
    mcp_token_key, ToolsConfig, DEFAULT_MAX_TOOL_ROUNDS, DEFAULT_TOOL_OUTPUT_BYTES,
    DEFAULT_TOOL_TIMEOUT_MS,
};
pub use values::{parse_bool, ApiKey, Secret};

pub const DEFAULT_ADDR: &str = "127.0.0.1:8080";
pub const DEFAULT_DATA_DIR: &str = "./data";
pub const DEFAULT_SCRIPTED_DELTAS: u32 = 12;
pub const DEFAULT_SCRIPTED_DELAY_MS: u64 = 40;
pub const DEFAULT_MAX_TEXT_CHARS: usize = 32_000;
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 65_536;
pub const DEFAULT_OUTBOUND_FRAMES: usize = 1024;
pub const DEFAULT_OUTBOUND_BYTES: usize = 256 * 1024;
pub const DEFAULT_MAX_SUBSCRIPTIONS: usize = 64;
pub const DEFAULT_HEARTBEAT_SECS: u64 = 20;
pub const DEFAULT_HEARTBEAT_TIMEOUT_SECS: u64 = 45;
pub const DEFAULT_CLOSE_TIMEOUT_SECS: u64 = 10;
pub const DEFAULT_REPLAY_TAIL: usize = 1024;
/// A quiet session's packed replay tail larger than this is unloaded rather than kept.
pub const DEFAULT_REPLAY_TAIL_BYTES: usize = 1024 * 1024;
/// Memory budget of all loaded sessions' replay tails together, MiB.
pub const DEFAULT_SESSIONS_MEMORY_MB: usize = 256;
/// sled's page cache, MiB (sled's own default is 1 GiB).
pub const DEFAULT_STORE_CACHE_MB: u64 = 64;
pub const DEFAULT_SNAPSHOT_ITEMS: usize = 50;
/// Largest shared state document, serialised (PROTOCOL 1.2).
pub const DEFAULT_STATE_MAX_BYTES: usize = 64 * 1024;
pub const DEFAULT_IDLE_EVICT_SECS: u64 = 60;
pub const DEFAULT_DRAIN_SECS: u64 = 10;
pub const DEFAULT_CHECKPOINT_MS: u64 = 250;
pub const DEFAULT_COMMAND_QUEUE: usize = 256;
pub const DEFAULT_MAX_BODY_BYTES: usize = 256 * 1024;
pub const DEFAULT_OPENAI_BASE_URL: &str = "https://api.openai.com/v1";
pub const DEFAULT_MODEL: &str = "gpt-4o-mini";
pub const DEFAULT_HISTORY_CHARS: usize = 48_000;
pub const DEFAULT_UPSTREAM_CONNECT_TIMEOUT_MS: u64 = 10_000;
pub const DEFAULT_FIRST_TOKEN_TIMEOUT_MS: u64 = 120_000;
pub const DEFAULT_CHUNK_TIMEOUT_MS: u64 = 30_000;
pub const DEFAULT_UPSTREAM_MAX_ATTEMPTS: u32 = 4;
pub const DEFAULT_UPSTREAM_BACKOFF_MS: u64 = 500;
pub const DEFAULT_UPSTREAM_MAX_BACKOFF_MS: u64 = 8_000;
pub const DEFAULT_RETRY_AFTER_CAP_MS: u64 = 10_000;
pub const DEFAULT_RETRY_BUDGET_MS: u64 = 30_000;
// Authentication and abuse limits (src/auth). Per-user limits apply with authentication only;
// 0 turns a limit off.
pub const DEFAULT_AUTH_LEEWAY_SECS: u64 = 30;
pub const DEFAULT_WS_TICKET_SECS: u64 = 10;
pub const DEFAULT_MAX_CONNS_PER_USER: usize = 32;
pub const DEFAULT_USER_MESSAGES_PER_MIN: u32 = 120;
pub const DEFAULT_USER_MESSAGE_BURST: u32 = 60;
pub const DEFAULT_USER_RUNS_PER_MIN: u32 = 60;
pub const DEFAULT_USER_RUN_BURST: u32 = 30;
pub const DEFAULT_HTTP_RATE_PER_SEC: u32 = 50;
pub const DEFAULT_HTTP_BURST: u32 = 200;
pub const DEFAULT_BODY_TIMEOUT_SECS: u64 = 15;

/// What answers user messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentKind {
    /// Built-in deterministic agent, no network.
    Scripted,
    /// OpenAI or any OpenAI-compatible server.
    Openai,
}

#[derive(utoipa::ToSchema)]
/// What happens to a message that arrives while a run is active.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BusyPolicy {
    /// Store it; its run starts when the current one ends.
    Queue,
    /// Refuse it with `busy`; nothing is stored.
    Reject,
    /// Cancel the active run, then start the new one.
    Interrupt,
}

/// Whether barriers reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Durability {
    /// flush + fsync before every ack and terminal event.
    On,
    /// Skip the fsync barrier (benchmarks only: acknowledged data can be lost).
    Off,
}

/// The one JWT signature algorithm accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum JwtAlg {
    /// HMAC with SHA-256 and a shared secret.
    #[value(name = "HS256")]
    Hs256,
    /// RSA PKCS#1 v1.5 with SHA-256 and an RSA public key.
    #[value(name = "RS256")]
    Rs256,
    /// ECDSA P-256 with SHA-256 and an EC public key.
    #[value(name = "ES256")]
    Es256,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Parser)]
#[command(
    name = "sessionhub",
    version,
    about = "WebSocket-first real-time session hub for AI agent chat"
)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "SESSIONHUB_ADDR", default_value = DEFAULT_ADDR)]
    pub addr: SocketAddr,
    /// Directory of the sled database.
    #[arg(long, env = "SESSIONHUB_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// Agent that answers messages.
    #[arg(long, env = "SESSIONHUB_AGENT", value_enum, default_value_t = AgentKind::Scripted)]
    pub agent: AgentKind,
    /// Default busy policy for messages sent while a run is active.
    #[arg(long, env = "SESSIONHUB_BUSY_POLICY", value_enum, default_value_t = BusyPolicy::Queue)]
    pub busy_policy: BusyPolicy,
    /// Number of deltas in a scripted reply.
    #[arg(long, env = "SESSIONHUB_SCRIPTED_DELTAS", default_value_t = DEFAULT_SCRIPTED_DELTAS)]
    pub scripted_deltas: u32,
    /// Pause between scripted deltas, in milliseconds.
    #[arg(long, env = "SESSIONHUB_SCRIPTED_DELAY_MS", default_value_t = DEFAULT_SCRIPTED_DELAY_MS)]
    pub scripted_delay_ms: u64,
    /// Start every scripted delta with the Unix time in microseconds it was produced (load tests).
    #[arg(long, env = "SESSIONHUB_SCRIPTED_STAMP", action = ArgAction::Set, value_parser = parse_bool,
        default_value_t = false, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub scripted_stamp: bool,
    /// Durability barrier (flush + fsync) before acks and terminal events.
    #[arg(long, env = "SESSIONHUB_DURABILITY", value_enum, default_value_t = Durability::On)]
    pub durability: Durability,
    /// Longest message text, in Unicode scalar values.
    #[arg(long, env = "SESSIONHUB_MAX_TEXT_CHARS", default_value_t = DEFAULT_MAX_TEXT_CHARS)]
    pub max_text_chars: usize,
    /// Largest WebSocket message or frame, in bytes (close 1009 beyond).
    #[arg(long, env = "SESSIONHUB_MAX_MESSAGE_BYTES", default_value_t = DEFAULT_MAX_MESSAGE_BYTES)]
    pub max_message_bytes: usize,
    /// Largest HTTP request body, in bytes.
    #[arg(long, env = "SESSIONHUB_MAX_BODY_BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,
    /// Outbound queue per connection, in frames (slow consumers are closed with 4008 beyond).
    #[arg(long, env = "SESSIONHUB_OUTBOUND_FRAMES", default_value_t = DEFAULT_OUTBOUND_FRAMES)]
    pub outbound_frames: usize,
    /// Outbound queue per connection, in bytes.
    #[arg(long, env = "SESSIONHUB_OUTBOUND_BYTES", default_value_t = DEFAULT_OUTBOUND_BYTES)]
    pub outbound_bytes: usize,
    /// Sessions one connection may subscribe to at once.
    #[arg(long, env = "SESSIONHUB_MAX_SUBSCRIPTIONS", default_value_t = DEFAULT_MAX_SUBSCRIPTIONS)]
    pub max_subscriptions: usize,
    /// Seconds between server pings.
    #[arg(long, env = "SESSIONHUB_HEARTBEAT_SECS", default_value_t = DEFAULT_HEARTBEAT_SECS)]
    pub heartbeat_secs: u64,
    /// Seconds without any frame from a client before it is closed with 4001.
    #[arg(long, env = "SESSIONHUB_HEARTBEAT_TIMEOUT_SECS", default_value_t = DEFAULT_HEARTBEAT_TIMEOUT_SECS)]
    pub heartbeat_timeout_secs: u64,
    /// Seconds a close handshake may take before the TCP connection is dropped.
    #[arg(long, env = "SESSIONHUB_CLOSE_TIMEOUT_SECS", default_value_t = DEFAULT_CLOSE_TIMEOUT_SECS)]
    pub close_timeout_secs: u64,
    /// Events kept in memory per session for replay on resume.
    #[arg(long, env = "SESSIONHUB_REPLAY_TAIL", default_value_t = DEFAULT_REPLAY_TAIL)]
    pub replay_tail: usize,
    /// Most bytes a quiet session's compressed replay tail may take while it stays loaded. A
    /// quiet session with no subscriber whose tail is larger is unloaded at once (as by the
    /// idle eviction: resumes then get a snapshot). Busy sessions always keep `--replay-tail`
    /// events.
    #[arg(long, env = "SESSIONHUB_REPLAY_TAIL_BYTES", default_value_t = DEFAULT_REPLAY_TAIL_BYTES)]
    pub replay_tail_bytes: usize,
    /// Memory budget, in MiB, of all loaded sessions' replay tails together (12 KiB more per
    /// session). Over it the least recently active idle sessions are unloaded early.
    #[arg(long, env = "SESSIONHUB_SESSIONS_MEMORY_MB", default_value_t = DEFAULT_SESSIONS_MEMORY_MB)]
    pub sessions_memory_mb: usize,
    /// sled's page cache, in MiB (counted apart from the sessions' budget).
    #[arg(long, env = "SESSIONHUB_STORE_CACHE_MB", default_value_t = DEFAULT_STORE_CACHE_MB)]
    pub store_cache_mb: u64,
    /// Items in a snapshot (older ones are paged through the items endpoint).
    #[arg(long, env = "SESSIONHUB_SNAPSHOT_ITEMS", default_value_t = DEFAULT_SNAPSHOT_ITEMS)]
    pub snapshot_items: usize,
    /// Largest shared state document of a session, in bytes of its JSON (`too_large` beyond).
    #[arg(long, env = "SESSIONHUB_STATE_MAX_BYTES", default_value_t = DEFAULT_STATE_MAX_BYTES)]
    pub state_max_bytes: usize,
    /// Seconds an actor with no subscriber and no run stays loaded.
    #[arg(long, env = "SESSIONHUB_IDLE_EVICT_SECS", default_value_t = DEFAULT_IDLE_EVICT_SECS)]
    pub idle_evict_secs: u64,
    /// Seconds active runs may take to finish at shutdown before they are interrupted.
    #[arg(long, env = "SESSIONHUB_DRAIN_SECS", default_value_t = DEFAULT_DRAIN_SECS)]
    pub drain_secs: u64,
    /// Milliseconds between checkpoints of a streaming reply's text.
    #[arg(long, env = "SESSIONHUB_CHECKPOINT_MS", default_value_t = DEFAULT_CHECKPOINT_MS)]
    pub checkpoint_ms: u64,
    /// Commands queued per session actor.
    #[arg(long, env = "SESSIONHUB_COMMAND_QUEUE", default_value_t = DEFAULT_COMMAND_QUEUE)]
    pub command_queue: usize,
    /// Browser origins allowed (comma-separated `scheme://host[:port]`, exact match): CORS, and
    /// the Origin check on every API request and WebSocket upgrade. The hub's own origin is
    /// allowed too when it is reached on a loopback name (the bundled page in development).
    #[arg(long, env = "SESSIONHUB_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
    /// Serve the page and `hub*.js` from this directory instead of the copy built into the
    /// binary (development: edits show on reload, no rebuild).
    #[arg(long, env = "SESSIONHUB_STATIC_DIR")]
    pub static_dir: Option<PathBuf>,
    /// Log format.
    #[arg(long, env = "SESSIONHUB_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// API key for OpenAI or the configured server (prefer the environment variable: a flag
    /// shows in the process list).
    #[arg(long, env = "OPENAI_API_KEY", hide_env_values = true)]
    pub openai_api_key: Option<ApiKey>,
    /// Base URL of an OpenAI-compatible API, up to `/v1` (OpenAI, vLLM, Ollama, llama.cpp, a gateway).
    #[arg(long, env = "OPENAI_BASE_URL", default_value = DEFAULT_OPENAI_BASE_URL)]
    pub openai_base_url: String,
    /// Model name sent upstream; with `--models`, the id of the default model (it must be in
    /// the file).
    #[arg(long, env = "SESSIONHUB_MODEL", default_value = DEFAULT_MODEL)]
    pub model: String,
    /// System prompt sent first in every upstream request.
    #[arg(long, env = "SESSIONHUB_SYSTEM_PROMPT")]
    pub system_prompt: Option<String>,
    /// History sent upstream, in characters: the most recent items that fit.
    #[arg(long, env = "SESSIONHUB_HISTORY_CHARS", default_value_t = DEFAULT_HISTORY_CHARS)]
    pub history_chars: usize,
    /// Milliseconds to open a connection to the model server.
    #[arg(long, env = "SESSIONHUB_UPSTREAM_CONNECT_TIMEOUT_MS", default_value_t = DEFAULT_UPSTREAM_CONNECT_TIMEOUT_MS)]
    pub upstream_connect_timeout_ms: u64,
    /// Milliseconds from sending a request to the first token before the run fails.
    #[arg(long, env = "SESSIONHUB_FIRST_TOKEN_TIMEOUT_MS", default_value_t = DEFAULT_FIRST_TOKEN_TIMEOUT_MS)]
    pub first_token_timeout_ms: u64,
    /// Longest gap between chunks, in milliseconds, before a streaming run fails.
    #[arg(long, env = "SESSIONHUB_CHUNK_TIMEOUT_MS", default_value_t = DEFAULT_CHUNK_TIMEOUT_MS)]
    pub chunk_timeout_ms: u64,
    /// Upstream attempts per run before the first token (first one included).
    #[arg(long, env = "SESSIONHUB_UPSTREAM_MAX_ATTEMPTS", default_value_t = DEFAULT_UPSTREAM_MAX_ATTEMPTS)]
    pub upstream_max_attempts: u32,
    /// First retry backoff in milliseconds; doubles per attempt, with jitter.
    #[arg(long, env = "SESSIONHUB_UPSTREAM_BACKOFF_MS", default_value_t = DEFAULT_UPSTREAM_BACKOFF_MS)]
    pub upstream_backoff_ms: u64,
    /// Longest retry backoff in milliseconds.
    #[arg(long, env = "SESSIONHUB_UPSTREAM_MAX_BACKOFF_MS", default_value_t = DEFAULT_UPSTREAM_MAX_BACKOFF_MS)]
    pub upstream_max_backoff_ms: u64,
    /// Longest upstream Retry-After honoured, in milliseconds (longer ones are cut to this).
    #[arg(long, env = "SESSIONHUB_RETRY_AFTER_CAP_MS", default_value_t = DEFAULT_RETRY_AFTER_CAP_MS)]
    pub retry_after_cap_ms: u64,
    /// Total milliseconds a run may spend on upstream attempts and waits before its first token.
    #[arg(long, env = "SESSIONHUB_RETRY_BUDGET_MS", default_value_t = DEFAULT_RETRY_BUDGET_MS)]
    pub retry_budget_ms: u64,
    /// Shared secret that verifies HS256 tokens, at least 32 bytes (prefer the environment
    /// variable: a flag shows in the process list).
    #[arg(long, env = "SESSIONHUB_AUTH_HS256_SECRET", hide_env_values = true)]
    pub auth_hs256_secret: Option<Secret>,
    /// PEM public key that verifies tokens: RSA for RS256, EC P-256 for ES256.
    #[arg(long, env = "SESSIONHUB_AUTH_PUBLIC_KEY")]
    pub auth_public_key: Option<PathBuf>,
    /// JWKS file whose keys verify tokens (picked by the token's `kid`); read at start-up.
    #[arg(long, env = "SESSIONHUB_AUTH_JWKS")]
    pub auth_jwks: Option<PathBuf>,
    /// The one token algorithm accepted: HS256 (with the secret; the default), RS256 or ES256
    /// (with the public key or JWKS; required there).
    #[arg(long, env = "SESSIONHUB_AUTH_ALG", value_enum, ignore_case = true)]
    pub auth_alg: Option<JwtAlg>,
    /// The `iss` every token must carry (required with a key).
    #[arg(long, env = "SESSIONHUB_AUTH_ISSUER")]
    pub auth_issuer: Option<String>,
    /// The `aud` every token must carry: this hub (required with a key).
    #[arg(long, env = "SESSIONHUB_AUTH_AUDIENCE")]
    pub auth_audience: Option<String>,
    /// Clock skew tolerated on `exp` and `nbf`, in seconds.
    #[arg(long, env = "SESSIONHUB_AUTH_LEEWAY_SECS", default_value_t = DEFAULT_AUTH_LEEWAY_SECS)]
    pub auth_leeway_secs: u64,
    /// Serve without authentication on a non-loopback address: every client is the same
    /// anonymous user. Without a key and without this flag, only loopback addresses start.
    #[arg(long, env = "SESSIONHUB_ALLOW_ANONYMOUS", action = ArgAction::Set, value_parser = parse_bool,
        default_value_t = false, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub allow_anonymous: bool,
    /// Seconds a ticket from `POST /v1/ws-ticket` stays valid (it works once).
    #[arg(long, env = "SESSIONHUB_WS_TICKET_SECS", default_value_t = DEFAULT_WS_TICKET_SECS)]
    pub ws_ticket_secs: u64,
    /// WebSocket connections and SSE streams one user may hold open (with authentication).
    #[arg(long, env = "SESSIONHUB_MAX_CONNS_PER_USER", default_value_t = DEFAULT_MAX_CONNS_PER_USER)]
    pub max_conns_per_user: usize,
    /// New messages one user may send per minute, on all transports (with authentication).
    #[arg(long, env = "SESSIONHUB_USER_MESSAGES_PER_MIN", default_value_t = DEFAULT_USER_MESSAGES_PER_MIN)]
    pub user_messages_per_min: u32,
    /// Messages one user may send in a burst before the per-minute pace applies.
    #[arg(long, env = "SESSIONHUB_USER_MESSAGE_BURST", default_value_t = DEFAULT_USER_MESSAGE_BURST)]
    pub user_message_burst: u32,
    /// Runs (agent replies, each an upstream request) one user may start per minute.
    #[arg(long, env = "SESSIONHUB_USER_RUNS_PER_MIN", default_value_t = DEFAULT_USER_RUNS_PER_MIN)]
    pub user_runs_per_min: u32,
    /// Runs one user may start in a burst before the per-minute pace applies.
    #[arg(long, env = "SESSIONHUB_USER_RUN_BURST", default_value_t = DEFAULT_USER_RUN_BURST)]
    pub user_run_burst: u32,
    /// HTTP requests per second per client: per user when authenticated, else per peer IP.
    /// Off in anonymous mode on loopback.
    #[arg(long, env = "SESSIONHUB_HTTP_RATE_PER_SEC", default_value_t = DEFAULT_HTTP_RATE_PER_SEC)]
    pub http_rate_per_sec: u32,
    /// HTTP requests one client may make in a burst.
    #[arg(long, env = "SESSIONHUB_HTTP_BURST", default_value_t = DEFAULT_HTTP_BURST)]
    pub http_burst: u32,
    /// Seconds a request body may take to arrive (slow-body clients get 408).
    #[arg(long, env = "SESSIONHUB_BODY_TIMEOUT_SECS", default_value_t = DEFAULT_BODY_TIMEOUT_SECS)]
    pub body_timeout_secs: u64,
    /// Serve `GET /v1/ws/echo`, an anonymous WebSocket echo with the limits of `/v1/ws`, for
    /// conformance tests (Autobahn) only: never turn it on in production.
    #[arg(long, env = "SESSIONHUB_CONFORMANCE_ECHO", action = ArgAction::Set, value_parser = parse_bool,
        default_value_t = false, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub conformance_echo: bool,
    #[command(flatten)]
    pub tools: ToolsConfig,
    #[command(flatten)]
    pub models: ModelsConfig,
}

impl Config {
    /// Defaults (as `--help` shows them) with the given data dir, for tests.
    pub fn for_tests(data_dir: impl Into<PathBuf>) -> Self {
        let mut c = Config::parse_from(["sessionhub"]);
        c.addr = "127.0.0.1:0".parse().expect("valid address");
        c.data_dir = data_dir.into();
        c
    }

    pub fn heartbeat(&self) -> Duration {
        Duration::from_secs(self.heartbeat_secs)
    }
    pub fn heartbeat_timeout(&self) -> Duration {
        Duration::from_secs(self.heartbeat_timeout_secs)
    }
    pub fn close_timeout(&self) -> Duration {
        Duration::from_secs(self.close_timeout_secs)
    }
    pub fn idle_evict(&self) -> Duration {
        Duration::from_secs(self.idle_evict_secs)
    }
    pub fn drain(&self) -> Duration {
        Duration::from_secs(self.drain_secs)
    }
    pub fn body_timeout(&self) -> Duration {
        Duration::from_secs(self.body_timeout_secs)
    }
    pub fn checkpoint(&self) -> Duration {
        Duration::from_millis(self.checkpoint_ms)
    }
    pub fn tool_timeout(&self) -> Duration {
        Duration::from_millis(self.tools.tool_timeout_ms)
    }
}
