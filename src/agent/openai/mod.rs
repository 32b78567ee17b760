//! The real agent: OpenAI's Chat Completions streaming API (or any compatible server) through
//! async-openai, with the hub's own fault policy on top. One [`Agent::stream`] call is one
//! model turn: text, then any tool calls (`tools` sent as function tools, streamed
//! `delta.tool_calls` put back together by [`calls`]); the session calls again with the
//! results in the history ([`history`]).
//!
//! async-openai gives us the HTTP plumbing and the SSE parsing; the JSON on both sides is ours
//! ([`wire`]), to read tool calls from the servers that bend the format. What it lacks, we add
//! (shared/research/reliability.md, E11 and section 2.4):
//! - its built-in retry layer (uncapped `Retry-After`, no budget) is replaced by a plain HTTP
//!   service ([`http`]) and our own retry loop ([`retry`], [`run`]): retries only before the
//!   first token, exponential backoff with jitter, `Retry-After` honoured but capped, bounded
//!   attempts and a total budget;
//! - two clocks: time to the first token and the longest gap between chunks;
//! - a stream that ends without `finish_reason` is a failure (`upstream_protocol`), not a reply.
//!
//! Dropping the run's stream drops async-openai's receiver; its reader task sees that at once
//! and drops the HTTP response, which closes the connection to the model server.

mod calls;
mod chunks;
mod history;
mod http;
mod retry;
mod run;
mod wire;

use std::sync::Arc;
use std::time::Duration;

use async_openai::config::OpenAIConfig;
use async_openai::Client;

use super::{Agent, AgentRequest, AgentStream};
use crate::config::Config;

pub(crate) use chunks::replay as replay_chunks;
pub use history::{CONTEXT_PREFIX, DENIED_NOTE, STOPPED_NOTE, TOOL_STOPPED_NOTE};

/// Everything the OpenAI agent needs, resolved from the config at start-up.
#[derive(Clone)]
pub struct OpenAiSettings {
    /// Bearer token; `None` for a local server that needs none.
    pub api_key: Option<String>,
    /// Base URL of the API, up to and including `/v1`.
    pub base_url: String,
    pub model: String,
    /// `max_tokens` sent with every request, when set (a models file's `max_output_tokens`).
    pub max_output_tokens: Option<u32>,
    /// Sent first as the `system` message when set.
    pub system_prompt: Option<String>,
    /// Characters of history sent upstream: the most recent turns that fit (the last user
    /// message and the turns after it always go, whatever their size).
    pub history_chars: usize,
    pub connect_timeout: Duration,
    /// Per attempt, from sending the request to the first token (text or a tool-call fragment).
    pub first_token_timeout: Duration,
    /// Longest silence between chunks once the first token arrived.
    pub chunk_timeout: Duration,
    /// Attempts per run before the first token, the first one included.
    pub max_attempts: u32,
    /// Backoff before the second attempt; doubles for each further one (plus jitter).
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// Longest `Retry-After` we honour; a longer one is cut to this.
    pub retry_after_cap: Duration,
    /// Total time a run may spend on attempts and waits before its first token.
    pub retry_budget: Duration,
}

impl std::fmt::Debug for OpenAiSettings {
    // Hand-written so the key never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiSettings")
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("max_output_tokens", &self.max_output_tokens)
            .field("system_prompt", &self.system_prompt.is_some())
            .field("history_chars", &self.history_chars)
            .field("connect_timeout", &self.connect_timeout)
            .field("first_token_timeout", &self.first_token_timeout)
            .field("chunk_timeout", &self.chunk_timeout)
            .field("max_attempts", &self.max_attempts)
            .field("initial_backoff", &self.initial_backoff)
            .field("max_backoff", &self.max_backoff)
            .field("retry_after_cap", &self.retry_after_cap)
            .field("retry_budget", &self.retry_budget)
            .finish()
    }
}

/// Why the OpenAI agent cannot start. Reported at start-up, never at run time.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(
        "--agent openai needs OPENAI_API_KEY for {0}; set it, or point --openai-base-url \
         (OPENAI_BASE_URL) at an OpenAI-compatible server that needs no key"
    )]
    MissingKey(String),
    #[error("invalid --openai-base-url {url:?}: {reason}")]
    BadBaseUrl { url: String, reason: String },
    #[error("--model (SESSIONHUB_MODEL) must not be empty")]
    EmptyModel,
    #[error("--upstream-max-attempts must be at least 1")]
    NoAttempts,
    #[error("cannot build the HTTP client: {0}")]
    Http(String),
}

