//! What the tabs of one loader thread saw, merged across threads at the end of a run.
//!
//! Loss is counted against what the server produced: a delta belongs to the measurement window
//! when its production stamp does, and within one session stamps rise with `seq`, so the
//! window's deltas are the seq range [min, max] minus the non-delta events inside it. Every
//! tab of the session should receive each of them exactly once.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

/// Latencies are recorded in microseconds up to two minutes.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 120_000_000, 3).unwrap_or_else(|_| Histogram::new(3).unwrap())
}

/// The seq range of deltas stamped inside the window, per session, and where the non-delta
/// events sat.
#[derive(Debug, Clone, Default)]
pub struct SessionWindow {
    pub min: Option<u64>,
    pub max: Option<u64>,
    pub nondelta: Vec<u64>,
}

impl SessionWindow {
    pub fn note_delta(&mut self, seq: u64) {
        self.min = Some(self.min.map_or(seq, |m| m.min(seq)));
        self.max = Some(self.max.map_or(seq, |m| m.max(seq)));
    }

    fn merge(&mut self, o: &SessionWindow) {
        if let Some(m) = o.min {
            self.note_delta(m);
        }
        if let Some(m) = o.max {
            self.note_delta(m);
        }
        self.nondelta.extend_from_slice(&o.nondelta);
    }

    /// Distinct deltas the server stamped inside the window.
    pub fn deltas(&mut self) -> u64 {
        let (Some(lo), Some(hi)) = (self.min, self.max) else {
            return 0;
        };
        self.nondelta.sort_unstable();
        self.nondelta.dedup();
        let inside = self
            .nondelta
            .iter()
            .filter(|s| **s >= lo && **s <= hi)
            .count() as u64;
        (hi - lo + 1).saturating_sub(inside)
    }
}

/// Counters and histograms of one loader thread (owned by that thread, no locking).
#[derive(Debug)]
pub struct Stats {
    /// Deltas stamped in the window and received live: production to receipt.
    pub live: Histogram<u64>,
    /// Deltas received as part of a replay after a resume (their delay includes the reconnect).
    pub replay: Histogram<u64>,
    pub delivered_in_window: u64,
    pub deltas_total: u64,
    pub gaps: u64,
    pub dups: u64,
    pub epoch_changes: u64,
    pub snapshot_resumes: u64,
    pub reconnects: u64,
    pub reconnect_failures: u64,
    pub connect_failures: u64,
    pub bad_frames: u64,
    pub runs_completed: u64,
    pub text_checked: u64,
    pub text_mismatches: u64,
    /// Tabs that saw every run they expected complete (when the plan says how many).
    pub tabs_all_runs: u64,
    pub tabs_done: u64,
    pub slow_tabs: u64,
    /// Slow tabs the server closed with 4008.
    pub slow_cut: u64,
    pub pongs: u64,
    /// Acks for the drivers' sends.
    pub acks: u64,
    /// Error codes received, and unexpected close reasons, with counts.
    pub errors: BTreeMap<String, u64>,
    pub closes: BTreeMap<String, u64>,
    /// Indexed by session number (only the sessions this thread's tabs belong to are touched).
    pub sessions: Vec<SessionWindow>,
    /// Tabs per session that count for loss (slow tabs do not).
    pub counted_tabs: Vec<u64>,
}

impl Stats {
    pub fn new(sessions: usize) -> Self {
        Stats {
            live: new_histogram(),
            replay: new_histogram(),
            delivered_in_window: 0,
            deltas_total: 0,
            gaps: 0,
            dups: 0,
            epoch_changes: 0,
            snapshot_resumes: 0,
            reconnects: 0,
            reconnect_failures: 0,
            connect_failures: 0,
            bad_frames: 0,
            runs_completed: 0,
            text_checked: 0,
            text_mismatches: 0,
            tabs_all_runs: 0,
            tabs_done: 0,
            slow_tabs: 0,
            slow_cut: 0,
            pongs: 0,
            acks: 0,
            errors: BTreeMap::new(),
            closes: BTreeMap::new(),
            sessions: vec![SessionWindow::default(); sessions],
            counted_tabs: vec![0; sessions],
        }
    }

    pub fn count_error(&mut self, code: &str) {
        *self.errors.entry(code.to_owned()).or_default() += 1;
    }

    pub fn count_close(&mut self, why: String) {
        *self.closes.entry(why).or_default() += 1;
    }

