//! Server tools: the tools the hub runs itself when the model calls them (MCP servers,
//! reached through a [`ToolSource`]), with the per-call timeout, the output cap and the
//! approval policy. The session's run loop asks [`Tools`] what to offer and what to run.
//! Client tools (run by a front end) never run here; the one list of them kept here is the
//! operator's `--chatkit-client-tools`, because ChatKit front ends declare none.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::config::ToolsConfig;
use crate::domain::ToolSpec;

pub mod client_file;
pub mod mcp;
pub mod state_patch;

pub use mcp::from_config;

/// Longest tool name a model accepts (OpenAI's function-name limit).
pub const MAX_TOOL_NAME: usize = 64;

/// Whether `name` is a valid tool name: `[A-Za-z0-9_-]{1,64}`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_TOOL_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Why a server tool call did not produce a normal result. The model is told the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ToolError {
    /// The tool ran and reported an error.
    #[error("{0}")]
    Failed(String),
    /// The call took longer than the configured timeout; it was cancelled.
    #[error("the tool did not answer within {0} ms")]
    TimedOut(u64),
    /// The tool's server cannot be reached now.
    #[error("{0}")]
    Unavailable(String),
    /// No server offers this tool (any more).
    #[error("no server offers the tool `{0}`")]
    Unknown(String),
}

/// Where server tools come from (an MCP server connection).
pub trait ToolSource: Send + Sync + 'static {
    /// The tools offered right now, named as the model sees them (`NAME__TOOL`).
    fn specs(&self) -> Vec<ToolSpec>;
    /// Run `name` with `arguments` (JSON text) and give its output. Dropping the future
    /// cancels the call at the server (MCP `notifications/cancelled`).
    fn call(&self, name: &str, arguments: &str) -> BoxFuture<'static, Result<String, ToolError>>;
    /// Completes once the source made its first attempt to offer tools (an MCP server's
    /// first connection), so a hub that waits offers the tools of the servers that are up.
    fn ready(self: Arc<Self>) -> BoxFuture<'static, ()> {
        Box::pin(async {})
    }
}

/// A finished server tool call, as its tool item keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolOutcome {
    pub output: String,
    /// The tool failed or timed out: the item becomes `failed`.
    pub is_error: bool,
}

/// Every server tool, and the rules around calling one.
pub struct Tools {
    sources: Vec<Arc<dyn ToolSource>>,
    approval: GlobSet,
    timeout: Duration,
    output_cap: usize,
    /// The client tools of every ChatKit run (`--chatkit-client-tools`).
    chatkit_client: Vec<ToolSpec>,
}

impl Tools {
    /// No server tools (no MCP server configured).
    pub fn none() -> Self {
        Tools {
            sources: Vec::new(),
            approval: GlobSet::empty(),
            timeout: Duration::from_millis(crate::config::DEFAULT_TOOL_TIMEOUT_MS),
            output_cap: crate::config::DEFAULT_TOOL_OUTPUT_BYTES,
            chatkit_client: Vec::new(),
        }
    }

    /// The server tools of `sources` under the limits and approval globs of `cfg`.
    pub fn new(sources: Vec<Arc<dyn ToolSource>>, cfg: &ToolsConfig) -> anyhow::Result<Self> {
        let mut approval = GlobSetBuilder::new();
        for g in &cfg.tool_approval {
            approval.add(Glob::new(g).map_err(|e| anyhow::anyhow!("--tool-approval {g}: {e}"))?);
        }
        Ok(Tools {
            sources,
            approval: approval.build()?,
            timeout: Duration::from_millis(cfg.tool_timeout_ms),
            output_cap: cfg.tool_output_bytes,
            chatkit_client: match &cfg.chatkit_client_tools {
                Some(path) => client_file::load(path)?,
                None => Vec::new(),
            },
        })
    }

    /// Wait for every source's first attempt (bounded by each source).
    pub async fn ready(&self) {
        futures::future::join_all(self.sources.iter().map(|s| s.clone().ready())).await;
    }

    /// What the model is offered, every source's tools together.
    pub fn specs(&self) -> Vec<ToolSpec> {
        self.sources.iter().flat_map(|s| s.specs()).collect()
    }

    /// Whether `name` is a server tool (a client tool must not shadow one).
    pub fn has(&self, name: &str) -> bool {
        self.sources
            .iter()
            .any(|s| s.specs().iter().any(|t| t.name == name))
    }

    /// The client tools every ChatKit run offers (the front end runs them).
    pub fn chatkit_client_tools(&self) -> &[ToolSpec] {
        &self.chatkit_client
    }

    /// Whether calls of `name` wait for a person's approval.
    pub fn needs_approval(&self, name: &str) -> bool {
        self.approval.is_match(name)
    }

    /// Run a server tool within the timeout, its output cut to the cap. Dropping the future
    /// cancels the call.
    pub fn call(&self, name: &str, arguments: &str) -> BoxFuture<'static, ToolOutcome> {
        let source = self
            .sources
            .iter()
            .find(|s| s.specs().iter().any(|t| t.name == name))
            .cloned();
        let (timeout, cap) = (self.timeout, self.output_cap);
        let call = source.map(|s| s.call(name, arguments));
        let name = name.to_owned();
        Box::pin(async move {
            let result = match call {
                None => Err(ToolError::Unknown(name)),
                Some(call) => match tokio::time::timeout(timeout, call).await {
                    Ok(r) => r,
                    Err(_) => Err(ToolError::TimedOut(timeout.as_millis() as u64)),
                },
            };
            match result {
                Ok(output) => ToolOutcome {
                    output: cap_output(output, cap),
                    is_error: false,
                },
                Err(e) => ToolOutcome {
                    output: cap_output(e.to_string(), cap),
                    is_error: true,
                },
            }
        })
    }
}

/// `output` within `cap` bytes, cut at a character boundary with a note that says so.
pub fn cap_output(output: String, cap: usize) -> String {
    if output.len() <= cap {
        return output;
    }
    let mut end = cap;
    while !output.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}\n[output cut: {end} of {} bytes shown]",
        &output[..end],
        output.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_names_follow_the_function_name_rules() {
        assert!(valid_name("get_location"));
        assert!(valid_name(&"a".repeat(64)));
        assert!(!valid_name(&"a".repeat(65)));
        assert!(!valid_name(""));
        assert!(!valid_name("has space"));
        assert!(!valid_name("dot.ted"));
    }

    #[test]
    fn long_output_is_cut_at_a_character_and_says_so() {
        assert_eq!(cap_output("short".into(), 10), "short");
        let cut = cap_output("ééééé".into(), 3);
        assert!(
            cut.starts_with("é\n[output cut: 2 of 10 bytes shown]"),
            "{cut}"
        );
    }
}
