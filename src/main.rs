//! Binary entry point: parse the config, set up tracing, bind, serve until SIGINT or SIGTERM.

use clap::Parser;
use sessionhub::config::Config;

/// jemalloc, whose background thread returns freed pages to the system after a few seconds:
/// RSS falls back once idle sessions are unloaded (glibc's malloc keeps them).
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    sessionhub::telemetry::init(config.log_format);
    let addr = config.addr;
    let hub = sessionhub::build_hub(config)?;
    hub.tools_ready().await;
    let listener = sessionhub::bind(addr).map_err(|e| anyhow::anyhow!("binding {addr}: {e}"))?;
    tracing::info!(addr = %listener.local_addr()?, "sessionhub listening");
    sessionhub::serve(listener, hub, shutdown_signal()).await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => futures::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
