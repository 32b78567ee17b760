//! Binary entry point: parse the config, set up tracing, bind, serve until SIGINT or SIGTERM.

use clap::Parser;
use sessionhub::config::Config;

/// jemalloc, whose background thread returns freed pages to the system: RSS falls back once
/// idle sessions are unloaded (glibc's malloc keeps them).
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    // An operator's own jemalloc settings are left alone.
    let set_idle: fn(bool) = match std::env::var_os("_RJEM_MALLOC_CONF") {
        Some(_) => |_| {},
        None => heap_idle,
    };
    sessionhub::telemetry::set_heap_control(sessionhub::telemetry::HeapControl {
        stats: heap_stats,
        set_idle,
    });
    sessionhub::telemetry::init(config.log_format);
    let addr = config.addr;
    let hub = sessionhub::build_hub(config)?;
    hub.tools_ready().await;
    let listener = sessionhub::bind(addr).map_err(|e| anyhow::anyhow!("binding {addr}: {e}"))?;
    tracing::info!(addr = %listener.local_addr()?, "sessionhub listening");
    sessionhub::serve(listener, hub, shutdown_signal()).await
}

/// jemalloc's own counts (refreshed by advancing its epoch), for `/metrics`.
fn heap_stats() -> Option<sessionhub::telemetry::HeapStats> {
    use tikv_jemalloc_ctl::{epoch, stats};
    epoch::advance().ok()?;
    Some(sessionhub::telemetry::HeapStats {
        allocated: stats::allocated::read().ok()? as u64,
        active: stats::active::read().ok()? as u64,
        metadata: stats::metadata::read().ok()? as u64,
        resident: stats::resident::read().ok()? as u64,
        retained: stats::retained::read().ok()? as u64,
    })
}

/// jemalloc keeps freed pages for 10 s by default ("dirty", for reuse without a page fault).
/// While the hub is idle that only keeps RSS up after sessions were unloaded: measured with
/// `loadgen memory --soak 120` (3,000 sessions created and unloaded), RSS 79 MB with the 10 s
/// decay and 50-51 MB with freed pages returned quickly. Under load returning them costs CPU
/// (an S4-shaped fan-out with a 1 s decay used ~4 % more CPU per delivery), so the hub asks for
/// it only while no run streams.
fn heap_idle(idle: bool) {
    use tikv_jemalloc_ctl::{Access, AsName};
    /// jemalloc's default, restored when a run starts.
    const BUSY_DECAY_MS: isize = 10_000;
    let ms: isize = if idle { 0 } else { BUSY_DECAY_MS };
    // `arenas.dirty_decay_ms` is the default of arenas made later; each existing arena is set
    // on its own (jemalloc has no "all arenas" form for decay times; arenas not yet made refuse
    // it). Setting 0 purges what is already dirty.
    let narenas = tikv_jemalloc_ctl::arenas::narenas::read().unwrap_or(0);
    let keys = std::iter::once("arenas.dirty_decay_ms\0".to_owned())
        .chain((0..narenas).map(|i| format!("arena.{i}.dirty_decay_ms\0")));
    let set = keys
        .filter(|key| key.as_bytes().name().write(ms).is_ok())
        .count();
    if set == 0 {
        tracing::warn!(decay_ms = ms, "jemalloc refused every decay setting");
    }
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
