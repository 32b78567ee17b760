//! The connection task of one MCP server: connect (streamable HTTP, bearer token), list the
//! tools, list them again on `notifications/tools/list_changed`, and when the server is down
//! or lost, withdraw its tools and try again with a capped exponential backoff.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use rmcp::model::{ClientCapabilities, ClientConfig, Implementation, Tool};
use rmcp::service::{NotificationContext, Peer, RoleClient, RunningService};
use rmcp::transport::common::client_side_sse::ExponentialBackoff;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::{ClientHandler, ServiceError, ServiceExt};
use serde_json::Value;

use super::{naming, Catalog, Shared, State};
use crate::config::Secret;
use crate::domain::ToolSpec;

/// First wait before trying a server again; doubles per failed attempt (with jitter).
const RETRY_FIRST: Duration = Duration::from_millis(250);
/// Longest wait between two attempts: a server that comes back is found within about this.
const RETRY_CAP: Duration = Duration::from_secs(5);
/// Longest an attempt (HTTP connect, `initialize`, first listing) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A live connection lists the tools again this often even without `list_changed`: rmcp
/// does not notice a server that went away until a request fails, and a server need not
/// announce changes (the Python SDK's declares `listChanged: false`).
const RELIST_EVERY: Duration = Duration::from_secs(30);

/// Where the server is. `token` is sent as `Authorization: Bearer …` and nowhere else: not in
/// a log line, not in an error the model sees.
pub(super) struct Endpoint {
    pub(super) name: String,
    pub(super) url: String,
    pub(super) token: Option<Secret>,
}

/// Run until aborted (the source dropped): connect, serve the connection until it is lost,
/// wait, again.
pub(super) async fn run(endpoint: Endpoint, shared: Arc<Shared>) {
    let name = endpoint.name.as_str();
    let mut delay = RETRY_FIRST;
    let mut failures: u32 = 0;
    loop {
        let attempt = tokio::time::timeout(CONNECT_TIMEOUT, connect(&endpoint, &shared)).await;
        shared.status.send_modify(|s| s.attempts += 1);
        match attempt {
            Ok(Ok(service)) => {
                tracing::info!(mcp.server = %name, after_failures = failures, "MCP server connected");
                failures = 0;
                delay = RETRY_FIRST;
                serve(name, &shared, service).await;
                shared.write(|s| *s = State::default());
                shared.status.send_modify(|s| s.connected = false);
                tracing::warn!(mcp.server = %name, "MCP server lost; its tools are withdrawn until it answers again");
            }
            Ok(Err(error)) => failed(name, &mut failures, delay, &error),
            Err(_) => failed(name, &mut failures, delay, &"the attempt timed out"),
        }
        // Jitter: servers that went down together are not all retried at once.
        let jitter = rand::rng().random_range(0.8..1.2);
        tokio::time::sleep(delay.mul_f64(jitter)).await;
        delay = (delay * 2).min(RETRY_CAP);
    }
}

/// Log a failed attempt: the first of a streak as a warning, the retries that follow at debug
/// (a server that stays down would otherwise log every few seconds forever).
fn failed(name: &str, failures: &mut u32, delay: Duration, error: &dyn std::fmt::Display) {
    *failures += 1;
    let retry_ms = delay.as_millis() as u64;
    if *failures == 1 {
        tracing::warn!(mcp.server = %name, retry_ms, error = %error, "MCP server unreachable; retrying in the background");
    } else {
        tracing::debug!(mcp.server = %name, failures = *failures, retry_ms, error = %error, "MCP server still unreachable");
    }
}

