//! Binary entry point: parse the config, set up tracing, bind, serve until SIGINT or SIGTERM.

use clap::Parser;
use sessionhub::config::Config;

/// jemalloc, whose background thread returns freed pages to the system: RSS falls back once
/// idle sessions are unloaded (glibc's malloc keeps them).
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// How long jemalloc keeps freed pages before giving them back (its default is 10 s, and as
/// much again for the "muzzy" stage). Measured with `loadgen memory --soak` (issue 15): after
/// 3,000 sessions were created and unloaded, RSS 79 MB with jemalloc's defaults, 50 MB with
/// these; a freed page is reused from the dirty pool for a second before it is returned.
const DIRTY_DECAY_MS: isize = 1000;
const MUZZY_DECAY_MS: isize = 0;

fn main() -> anyhow::Result<()> {
    let refused = tune_allocator();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(refused))
}

/// The decay times above, for every arena, unless the operator set jemalloc's own variable
/// (`_RJEM_MALLOC_CONF`), which then wins. Before the runtime starts its threads. Returns
/// what jemalloc refused, to be logged once tracing is up.
fn tune_allocator() -> Vec<String> {
    use tikv_jemalloc_ctl::{Access, AsName};
    if std::env::var_os("_RJEM_MALLOC_CONF").is_some() {
        return Vec::new();
    }
    // `arenas.*` is the default of arenas made from now on; `arena.4096.*` (MALLCTL_ARENAS_ALL)
    // changes the ones that already exist.
    let settings: [(&[u8], isize); 4] = [
        (b"arenas.dirty_decay_ms\0", DIRTY_DECAY_MS),
        (b"arenas.muzzy_decay_ms\0", MUZZY_DECAY_MS),
        (b"arena.4096.dirty_decay_ms\0", DIRTY_DECAY_MS),
        (b"arena.4096.muzzy_decay_ms\0", MUZZY_DECAY_MS),
    ];
    settings
        .into_iter()
        .filter_map(|(key, ms)| {
            let key = key.name();
            key.write(ms).err().map(|e| format!("{key}: {e}"))
        })
        .collect()
}

async fn run(allocator_refused: Vec<String>) -> anyhow::Result<()> {
    let config = Config::parse();
    sessionhub::telemetry::set_heap_stats(heap_stats);
    sessionhub::telemetry::init(config.log_format);
    for refused in allocator_refused {
        tracing::warn!(%refused, "jemalloc refused a setting");
    }
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
        resident: stats::resident::read().ok()? as u64,
        retained: stats::retained::read().ok()? as u64,
    })
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