    pub fn merge(&mut self, o: &Stats) {
        // Histograms share bounds, so add cannot fail; a failure would only lose samples.
        let _ = self.live.add(&o.live);
        let _ = self.replay.add(&o.replay);
        self.delivered_in_window += o.delivered_in_window;
        self.deltas_total += o.deltas_total;
        self.gaps += o.gaps;
        self.dups += o.dups;
        self.epoch_changes += o.epoch_changes;
        self.snapshot_resumes += o.snapshot_resumes;
        self.reconnects += o.reconnects;
        self.reconnect_failures += o.reconnect_failures;
        self.connect_failures += o.connect_failures;
        self.bad_frames += o.bad_frames;
        self.runs_completed += o.runs_completed;
        self.text_checked += o.text_checked;
        self.text_mismatches += o.text_mismatches;
        self.tabs_all_runs += o.tabs_all_runs;
        self.tabs_done += o.tabs_done;
        self.slow_tabs += o.slow_tabs;
        self.slow_cut += o.slow_cut;
        self.pongs += o.pongs;
        self.acks += o.acks;
        for (k, v) in &o.errors {
            *self.errors.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &o.closes {
            *self.closes.entry(k.clone()).or_default() += v;
        }
        for (i, w) in o.sessions.iter().enumerate() {
            if let Some(mine) = self.sessions.get_mut(i) {
                mine.merge(w);
            }
        }
        for (i, n) in o.counted_tabs.iter().enumerate() {
            if let Some(mine) = self.counted_tabs.get_mut(i) {
                *mine += n;
            }
        }
    }

    /// Distinct deltas the server stamped inside the window, all sessions together.
    pub fn produced_in_window(&mut self) -> u64 {
        self.sessions.iter_mut().map(SessionWindow::deltas).sum()
    }

    /// Deliveries the server owed the counted tabs for deltas stamped in the window.
    pub fn expected_in_window(&mut self) -> u64 {
        let tabs = self.counted_tabs.clone();
        self.sessions
            .iter_mut()
            .zip(tabs)
            .map(|(w, t)| w.deltas() * t)
            .sum()
    }
}

/// Tracks one tab's position in its session's event sequence.
#[derive(Debug, Default, Clone)]
pub struct SeqTrack {
    pub epoch: Option<String>,
    /// The last seq applied (0 before the first event of a new session).
    pub last: u64,
}

/// How an incoming sequenced event relates to what the tab already holds.
#[derive(Debug, PartialEq, Eq)]
pub enum SeqStep {
    Next,
    Gap(u64),
    Duplicate,
}

impl SeqTrack {
    pub fn step(&mut self, seq: u64) -> SeqStep {
        if seq <= self.last {
            return SeqStep::Duplicate;
        }
        let missing = seq - self.last - 1;
        self.last = seq;
        if missing == 0 {
            SeqStep::Next
        } else {
            SeqStep::Gap(missing)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_track_finds_gaps_and_duplicates() {
        let mut t = SeqTrack::default();
        assert_eq!(t.step(1), SeqStep::Next);
        assert_eq!(t.step(2), SeqStep::Next);
        assert_eq!(t.step(5), SeqStep::Gap(2));
        assert_eq!(t.step(5), SeqStep::Duplicate);
        assert_eq!(t.step(3), SeqStep::Duplicate);
        assert_eq!(t.last, 5);
    }

    #[test]
    fn window_counts_deltas_between_non_delta_events() {
        let mut a = SessionWindow::default();
        a.note_delta(10);
        a.note_delta(14);
        a.nondelta = vec![12, 3, 20];
        let mut b = SessionWindow::default();
        b.note_delta(9);
        b.nondelta = vec![12];
        let mut s = Stats::new(1);
        s.sessions[0] = a;
        s.counted_tabs[0] = 2;
        let mut t = Stats::new(1);
        t.sessions[0] = b;
        t.counted_tabs[0] = 1;
        s.merge(&t);
        // seq 9..=14 is 6 events, one of them (12) not a delta: 5 deltas for each of 3 tabs.
        assert_eq!(s.expected_in_window(), 15);
    }

    #[test]
    fn missing_deliveries_show_as_loss() {
        let mut s = Stats::new(1);
        s.sessions[0].note_delta(1);
        s.sessions[0].note_delta(100);
        s.counted_tabs[0] = 10;
        s.delivered_in_window = 999;
        assert_eq!(s.expected_in_window() - s.delivered_in_window, 1);
    }
}
