//! Typed configuration, parsed once at start-up. Every flag is also an environment variable;
//! defaults live in the `DEFAULT_*` consts. Tests build a `Config` with [`Config::for_tests`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use serde::{Deserialize, Serialize};

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
pub const DEFAULT_SNAPSHOT_ITEMS: usize = 50;
pub const DEFAULT_IDLE_EVICT_SECS: u64 = 60;
pub const DEFAULT_DRAIN_SECS: u64 = 10;
pub const DEFAULT_CHECKPOINT_MS: u64 = 250;
pub const DEFAULT_COMMAND_QUEUE: usize = 256;
pub const DEFAULT_MAX_BODY_BYTES: usize = 256 * 1024;

/// What answers user messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentKind {
    /// Built-in deterministic agent, no network.
    Scripted,
    /// OpenAI or any OpenAI-compatible server.
    Openai,
}

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

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Parser)]
#[command(name = "sessionhub", version, about = "WebSocket-first real-time session hub for AI agent chat")]
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
    #[arg(long, env = "SESSIONHUB_SCRIPTED_STAMP", default_value_t = false)]
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
    /// Items in a snapshot (older ones are paged through the items endpoint).
    #[arg(long, env = "SESSIONHUB_SNAPSHOT_ITEMS", default_value_t = DEFAULT_SNAPSHOT_ITEMS)]
    pub snapshot_items: usize,
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
    /// Origins allowed for CORS (comma-separated, exact match).
    #[arg(long, env = "SESSIONHUB_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
    /// Directory of the bundled test page.
    #[arg(long, env = "SESSIONHUB_STATIC_DIR", default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/static"))]
    pub static_dir: PathBuf,
    /// Log format.
    #[arg(long, env = "SESSIONHUB_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
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
    pub fn checkpoint(&self) -> Duration {
        Duration::from_millis(self.checkpoint_ms)
    }
}
