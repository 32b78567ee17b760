//! The memory budget of all loaded sessions together (`--sessions-memory-mb`).
//!
//! Each actor reports what its replay tail takes (plus a fixed overhead) when it turns quiet
//! and packs its tail, and again when it turns busy. Quiet sessions are kept in the order they
//! turned quiet; while the total is over the budget the least recently active quiet ones are
//! told to unload (their `Notify`): each actor then leaves as an idle eviction would, if it
//! still is idle, and its tabs resume from a snapshot (PROTOCOL.md allows it after an idle
//! eviction). Busy sessions are never told: their tails hold the protocol's floor of events.
//!
//! A plain mutex: every call is a few map operations, made at a session's quiet/busy turns,
//! never per event and never across an `.await`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

pub(crate) struct Budget {
    limit: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Bytes of every session counted (quiet and busy).
    total: usize,
    /// actor id -> (bytes counted, its place in `quiet` when quiet).
    sessions: HashMap<u64, (usize, Option<u64>)>,
    /// Quiet sessions, least recently active first: tick -> (actor id, its unload signal).
    quiet: BTreeMap<u64, (u64, Arc<Notify>)>,
    next_tick: u64,
}

impl Inner {
    fn forget(&mut self, actor: u64) {
        if let Some((bytes, tick)) = self.sessions.remove(&actor) {
            self.total -= bytes;
            if let Some(t) = tick {
                self.quiet.remove(&t);
            }
        }
    }
}

impl Budget {
    pub(crate) fn new(limit: usize) -> Self {
        Budget {
            limit,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The session turned quiet, taking `bytes`; `unload` is how it is told to go. Over the
    /// budget, the least recently active quiet sessions are told (perhaps this one).
    pub(crate) fn quiet(&self, actor: u64, bytes: usize, unload: &Arc<Notify>) {
        let mut g = self.lock();
        g.forget(actor);
        let tick = g.next_tick;
        g.next_tick += 1;
        g.total += bytes;
        g.sessions.insert(actor, (bytes, Some(tick)));
        g.quiet.insert(tick, (actor, unload.clone()));
        self.shed(&mut g);
    }

    /// While over the budget, tell the least recently active quiet session to unload.
    fn shed(&self, g: &mut Inner) {
        while g.total > self.limit {
            let Some((_, (victim, signal))) = g.quiet.pop_first() else {
                break;
            };
            // No longer counted: it leaves, or reports again when it turns busy.
            g.forget(victim);
            signal.notify_one();
        }
    }

    /// The session turned busy (a subscriber, an event): counted, never told to unload.
    pub(crate) fn busy(&self, actor: u64, bytes: usize) {
        let mut g = self.lock();
        g.forget(actor);
        g.total += bytes;
        g.sessions.insert(actor, (bytes, None));
        self.shed(&mut g);
    }

    /// The session was unloaded.
    pub(crate) fn remove(&self, actor: u64) {
        self.lock().forget(actor);
    }

    /// Bytes counted now, and how many sessions are counted quiet.
    pub(crate) fn counts(&self) -> (usize, usize) {
        let g = self.lock();
        (g.total, g.quiet.len())
    }

    #[cfg(test)]
    fn total(&self) -> usize {
        self.lock().total
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    fn told(n: &Arc<Notify>) -> bool {
        n.notified().now_or_never().is_some()
    }

    #[test]
    fn over_the_budget_the_least_recently_quiet_sessions_are_told_to_unload() {
        let b = Budget::new(250);
        let n: Vec<Arc<Notify>> = (0..4).map(|_| Arc::new(Notify::new())).collect();
        b.quiet(1, 100, &n[1]);
        b.quiet(2, 100, &n[2]);
        assert_eq!(b.total(), 200);
        assert!(!told(&n[1]) && !told(&n[2]));
        b.busy(3, 100);
        // 300 > 250: the oldest quiet one (1) goes; 3 is busy and never told.
        assert!(told(&n[1]));
        assert!(!told(&n[2]) && !told(&n[3]));
        assert_eq!(b.total(), 200);
        // 3 turns quiet with a bigger tail: 300 > 250, and 2 is now the least recent.
        b.quiet(3, 200, &n[3]);
        assert!(told(&n[2]));
        assert!(!told(&n[3]));
        assert_eq!(b.total(), 200);
    }

    #[test]
    fn a_session_that_turns_busy_again_leaves_the_quiet_order() {
        let b = Budget::new(150);
        let n: Vec<Arc<Notify>> = (0..3).map(|_| Arc::new(Notify::new())).collect();
        b.quiet(1, 100, &n[1]);
        b.busy(1, 100);
        b.quiet(2, 100, &n[2]);
        // 1 is busy: the only quiet candidate is 2.
        assert!(told(&n[2]));
        assert!(!told(&n[1]));
        b.remove(1);
        assert_eq!(b.total(), 0);
    }
}
