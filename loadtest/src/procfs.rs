//! Reads CPU time and memory from /proc: one process, this process, the whole machine.
//!
//! CPU is in seconds (ticks / CLK_TCK). Everything here is a cheap synchronous read taken at a
//! window edge; nothing samples continuously, so the loader adds no load of its own.

use std::collections::HashMap;
use std::fs;
use std::sync::OnceLock;

/// Clock ticks per second for /proc/*/stat. 100 on every Linux we run on; `getconf` confirms
/// it once (there is no safe std API for sysconf and unsafe code is forbidden here).
fn clk_tck() -> f64 {
    static TCK: OnceLock<f64> = OnceLock::new();
    *TCK.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|v| *v > 0.0)
            .unwrap_or(100.0)
    })
}

/// The fields of /proc/PID/stat after the parenthesised command name (which may hold spaces).
fn stat_fields(pid: u32) -> Option<(String, Vec<String>)> {
    let raw = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = raw.find('(')?;
    let close = raw.rfind(')')?;
    let comm = raw[open + 1..close].to_owned();
    let rest = raw[close + 1..]
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    Some((comm, rest))
}

/// User plus system CPU seconds of a process, all its threads (dead ones included).
pub fn process_cpu(pid: u32) -> Option<f64> {
    let (_, f) = stat_fields(pid)?;
    // After the comm: state is index 0, utime index 11, stime index 12.
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / clk_tck())
}

/// CPU seconds of the calling process.
pub fn self_cpu() -> f64 {
    process_cpu(std::process::id()).unwrap_or(0.0)
}

/// A field of /proc/PID/status in kB (`VmRSS`, `VmHWM`).
pub fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let raw = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    raw.lines()
        .find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// Resident set size of a process in kB.
pub fn rss_kb(pid: u32) -> Option<u64> {
    status_kb(pid, "VmRSS")
}

/// Machine-wide CPU counters from the first line of /proc/stat, in seconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct MachineCpu {
    /// user + nice + system: time spent running tasks.
    pub tasks: f64,
    /// irq + softirq: on loopback this is mostly our own network traffic.
    pub irq: f64,
    /// Time the hypervisor gave to someone else.
    pub steal: f64,
}

pub fn machine_cpu() -> MachineCpu {
    let raw = fs::read_to_string("/proc/stat").unwrap_or_default();
    let line = raw.lines().next().unwrap_or_default();
    let v: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    let at = |i: usize| v.get(i).copied().unwrap_or(0.0) / clk_tck();
    MachineCpu {
        tasks: at(0) + at(1) + at(2),
        irq: at(5) + at(6),
        steal: at(7),
    }
}

/// CPU seconds of every process on the machine, by pid, with its name.
pub type ProcessTable = HashMap<u32, (String, f64)>;

pub fn all_processes() -> ProcessTable {
    let mut out = HashMap::new();
    let Ok(dir) = fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if let Some((comm, f)) = stat_fields(pid) {
            let utime: f64 = f.get(11).and_then(|x| x.parse().ok()).unwrap_or(0.0);
            let stime: f64 = f.get(12).and_then(|x| x.parse().ok()).unwrap_or(0.0);
            out.insert(pid, (comm, (utime + stime) / clk_tck()));
        }
    }
    out
}

/// CPU used between two process tables by processes not in `exclude`, with the top users.
/// Kernel softirq threads are left out: on loopback they carry our own traffic. Processes that
/// exit inside the window are missed here; `WindowCpu` therefore decides on machine totals and
/// uses this table only to name the culprits.
pub fn other_cpu(
    before: &ProcessTable,
    after: &ProcessTable,
    exclude: &[u32],
) -> (f64, Vec<(String, f64)>) {
    let mut total = 0.0;
    let mut users: Vec<(String, f64)> = Vec::new();
    for (pid, (comm, cpu)) in after {
        if exclude.contains(pid) || comm.starts_with("ksoftirqd") {
            continue;
        }
        let start = before.get(pid).map(|(_, c)| *c).unwrap_or(0.0);
        let used = (cpu - start).max(0.0);
        if used > 0.0 {
            total += used;
            users.push((comm.clone(), used));
        }
    }
    users.sort_by(|a, b| b.1.total_cmp(&a.1));
    users.truncate(3);
    (total, users)
}

/// Kernel TCP memory in use (pages of 4 KiB, from /proc/net/sockstat), in kB.
pub fn tcp_mem_kb() -> u64 {
    let raw = fs::read_to_string("/proc/net/sockstat").unwrap_or_default();
    raw.lines()
        .find(|l| l.starts_with("TCP:"))
        .and_then(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            w.iter()
                .position(|x| *x == "mem")
                .and_then(|i| w.get(i + 1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map(|pages| pages * 4)
        .unwrap_or(0)
}

/// A snapshot of the CPU counters this crate compares across a window.
#[derive(Debug, Clone)]
pub struct Edge {
    pub at: std::time::Instant,
    pub server: f64,
    pub loader: f64,
    pub machine: MachineCpu,
    pub procs: ProcessTable,
}

impl Edge {
    pub fn take(server_pid: u32) -> Self {
        Edge {
            at: std::time::Instant::now(),
            server: process_cpu(server_pid).unwrap_or(0.0),
            loader: self_cpu(),
            machine: machine_cpu(),
            procs: all_processes(),
        }
    }
}

/// CPU figures over a window, in cores (CPU seconds per wall second).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct WindowCpu {
    pub seconds: f64,
    pub server_cpu_s: f64,
    pub server_cores: f64,
    pub loader_cores: f64,
    pub irq_cores: f64,
    pub steal_cores: f64,
    pub other_cores: f64,
    pub other_top: Vec<(String, f64)>,
}

impl WindowCpu {
    pub fn between(a: &Edge, b: &Edge, own: &[u32]) -> Self {
        let secs = b.at.duration_since(a.at).as_secs_f64().max(1e-3);
        let (_, top) = other_cpu(&a.procs, &b.procs, own);
        // Machine task time minus ours is exact whatever starts or exits in the window (a
        // process table misses the short-lived compiler jobs that make up most contamination).
        let ours = (b.server - a.server) + (b.loader - a.loader);
        let other = ((b.machine.tasks - a.machine.tasks) - ours).max(0.0);
        WindowCpu {
            seconds: secs,
            server_cpu_s: b.server - a.server,
            server_cores: (b.server - a.server) / secs,
            loader_cores: (b.loader - a.loader) / secs,
            irq_cores: (b.machine.irq - a.machine.irq) / secs,
            steal_cores: (b.machine.steal - a.machine.steal) / secs,
            other_cores: other / secs,
            other_top: top.into_iter().map(|(n, c)| (n, c / secs)).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_process() {
        let pid = std::process::id();
        assert!(rss_kb(pid).unwrap() > 0);
        assert!(process_cpu(pid).is_some());
        assert!(machine_cpu().tasks > 0.0);
        assert!(all_processes().contains_key(&pid));
        assert!(process_cpu(u32::MAX).is_none());
    }
}
