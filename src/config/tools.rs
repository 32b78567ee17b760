//! The tool flags (PROTOCOL 1.1): MCP servers and their tokens, limits, approvals.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::Secret;

pub const DEFAULT_TOOL_TIMEOUT_MS: u64 = 30_000;
pub const DEFAULT_TOOL_OUTPUT_BYTES: usize = 64 * 1024;
pub const DEFAULT_MAX_TOOL_ROUNDS: u32 = 8;

/// Tools the model may call (PROTOCOL 1.1): MCP servers, limits, approvals.
#[derive(Debug, Clone, clap::Args)]
pub struct ToolsConfig {
    /// An MCP server whose tools the model may call, as `NAME=URL` (streamable HTTP); repeat
    /// the flag, or comma-separate in the variable. Its tools are offered as `NAME__TOOL`; a
    /// bearer token for it is read from `SESSIONHUB_MCP_<NAME>_TOKEN`.
    #[arg(
        long = "mcp-server",
        env = "SESSIONHUB_MCP_SERVERS",
        value_delimiter = ','
    )]
    pub mcp_servers: Vec<String>,
    /// Milliseconds one server tool call may take before it fails as timed out.
    #[arg(long, env = "SESSIONHUB_TOOL_TIMEOUT_MS", default_value_t = DEFAULT_TOOL_TIMEOUT_MS)]
    pub tool_timeout_ms: u64,
    /// Largest server tool output kept, in bytes (longer output is cut and says so).
    #[arg(long, env = "SESSIONHUB_TOOL_OUTPUT_BYTES", default_value_t = DEFAULT_TOOL_OUTPUT_BYTES)]
    pub tool_output_bytes: usize,
    /// Server tools whose calls wait for a person's approval, as globs over `NAME__TOOL`
    /// (repeat the flag, or comma-separate in the variable).
    #[arg(
        long = "tool-approval",
        env = "SESSIONHUB_TOOL_APPROVAL",
        value_delimiter = ','
    )]
    pub tool_approval: Vec<String>,
    /// Model turns one run may take with server tool results before it fails `tool_rounds`.
    #[arg(long, env = "SESSIONHUB_MAX_TOOL_ROUNDS", default_value_t = DEFAULT_MAX_TOOL_ROUNDS)]
    pub max_tool_rounds: u32,
    /// A JSON file listing the client tools ChatKit front ends run (`[{name, description,
    /// parameters}]`): ChatKit declares none itself.
    #[arg(long, env = "SESSIONHUB_CHATKIT_CLIENT_TOOLS")]
    pub chatkit_client_tools: Option<PathBuf>,
    /// Bearer tokens for the MCP servers, keyed by [`mcp_token_key`] of the server's NAME:
    /// every `SESSIONHUB_MCP_<NAME>_TOKEN` in the environment, read once when the config is
    /// parsed (the one place these variables are read; a variable cannot be a clap `env` when
    /// its name depends on another flag's value). Not a flag: a token on the command line would
    /// show in the process list. Tests fill the map directly.
    #[arg(skip = mcp_tokens_from_env())]
    pub mcp_tokens: BTreeMap<String, Secret>,
}

impl ToolsConfig {
    /// The bearer token for the MCP server named `name`, if its variable is set.
    pub fn mcp_token(&self, name: &str) -> Option<&Secret> {
        self.mcp_tokens.get(&mcp_token_key(name))
    }
}

/// How an MCP server's NAME appears in its token variable `SESSIONHUB_MCP_<NAME>_TOKEN`:
/// upper-cased, every character other than an ASCII letter or digit as `_`.
pub fn mcp_token_key(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// Every `SESSIONHUB_MCP_<NAME>_TOKEN` variable set, by `<NAME>` (empty values are unset).
fn mcp_tokens_from_env() -> BTreeMap<String, Secret> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .filter_map(|(k, v)| {
            let name = k.strip_prefix("SESSIONHUB_MCP_")?.strip_suffix("_TOKEN")?;
            (!name.is_empty() && !v.is_empty()).then(|| (name.to_owned(), Secret::from(v.as_str())))
        })
        .collect()
}
