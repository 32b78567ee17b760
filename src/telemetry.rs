//! Tracing set-up and the Prometheus metrics registry exposed at `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::OnceLock;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Install the global tracing subscriber. `RUST_LOG` overrides the default `info` level.
/// Prompt and completion text are logged only at `debug` or below.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TransportLabel {
    pub transport: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TokenLabel {
    pub kind: String,
}

/// What the process's allocator holds, in bytes (jemalloc's `stats.*`): `allocated` by the
/// program; `active` in pages holding allocations (allocated plus the free slots of partly used
/// pages); `metadata` for the allocator's own bookkeeping; `resident` in physical memory
/// (active, metadata, and free pages not yet returned); `retained` as address space kept
/// without physical memory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeapStats {
    pub allocated: u64,
    pub active: u64,
    pub metadata: u64,
    pub resident: u64,
    pub retained: u64,
}

/// The `sessionhub_heap_*` gauges: name, help, which count.
type HeapField = fn(&HeapStats) -> u64;
const HEAP_GAUGES: [(&str, &str, HeapField); 5] = [
    (
        "heap_allocated_bytes",
        "Bytes the program has allocated, as the allocator counts them",
        |s| s.allocated,
    ),
    (
        "heap_active_bytes",
        "Bytes in the allocator's pages that hold allocations (allocated plus free slots in them)",
        |s| s.active,
    ),
    (
        "heap_metadata_bytes",
        "Bytes of the allocator's own bookkeeping",
        |s| s.metadata,
    ),
    (
        "heap_resident_bytes",
        "Bytes of physical memory the allocator holds (active, metadata, free pages kept)",
        |s| s.resident,
    ),
    (
        "heap_retained_bytes",
        "Address space the allocator keeps without physical memory",
        |s| s.retained,
    ),
];

/// The binary's allocator as the hub drives it: its counts for `/metrics`, and a switch
/// between keeping freed pages for reuse (`idle == false`: a run is streaming) and giving them
/// back to the system at once (`idle == true`).
#[derive(Clone, Copy, Debug)]
pub struct HeapControl {
    pub stats: fn() -> Option<HeapStats>,
    pub set_idle: fn(bool),
}

static HEAP_CONTROL: OnceLock<HeapControl> = OnceLock::new();

/// The binary picks the allocator, so it says how to drive it; call before [`Metrics::new`].
/// Without it `/metrics` has no `sessionhub_heap_*` lines and nothing is switched.
pub fn set_heap_control(control: HeapControl) {
    let _ = HEAP_CONTROL.set(control);
}

/// Follow `runs_active`: while no run streams, the allocator returns what is freed at once (so
/// RSS falls soon after idle sessions are unloaded); while any does, it keeps freed pages for
/// reuse (returning them costs page faults on the hot path). Checked every `period`; returns
/// at once when no control was set.
pub async fn switch_heap_on_idle(metrics: std::sync::Arc<Metrics>, period: std::time::Duration) {
    let Some(control) = HEAP_CONTROL.get().copied() else {
        return;
    };
    let mut idle = None;
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = metrics.runs_active.get() == 0;
        if idle != Some(now) {
            (control.set_idle)(now);
            idle = Some(now);
        }
    }
}

struct HeapGauges {
    read: fn() -> Option<HeapStats>,
    gauges: Vec<(HeapField, Gauge)>,
}

