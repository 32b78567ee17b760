//! Server tools over MCP: one client (the official `rmcp` SDK, streamable HTTP) per
//! `--mcp-server NAME=URL`, whose tools are offered as `NAME__TOOL`, and [`from_config`],
//! which turns the config into [`Tools`].

mod connection;
pub mod naming;
mod render;

pub(crate) use render::replay as replay_result;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::future::BoxFuture;
use rmcp::model::CallToolRequestParams;
use rmcp::service::{Peer, RoleClient};
use rmcp::ServiceError;
use tokio::sync::{watch, Notify};

use crate::config::{mcp_token_key, Config, Secret};
use crate::domain::ToolSpec;
use crate::tools::{ToolError, ToolSource, Tools};

/// How long [`from_config`] waits for each server's first connection attempt. A server that
/// is up is listed well within it; one that is down does not hold the hub's start.
pub const START_WAIT: Duration = Duration::from_secs(5);

/// The server tools the config names: one [`McpSource`] per `--mcp-server`, each connecting
/// in the background, under the timeout, output cap and approval globs of the `--tool-*`
/// flags. Waits (at most [`START_WAIT`]) for every server's first connection attempt, so the
/// tools of the servers that are up are offered from the first run; a server that is down is
/// logged and retried in the background, and its tools appear once it answers.
///
/// Runs inside the Tokio runtime (it spawns the connection tasks). The tokens come from
/// `config.tools.mcp_tokens` (see [`crate::config::ToolsConfig::mcp_tokens`]).
pub async fn from_config(config: &Config) -> anyhow::Result<Tools> {
    let tools = spawn_from_config(config)?;
    tools.ready().await;
    Ok(tools)
}

/// The server tools the config names, their connections started in the background (inside
/// the Tokio runtime when any server is configured); [`Tools::ready`] waits for their first
/// attempts.
pub fn spawn_from_config(config: &Config) -> anyhow::Result<Tools> {
    let cfg = &config.tools;
    let mut sources = Vec::new();
    let mut keys = HashSet::new();
    for flag in &cfg.mcp_servers {
        let (name, url) = naming::parse_server(flag)?;
        // Two names that share a token variable (`a-b` and `a_b`) would get each other's
        // credential: refuse, rather than send a token to the wrong server.
        if !keys.insert(mcp_token_key(&name)) {
            anyhow::bail!(
                "--mcp-server {name}: another server has this name or the same token variable \
                 SESSIONHUB_MCP_{}_TOKEN",
                mcp_token_key(&name)
            );
        }
        let token = cfg.mcp_token(&name).cloned();
        sources.push(McpSource::spawn(name, url, token));
    }
    let sources = sources
        .into_iter()
        .map(|s| s as Arc<dyn ToolSource>)
        .collect();
    Tools::new(sources, cfg)
}

/// One MCP server's tools. Calls go straight to the server through the current connection;
/// the connection task (see `connection.rs`) connects, lists the tools, lists them again on
/// `notifications/tools/list_changed`, and reconnects with backoff when the server is away.
pub struct McpSource {
    name: String,
    shared: Arc<Shared>,
    /// The connection task. Aborted when the source drops: that drops the rmcp service,
    /// which ends the MCP session.
    task: tokio::task::AbortHandle,
}

/// What the connection task publishes for calls and [`McpSource::specs`] to read.
struct Shared {
    /// Written by the connection task only; the lock is never held across an `.await`.
    state: RwLock<State>,
    /// Sent by the connection task after every attempt and every change of `state`; the
    /// receivers are [`McpSource::status`]'s. Nobody listening is fine.
    status: watch::Sender<Status>,
    /// Asks the connection task to list the tools again: notified by the rmcp handler on
    /// `list_changed`, and by a call that failed at the transport (the listing then finds
    /// out whether the connection is lost). Holds one permit, so none is missed.
    refresh: Notify,
}

#[derive(Default)]
struct State {
    /// The live connection, if any.
    peer: Option<Peer<RoleClient>>,
    catalog: Arc<Catalog>,
}

