//! The "machine is quiet" guard: wait (bounded) until other processes leave the cores alone,
//! and flag a measurement window in which they did not.

use std::time::{Duration, Instant};

use crate::procfs;

/// Other processes may use at most this share of one core during a window (perf.md §6).
pub const CONTAMINATION_CORES: f64 = 0.10;

/// What the wait saw.
#[derive(Debug, Clone, serde::Serialize)]
pub struct QuietWait {
    pub waited_s: f64,
    pub quiet: bool,
    pub last_other_cores: f64,
    pub last_top: Vec<(String, f64)>,
}

/// Sample one-second windows until two in a row show other processes below the threshold, or
/// `max_wait` passes. `own` are the pids that are part of the measurement.
pub fn wait_quiet(own: &[u32], max_wait: Duration) -> QuietWait {
    let start = Instant::now();
    let mut quiet_in_row = 0;
    let mut last = (0.0, Vec::new());
    // Bounded: at most max_wait / 1 s samples, plus one.
    let max_samples = max_wait.as_secs().max(1) + 1;
    for _ in 0..max_samples {
        let pid = own.first().copied().unwrap_or(0);
        let a = procfs::Edge::take(pid);
        std::thread::sleep(Duration::from_secs(1));
        let b = procfs::Edge::take(pid);
        let w = procfs::WindowCpu::between(&a, &b, own);
        last = (w.other_cores, w.other_top);
        if last.0 <= CONTAMINATION_CORES {
            quiet_in_row += 1;
            if quiet_in_row >= 2 {
                break;
            }
        } else {
            quiet_in_row = 0;
        }
        if start.elapsed() >= max_wait {
            break;
        }
    }
    QuietWait {
        waited_s: start.elapsed().as_secs_f64(),
        quiet: quiet_in_row >= 2,
        last_other_cores: last.0,
        last_top: last.1,
    }
}

/// Whether a window is contaminated, from its CPU figures.
pub fn contaminated(cpu: &procfs::WindowCpu) -> bool {
    cpu.other_cores > CONTAMINATION_CORES
}