/// Every metric the hub exports. Cheap to update from any task (atomics inside).
pub struct Metrics {
    registry: Registry,
    pub connections: Family<TransportLabel, Gauge>,
    pub sessions_live: Gauge,
    /// Loaded sessions with no run whose replay tail is packed (or empty).
    pub sessions_quiet: Gauge,
    /// What the loaded sessions' replay tails take, as the sessions budget counts it.
    pub sessions_memory_bytes: Gauge,
    pub runs_active: Gauge,
    pub runs_finished: Family<OutcomeLabel, Counter>,
    pub events_fanned_out: Counter,
    pub slow_consumer_closes: Counter,
    pub tokens: Family<TokenLabel, Counter>,
    heap: Option<HeapGauges>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("sessionhub");
        let connections = Family::<TransportLabel, Gauge>::default();
        let sessions_live = Gauge::default();
        let sessions_quiet = Gauge::default();
        let sessions_memory_bytes = Gauge::default();
        let runs_active = Gauge::default();
        let runs_finished = Family::<OutcomeLabel, Counter>::default();
        let events_fanned_out = Counter::default();
        let slow_consumer_closes = Counter::default();
        let tokens = Family::<TokenLabel, Counter>::default();
        registry.register(
            "connections",
            "Open client connections",
            connections.clone(),
        );
        registry.register(
            "sessions_live",
            "Session actors loaded in memory",
            sessions_live.clone(),
        );
        registry.register(
            "sessions_quiet",
            "Loaded sessions with no run and a packed (or empty) replay tail",
            sessions_quiet.clone(),
        );
        registry.register(
            "sessions_memory_bytes",
            "Bytes of the loaded sessions' replay tails (plus 12 KiB each), as budgeted",
            sessions_memory_bytes.clone(),
        );
        registry.register(
            "runs_active",
            "Runs streaming right now",
            runs_active.clone(),
        );
        registry.register(
            "runs_finished",
            "Runs ended, by outcome",
            runs_finished.clone(),
        );
        registry.register(
            "events_fanned_out",
            "Sequenced events queued to subscribers",
            events_fanned_out.clone(),
        );
        registry.register(
            "slow_consumer_closes",
            "Connections closed because their outbound queue overflowed",
            slow_consumer_closes.clone(),
        );
        registry.register("tokens", "Upstream model tokens, by kind", tokens.clone());
        let heap = HEAP_CONTROL.get().map(|control| HeapGauges {
            read: control.stats,
            gauges: HEAP_GAUGES
                .iter()
                .map(|&(name, help, field)| {
                    let g = Gauge::default();
                    registry.register(name, help, g.clone());
                    (field, g)
                })
                .collect(),
        });
        Metrics {
            registry,
            connections,
            sessions_live,
            sessions_quiet,
            sessions_memory_bytes,
            runs_active,
            runs_finished,
            events_fanned_out,
            slow_consumer_closes,
            tokens,
            heap,
        }
    }

    pub fn connection_gauge(&self, transport: &str) -> Gauge {
        self.connections
            .get_or_create(&TransportLabel {
                transport: transport.to_owned(),
            })
            .clone()
    }

    pub fn run_finished(&self, outcome: &str) {
        self.runs_finished
            .get_or_create(&OutcomeLabel {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    pub fn count_usage(&self, usage: &crate::domain::Usage) {
        for (kind, n) in [
            ("prompt", usage.prompt_tokens),
            ("completion", usage.completion_tokens),
        ] {
            self.tokens
                .get_or_create(&TokenLabel {
                    kind: kind.to_owned(),
                })
                .inc_by(n);
        }
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        if let Some(h) = &self.heap {
            if let Some(st) = (h.read)() {
                for (field, g) in &h.gauges {
                    g.set(i64::try_from(field(&st)).unwrap_or(i64::MAX));
                }
            }
        }
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    static SWITCHED: Mutex<Vec<bool>> = Mutex::new(Vec::new());

    fn record(idle: bool) {
        SWITCHED.lock().unwrap().push(idle);
    }

    fn counts() -> Option<HeapStats> {
        Some(HeapStats {
            allocated: 3,
            active: 4,
            metadata: 1,
            resident: 5,
            retained: 7,
        })
    }

    /// Move the paused clock one period on and let the switch task run (no real wait).
    async fn one_period() {
        tokio::time::advance(Duration::from_secs(1)).await;
        for _ in 0..4 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_heap_is_switched_when_runs_start_and_all_end_and_its_counts_are_exported() {
        set_heap_control(HeapControl {
            stats: counts,
            set_idle: record,
        });
        let metrics = Arc::new(Metrics::new());
        let task = tokio::spawn(switch_heap_on_idle(metrics.clone(), Duration::from_secs(1)));
        one_period().await;
        assert_eq!(*SWITCHED.lock().unwrap(), [true], "idle at start");
        metrics.runs_active.inc();
        metrics.runs_active.inc();
        one_period().await;
        metrics.runs_active.dec();
        one_period().await;
        assert_eq!(
            *SWITCHED.lock().unwrap(),
            [true, false],
            "busy once a run streams, and still busy while one does"
        );
        metrics.runs_active.dec();
        one_period().await;
        one_period().await;
        assert_eq!(*SWITCHED.lock().unwrap(), [true, false, true], "idle again");
        task.abort();
        let text = metrics.render();
        for line in [
            "sessionhub_heap_allocated_bytes 3",
            "sessionhub_heap_active_bytes 4",
            "sessionhub_heap_metadata_bytes 1",
            "sessionhub_heap_resident_bytes 5",
            "sessionhub_heap_retained_bytes 7",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in {text}");
        }
    }
}