/// The tools of the last listing.
#[derive(Default)]
struct Catalog {
    specs: Vec<ToolSpec>,
    /// Offered name (`NAME__TOOL`) to the tool's name at its server.
    real: HashMap<String, String>,
}

/// Where a source's connection stands (for start-up, tests and diagnostics).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    /// Connection attempts made, successful or not.
    pub attempts: u64,
    /// Whether a connection is up now.
    pub connected: bool,
    /// Successful tool listings (at connect and after each `list_changed`).
    pub listings: u64,
}

impl McpSource {
    /// Connect to the MCP server `name` at `url` in the background (bearer `token`, if any)
    /// and keep its tools listed. Must be called inside the Tokio runtime.
    pub fn spawn(name: String, url: String, token: Option<Secret>) -> Arc<Self> {
        let shared = Arc::new(Shared {
            state: RwLock::new(State::default()),
            status: watch::Sender::new(Status::default()),
            refresh: Notify::new(),
        });
        let endpoint = connection::Endpoint {
            name: name.clone(),
            url,
            token,
        };
        let task = tokio::spawn(connection::run(endpoint, shared.clone())).abort_handle();
        Arc::new(McpSource { name, shared, task })
    }

    /// The server's NAME (the prefix of its tools' offered names).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where the connection stands, as it changes.
    pub fn status(&self) -> watch::Receiver<Status> {
        self.shared.status.subscribe()
    }

    /// Wait until the first connection attempt ended (connected or not), at most `within`.
    pub async fn first_attempt(&self, within: Duration) {
        let mut status = self.status();
        let _ = tokio::time::timeout(within, status.wait_for(|s| s.attempts > 0)).await;
    }
}

impl Drop for McpSource {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ToolSource for McpSource {
    fn specs(&self) -> Vec<ToolSpec> {
        self.shared.read(|s| s.catalog.specs.clone())
    }

    fn ready(self: Arc<Self>) -> BoxFuture<'static, ()> {
        Box::pin(async move { self.first_attempt(START_WAIT).await })
    }

    fn call(&self, name: &str, arguments: &str) -> BoxFuture<'static, Result<String, ToolError>> {
        let (peer, real) = self
            .shared
            .read(|s| (s.peer.clone(), s.catalog.real.get(name).cloned()));
        let arguments = render::arguments(arguments);
        let (name, server, shared) = (name.to_owned(), self.name.clone(), self.shared.clone());
        Box::pin(async move {
            let real = real.ok_or(ToolError::Unknown(name))?;
            let peer = peer.ok_or_else(|| unavailable(&server))?;
            let mut params = CallToolRequestParams::new(real);
            params.arguments = arguments?;
            // rmcp sends `notifications/cancelled` for this request when this future is
            // dropped before the answer (a timeout or a cancelled run): checked against the
            // Python SDK's server by tests/mcp_tools.rs.
            match peer.call_tool(params).await {
                Ok(result) => render::result(result),
                Err(ServiceError::McpError(e)) => Err(ToolError::Failed(format!(
                    "the MCP server `{server}` refused the call: {}",
                    e.message
                ))),
                Err(e) => {
                    tracing::warn!(mcp.server = %server, error = %e, "MCP tool call failed");
                    if connection::is_transport(&e) {
                        shared.refresh.notify_one();
                    }
                    Err(unavailable(&server))
                }
            }
        })
    }
}

/// What the model is told when the server cannot be reached (no transport detail: it may
/// name the server's address).
fn unavailable(server: &str) -> ToolError {
    ToolError::Unavailable(format!("the MCP server `{server}` cannot be reached now"))
}

impl Shared {
    fn read<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        f(&self.state.read().unwrap_or_else(|e| e.into_inner()))
    }

    fn write(&self, f: impl FnOnce(&mut State)) {
        f(&mut self.state.write().unwrap_or_else(|e| e.into_inner()));
    }
}