/// State shared by every run of one agent.
pub(crate) struct Shared {
    settings: OpenAiSettings,
    client: Client<OpenAIConfig>,
}

/// The OpenAI-compatible agent. Cheap to share as `Arc<dyn Agent>`.
#[derive(Clone)]
pub struct OpenAiAgent {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for OpenAiAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiAgent")
            .field("settings", &self.shared.settings)
            .finish_non_exhaustive()
    }
}

impl OpenAiAgent {
    /// Checks the settings and builds the HTTP client. A missing key for a server that needs
    /// one, a malformed base URL or an empty model is an error here, at start-up.
    pub fn new(mut settings: OpenAiSettings) -> Result<Self, SetupError> {
        settings.base_url = settings.base_url.trim().trim_end_matches('/').to_owned();
        settings.api_key = settings.api_key.filter(|k| !k.trim().is_empty());
        settings.system_prompt = settings.system_prompt.filter(|p| !p.trim().is_empty());
        let url = reqwest::Url::parse(&settings.base_url).map_err(|e| SetupError::BadBaseUrl {
            url: settings.base_url.clone(),
            reason: e.to_string(),
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(SetupError::BadBaseUrl {
                url: settings.base_url.clone(),
                reason: "the scheme must be http or https".into(),
            });
        }
        if settings.api_key.is_none() && needs_key(&url) {
            return Err(SetupError::MissingKey(settings.base_url.clone()));
        }
        if settings.model.trim().is_empty() {
            return Err(SetupError::EmptyModel);
        }
        if settings.max_attempts == 0 {
            return Err(SetupError::NoAttempts);
        }
        let http = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .tcp_nodelay(true)
            // Idle pooled connections to a model server are cheap to keep but go stale behind
            // load balancers; a minute is the common idle limit.
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| SetupError::Http(e.to_string()))?;
        let config = OpenAIConfig::new()
            .with_api_base(settings.base_url.clone())
            .with_api_key(settings.api_key.clone().unwrap_or_default());
        let client =
            Client::with_config(config).with_http_service(http::UpstreamService::new(http));
        Ok(Self {
            shared: Arc::new(Shared { settings, client }),
        })
    }

    /// The agent `--agent openai` asks for.
    pub fn from_config(config: &Config) -> Result<Self, SetupError> {
        Self::new(Self::from_config_unchecked(config))
    }

    pub fn settings(&self) -> &OpenAiSettings {
        &self.shared.settings
    }

    /// One agent per entry of the models file (`--models`), each with the config's other
    /// settings, routed by model id; `--model` names the default and must be in the file.
    pub fn from_models(
        config: &Config,
        models: &[crate::config::ModelConfig],
    ) -> anyhow::Result<super::models::Routed> {
        let base = Self::from_config_unchecked(config);
        let mut agents: Vec<(String, Arc<dyn Agent>)> = Vec::with_capacity(models.len());
        for m in models {
            let agent = Self::new(OpenAiSettings {
                api_key: m.api_key.as_ref().map(|k| k.expose().to_owned()),
                base_url: m.base_url.clone(),
                model: m.upstream_model.clone(),
                max_output_tokens: m.max_output_tokens,
                ..base.clone()
            })
            .map_err(|e| anyhow::anyhow!("model {:?} in the models file: {e}", m.id))?;
            agents.push((m.id.clone(), Arc::new(agent)));
        }
        let ids: Vec<&str> = models.iter().map(|m| m.id.as_str()).collect();
        super::models::Routed::new(agents, config.model.clone()).ok_or_else(|| {
            anyhow::anyhow!(
                "--model {:?} (SESSIONHUB_MODEL) is not a model of the models file; pick the \
                 default among: {}",
                config.model,
                ids.join(", ")
            )
        })
    }

