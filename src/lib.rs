//! sessionhub: a WebSocket-first real-time session hub for AI agent chat.
//!
//! Crate map (dependency rule: `transport -> session -> {store, agent} -> domain`; `auth`
//! sits beside the transports; `config`, `error` and `domain` import no other room; checked
//! by `tests/architecture.rs`):
//! - [`config`]: typed configuration (clap, env vars).
//! - [`domain`]: the types every room shares (ids, items, positions, usage, time).
//! - [`session`]: one actor per session around a pure state machine; [`session::Hub`] is the
//!   way in for transports.
//! - [`store`]: persistence (sled) behind the [`store::Store`] trait.
//! - [`agent`]: the [`agent::Agent`] trait and its implementations.
//! - [`transport`]: WebSocket, SSE, ChatKit, AG-UI and REST adapters.
//! - [`auth`], [`error`], [`telemetry`]: identity, error codes, logs and metrics.
//! - `fuzzing`: the decoders of outside input, one call each, for the fuzz targets in `fuzz/`.

pub mod agent;
pub mod auth;
pub mod config;
pub mod domain;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod session;
pub mod store;
pub mod telemetry;
pub mod tools;
pub mod transport;

use std::future::{Future, IntoFuture};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use anyhow::Context;
use tokio::net::{TcpListener, TcpSocket};

use crate::agent::scripted::ScriptedAgent;
use crate::agent::Agent;
use crate::config::{AgentKind, Config, Durability};
use crate::session::Hub;
use crate::store::{SledStore, Store};
use crate::telemetry::Metrics;
use crate::transport::{AppState, Signals};

/// Listen backlog: tokio's default of 128 turns a burst of connects into 1 s SYN retries.
const BACKLOG: u32 = 4096;

/// Bind a listener with a deep accept backlog.
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_nodelay(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// The agent the config asks for.
pub fn build_agent(config: &Config) -> anyhow::Result<Arc<dyn Agent>> {
    match config.agent {
        // The scripted agent has one model, `scripted`: a models file would promise others.
        AgentKind::Scripted if config.models.models_file.is_some() => {
            anyhow::bail!("--models needs --agent openai: the scripted agent has one model")
        }
        AgentKind::Scripted => Ok(Arc::new(ScriptedAgent {
            deltas: config.scripted_deltas,
            delay: std::time::Duration::from_millis(config.scripted_delay_ms),
            stamp: config.scripted_stamp,
        })),
        AgentKind::Openai => match &config.models.models_file {
            Some(path) => {
                let models = config::load_models(path)?;
                Ok(Arc::new(crate::agent::openai::OpenAiAgent::from_models(
                    config, &models,
                )?))
            }
            None => Ok(Arc::new(crate::agent::openai::OpenAiAgent::from_config(
                config,
            )?)),
        },
    }
}

/// The server tools the config names (MCP servers, connecting in the background), under its
/// limits and approval globs. [`Hub::tools_ready`] waits for their first connections.
pub fn build_tools(config: &Config) -> anyhow::Result<tools::Tools> {
    tools::mcp::spawn_from_config(config)
}

/// Open the store (running crash recovery) and build the hub with the configured agent.
pub fn build_hub(config: Config) -> anyhow::Result<Hub> {
    let agent = build_agent(&config)?;
    build_hub_with_agent(config, agent)
}

/// Open the store (running crash recovery) and build the hub around `agent`.
pub fn build_hub_with_agent(config: Config, agent: Arc<dyn Agent>) -> anyhow::Result<Hub> {
    // Refuse a bad auth set-up (or anonymous mode on a public address) before the store opens;
    // `serve` checks again against the address actually bound.
    auth::Auth::from_config(&config, config.addr)?;
    // A bad tool set-up (approval globs, the ChatKit client tools file) stops the start
    // before the store is touched.
    let tools = Arc::new(build_tools(&config)?);
    let store = SledStore::open_with_cache(
        &config.data_dir,
        config.durability == Durability::On,
        config.store_cache_mb * 1024 * 1024,
    )
    .with_context(|| format!("opening the store in {}", config.data_dir.display()))?;
    let recovery = store.recover().context("recovering the store")?;
    tracing::info!(
        clean = recovery.clean,
        generation = recovery.generation,
        interrupted_items = recovery.interrupted_items,
        "store opened"
    );
    let store: Arc<dyn Store> = store;
    Ok(Hub::new(
        Arc::new(config),
        store,
        agent,
        tools,
        Arc::new(Metrics::new()),
    ))
}

/// The URL of the bundled page on `bound`; an unspecified address (`0.0.0.0`, `[::]`) is
/// opened on this machine through loopback.
pub fn page_url(bound: SocketAddr) -> String {
    let ip = match bound.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}/", SocketAddr::new(ip, bound.port()))
}

/// Serve until `shutdown` completes, then shut down as a protocol: stop accepting, let the
/// actors drain (runs finish within the drain timeout or end `interrupted`), close connections
/// with 1012, and record a clean shutdown in the store.
pub async fn serve(
    listener: TcpListener,
    hub: Hub,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let bound = listener.local_addr()?;
    let auth = Arc::new(auth::Auth::from_config(hub.config(), bound)?);
    auth.log_mode(bound);
    let signals = Signals::default();
    let state = AppState {
        hub: hub.clone(),
        signals: signals.clone(),
        auth,
    };
    let app = transport::router(state);
    let stopping = signals.stopping.clone();
    let server = tokio::spawn(
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(stopping.clone().cancelled_owned())
        .into_future(),
    );
    tracing::info!("open {}", page_url(bound));
    let heap = tokio::spawn(telemetry::switch_heap_on_idle(
        hub.metrics().clone(),
        std::time::Duration::from_secs(1),
    ));
    shutdown.await;
    heap.abort();
    tracing::info!("shutting down");
    stopping.cancel();
    hub.shutdown().await;
    signals.close_conns.cancel();
    signals.tracker.close();
    let grace = hub.config().close_timeout() + std::time::Duration::from_secs(1);
    if tokio::time::timeout(grace, signals.tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the close timeout");
    }
    match tokio::time::timeout(grace, server).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => tracing::warn!(error = %e, "server error at shutdown"),
        Ok(Err(e)) => tracing::warn!(error = %e, "server task failed"),
        Err(_) => tracing::warn!("HTTP server did not stop within the grace period"),
    }
    tracing::info!("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::page_url;

    #[test]
    fn the_page_url_opens_through_loopback_when_bound_to_every_address() {
        assert_eq!(
            page_url("127.0.0.1:8080".parse().unwrap()),
            "http://127.0.0.1:8080/"
        );
        assert_eq!(
            page_url("0.0.0.0:80".parse().unwrap()),
            "http://127.0.0.1:80/"
        );
        assert_eq!(page_url("[::]:8080".parse().unwrap()), "http://[::1]:8080/");
        assert_eq!(
            page_url("10.1.2.3:9000".parse().unwrap()),
            "http://10.1.2.3:9000/"
        );
    }
}