/// One connection attempt: the `initialize` handshake, then the first listing.
async fn connect(
    endpoint: &Endpoint,
    shared: &Arc<Shared>,
) -> anyhow::Result<RunningService<RoleClient, Listener>> {
    let mut sse_retry = ExponentialBackoff::default();
    sse_retry.max_times = Some(4);
    sse_retry.max_delay = Some(RETRY_CAP);
    let mut config = StreamableHttpClientTransportConfig::with_uri(endpoint.url.as_str())
        // A server that restarted forgot the session: open a new one instead of failing.
        .reinit_on_expired_session(true);
    config.retry_config = Arc::new(sse_retry);
    if let Some(token) = &endpoint.token {
        // rmcp adds the `Bearer ` prefix.
        config = config.auth_header(token.expose());
    }
    let transport = StreamableHttpClientTransport::from_config(config);
    let listener = Listener {
        shared: shared.clone(),
    };
    let service = listener.serve(transport).await?;
    let tools = service.peer().list_all_tools().await?;
    publish(&endpoint.name, shared, service.peer(), tools);
    Ok(service)
}

/// Serve a live connection until it is lost: list again when asked, and every
/// [`RELIST_EVERY`].
async fn serve(name: &str, shared: &Arc<Shared>, service: RunningService<RoleClient, Listener>) {
    let peer = service.peer().clone();
    let closed = service.waiting();
    tokio::pin!(closed);
    let mut relist =
        tokio::time::interval_at(tokio::time::Instant::now() + RELIST_EVERY, RELIST_EVERY);
    relist.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut closed => return,
            _ = shared.refresh.notified() => {}
            _ = relist.tick() => {}
        }
        match peer.list_all_tools().await {
            Ok(tools) => publish(name, shared, &peer, tools),
            Err(e) if is_transport(&e) => {
                tracing::warn!(mcp.server = %name, error = %e, "listing the MCP tools failed");
                return;
            }
            // The server answered, with an error: keep the tools of the last listing.
            Err(e) => {
                tracing::warn!(mcp.server = %name, error = %e, "listing the MCP tools failed")
            }
        }
    }
}

/// Whether `e` says the connection is gone (rather than the server answering an error).
pub(super) fn is_transport(e: &ServiceError) -> bool {
    matches!(
        e,
        ServiceError::TransportSend(_) | ServiceError::TransportClosed
    )
}

/// Offer `tools` (the server's whole list) from now on, through `peer`.
fn publish(name: &str, shared: &Shared, peer: &Peer<RoleClient>, tools: Vec<Tool>) {
    let catalog = Arc::new(catalog(name, tools));
    let count = catalog.specs.len();
    let mut changed = true;
    shared.write(|s| {
        changed = s.catalog.specs != catalog.specs;
        s.peer = Some(peer.clone());
        s.catalog = catalog;
    });
    shared.status.send_modify(|s| {
        s.connected = true;
        s.listings += 1;
    });
    if changed {
        tracing::info!(mcp.server = %name, tools = count, "MCP tools listed");
    } else {
        tracing::debug!(mcp.server = %name, tools = count, "MCP tools listed, unchanged");
    }
}

/// The server's tools under their offered names (see [`naming::offered_name`]).
fn catalog(server: &str, tools: Vec<Tool>) -> Catalog {
    let mut specs = Vec::with_capacity(tools.len());
    let mut real = HashMap::with_capacity(tools.len());
    for tool in tools {
        let Some(offered) = naming::offered_name(server, &tool.name) else {
            tracing::warn!(mcp.server = %server, "an MCP tool without a name is left out");
            continue;
        };
        if real.contains_key(&offered) {
            tracing::warn!(mcp.server = %server, tool = %tool.name, offered = %offered,
                "two MCP tools map to one offered name; the later one is left out");
            continue;
        }
        specs.push(ToolSpec {
            name: offered.clone(),
            description: tool.description.map(|d| d.into_owned()).or(tool.title),
            parameters: Value::Object((*tool.input_schema).clone()),
        });
        real.insert(offered, tool.name.into_owned());
    }
    Catalog { specs, real }
}

/// The client side of the session: who the hub is, and what it does with the server's
/// notifications (only `list_changed` matters here).
pub(super) struct Listener {
    shared: Arc<Shared>,
}

impl ClientHandler for Listener {
    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        // The connection task lists again (not here: this runs inside rmcp's message loop).
        self.shared.refresh.notify_one();
    }

    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("sessionhub", env!("CARGO_PKG_VERSION")),
        )
    }
}