    /// The settings `--agent openai` asks for, before [`OpenAiAgent::new`] checks them.
    fn from_config_unchecked(config: &Config) -> OpenAiSettings {
        let ms = Duration::from_millis;
        OpenAiSettings {
            api_key: config
                .openai_api_key
                .as_ref()
                .map(|k| k.expose().to_owned()),
            base_url: config.openai_base_url.clone(),
            model: config.model.clone(),
            max_output_tokens: None,
            system_prompt: config.system_prompt.clone(),
            history_chars: config.history_chars,
            connect_timeout: ms(config.upstream_connect_timeout_ms),
            first_token_timeout: ms(config.first_token_timeout_ms),
            chunk_timeout: ms(config.chunk_timeout_ms),
            max_attempts: config.upstream_max_attempts,
            initial_backoff: ms(config.upstream_backoff_ms),
            max_backoff: ms(config.upstream_max_backoff_ms),
            retry_after_cap: ms(config.retry_after_cap_ms),
            retry_budget: ms(config.retry_budget_ms),
        }
    }
}

/// OpenAI's own endpoint always needs a key; any other server may not (Ollama, llama.cpp and
/// vLLM run without one by default), so there a missing key is the operator's choice.
fn needs_key(url: &reqwest::Url) -> bool {
    url.host_str()
        .is_some_and(|h| h == "openai.com" || h.ends_with(".openai.com"))
}

impl Agent for OpenAiAgent {
    fn stream(&self, request: AgentRequest) -> AgentStream {
        run::stream(self.shared.clone(), request)
    }

    /// With no models file, the one model is listed under its upstream name.
    fn models(&self) -> super::ModelList {
        super::ModelList::single(self.shared.settings.model.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DEFAULT_OPENAI_BASE_URL as OPENAI_BASE_URL;

    fn settings(base_url: &str, key: Option<&str>) -> OpenAiSettings {
        OpenAiSettings {
            api_key: key.map(str::to_owned),
            base_url: base_url.to_owned(),
            model: "m".into(),
            max_output_tokens: None,
            system_prompt: None,
            history_chars: 1000,
            connect_timeout: Duration::from_secs(1),
            first_token_timeout: Duration::from_secs(1),
            chunk_timeout: Duration::from_secs(1),
            max_attempts: 3,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(100),
            retry_after_cap: Duration::from_millis(100),
            retry_budget: Duration::from_secs(1),
        }
    }

    #[test]
    fn openai_without_key_is_a_setup_error() {
        let err = OpenAiAgent::new(settings(OPENAI_BASE_URL, None)).unwrap_err();
        assert!(matches!(err, SetupError::MissingKey(_)), "{err}");
        assert!(err.to_string().contains("OPENAI_API_KEY"));
        let err = OpenAiAgent::new(settings(OPENAI_BASE_URL, Some("  "))).unwrap_err();
        assert!(matches!(err, SetupError::MissingKey(_)), "{err}");
    }

    #[test]
    fn local_server_without_key_is_fine() {
        let agent = OpenAiAgent::new(settings("http://127.0.0.1:11434/v1/", None)).unwrap();
        assert_eq!(agent.settings().base_url, "http://127.0.0.1:11434/v1");
        assert!(agent.settings().api_key.is_none());
    }

    #[test]
    fn bad_settings_are_setup_errors() {
        let err = OpenAiAgent::new(settings("not a url", Some("k"))).unwrap_err();
        assert!(matches!(err, SetupError::BadBaseUrl { .. }), "{err}");
        let err = OpenAiAgent::new(settings("ftp://host/v1", Some("k"))).unwrap_err();
        assert!(matches!(err, SetupError::BadBaseUrl { .. }), "{err}");
        let mut s = settings("http://127.0.0.1:1/v1", None);
        s.model = " ".into();
        assert!(matches!(
            OpenAiAgent::new(s).unwrap_err(),
            SetupError::EmptyModel
        ));
        let mut s = settings("http://127.0.0.1:1/v1", None);
        s.max_attempts = 0;
        assert!(matches!(
            OpenAiAgent::new(s).unwrap_err(),
            SetupError::NoAttempts
        ));
    }

    #[test]
    fn debug_output_hides_the_key() {
        let agent = OpenAiAgent::new(settings(OPENAI_BASE_URL, Some("sk-CANARY"))).unwrap();
        let shown = format!("{agent:?}");
        assert!(!shown.contains("CANARY"), "{shown}");
    }
}
