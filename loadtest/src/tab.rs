//! One simulated browser tab: its place in the session's event sequence and what it does with
//! each frame, shared by the WebSocket and SSE tab loops.

use std::cell::RefCell;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{watch, Semaphore};

use crate::stats::{SeqStep, SeqTrack, Stats};
use crate::wire::{self, InFrame};

/// When things happen, fixed by the coordinator once every tab is subscribed.
#[derive(Debug, Clone, Copy)]
pub struct Timeline {
    /// Drivers start their runs from here (plus their stagger).
    pub go: Instant,
    /// Deltas whose production stamp falls in [start, end) are measured.
    pub window_start_us: u64,
    pub window_end_us: u64,
    /// Tabs stop reading and report.
    pub stop: Instant,
    /// Connecting failed: tabs leave at once.
    pub abort: bool,
}

/// What one tab is.
#[derive(Debug, Clone)]
pub struct TabSpec {
    pub idx: usize,
    /// Session number (index into the plan's sessions) and its id on the server.
    pub session: usize,
    pub session_id: Arc<str>,
    /// The driver of a session sends the user messages that start its runs.
    pub driver: bool,
    /// Offset from `go` at which the driver sends, so runs do not tick in lockstep.
    pub stagger: Duration,
    /// A slow tab stops reading at `go` (scenario S7).
    pub slow: bool,
    /// Reconnect with resume this often, first at `go + churn_phase` (scenario S8).
    pub churn_every: Option<Duration>,
    pub churn_phase: Duration,
    pub src: IpAddr,
}

/// What the tabs of one loader thread share (single-threaded runtime, so Rc/RefCell).
pub struct TabCtx {
    pub addr: SocketAddr,
    /// Messages each driver sends at `go` (queued behind each other by the hub).
    pub messages: usize,
    /// Runs every tab must see complete, when the plan checks it.
    pub expect_runs: Option<u64>,
    /// Compare each completed item's text with the concatenated deltas.
    pub check_text: bool,
    pub stats: RefCell<Stats>,
    pub timeline: watch::Receiver<Option<Timeline>>,
    /// One message per tab: subscribed (true) or failed (false). The coordinator counts them.
    pub ready: std::sync::mpsc::Sender<bool>,
    /// Bounds concurrent handshakes.
    pub connect_gate: Semaphore,
}

pub type Ctx = Rc<TabCtx>;

/// How long a tab may take to connect and get its subscription answered.
pub const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(60);

/// A tab's view of its session.
pub struct TabState {
    pub track: SeqTrack,
    /// Events up to this seq arrive as a replay after a resume.
    replay_until: u64,
    /// The reply so far, when checking texts; None when a snapshot broke the chain.
    text: Option<String>,
    pub runs: u64,
    pub subscribed: bool,
    /// The code of the last `error` reply, for the subscribe step to see.
    pub last_error: Option<String>,
    /// A driver's sends not acknowledged yet: after a reconnect they are sent again with the
    /// same `client_msg_id` (the protocol makes that idempotent), as a real client must, since
    /// the hub may drop frames it had not read when the old connection closed.
    pub unacked: Vec<String>,
    window: (u64, u64),
    session: usize,
}

impl TabState {
    pub fn new(session: usize) -> Self {
        TabState {
            track: SeqTrack::default(),
            replay_until: 0,
            text: None,
            runs: 0,
            subscribed: false,
            last_error: None,
            unacked: Vec::new(),
            window: (u64::MAX, u64::MAX),
            session,
        }
    }

    pub fn set_window(&mut self, t: &Timeline) {
        self.window = (t.window_start_us, t.window_end_us);
    }

    /// The resume point to send on reconnect.
    pub fn since(&self) -> Option<(String, u64)> {
        self.track.epoch.clone().map(|e| (e, self.track.last))
    }

    /// Apply one frame. `fallback_kind` is the SSE event name, for data without a `type`.
    pub fn on_frame(&mut self, raw: &str, fallback_kind: &str, ctx: &TabCtx) {
        let mut st = ctx.stats.borrow_mut();
        let Ok(f) = serde_json::from_str::<InFrame<'_>>(raw) else {
            st.bad_frames += 1;
            return;
        };
        let kind: &str = if f.kind.is_empty() {
            fallback_kind
        } else {
            &f.kind
        };
        if wire::is_direct_reply(kind) {
            match kind {
                "subscribed" => {
                    self.subscribed = true;
                    let epoch = f.epoch.as_deref().unwrap_or_default();
                    let resumed = self.track.epoch.is_some();
                    if resumed && self.track.epoch.as_deref() != Some(epoch) {
                        st.epoch_changes += 1;
                    }
                    if f.resume.as_deref() == Some("replay") {
                        self.replay_until = f.head_seq.unwrap_or(0);
                    } else if resumed {
                        st.snapshot_resumes += 1;
                    }
                    self.track.epoch = Some(epoch.to_owned());
                }
                "snapshot" => {
                    // The state as of `seq`: live events continue after it. Anything this tab
                    // missed before it is gone for this tab and shows up as loss.
                    self.subscribed = true;
                    if let Some(e) = f.epoch.as_deref() {
                        self.track.epoch = Some(e.to_owned());
                    }
                    self.track.last = f.seq.unwrap_or(0);
                    self.text = None;
                }
                "error" => {
                    let code = f.code.as_deref().unwrap_or("?");
                    st.count_error(code);
                    self.last_error = Some(code.to_owned());
                }
                "pong" => st.pongs += 1,
                "ack" => {
                    st.acks += 1;
                    if let Some(id) = f.client_msg_id.as_deref() {
                        self.unacked.retain(|u| u != id);
                    }
                }
                _ => {}
            }
            return;
        }
        let Some(seq) = f.seq else {
            st.bad_frames += 1;
            return;
        };
        if let Some(e) = f.epoch.as_deref() {
            if self.track.epoch.as_deref() != Some(e) {
                if self.track.epoch.is_some() {
                    st.epoch_changes += 1;
                    self.track.last = 0;
                }
                self.track.epoch = Some(e.to_owned());
            }
        }
        match self.track.step(seq) {
            SeqStep::Next => {}
            SeqStep::Gap(n) => {
                st.gaps += n;
                self.text = None;
            }
            SeqStep::Duplicate => {
                st.dups += 1;
                return;
            }
        }
        match kind {
            "run.delta" => {
                st.deltas_total += 1;
                let text = f.text.as_deref().unwrap_or_default();
                if let Some(t) = self.text.as_mut() {
                    t.push_str(text);
                }
                if let Some(stamp) = wire::stamp_of(text) {
                    if stamp >= self.window.0 && stamp < self.window.1 {
                        st.delivered_in_window += 1;
                        st.sessions[self.session].note_delta(seq);
                        let lat = wire::unix_us().saturating_sub(stamp).max(1);
                        if seq <= self.replay_until {
                            st.replay.saturating_record(lat);
                        } else {
                            st.live.saturating_record(lat);
                        }
                    }
                }
            }
            other => {
                st.sessions[self.session].nondelta.push(seq);
                match other {
                    "run.started" if ctx.check_text => self.text = Some(String::new()),
                    "run.completed" | "run.cancelled" | "run.failed" => {
                        if other == "run.completed" {
                            self.runs += 1;
                            st.runs_completed += 1;
                        }
                        if let (Some(acc), Some(item)) = (self.text.take(), f.item.as_ref()) {
                            st.text_checked += 1;
                            if acc != item.text {
                                st.text_mismatches += 1;
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    /// Record the tab's end state in the thread's stats.
    pub fn finish(&self, spec: &TabSpec, ctx: &TabCtx) {
        let mut st = ctx.stats.borrow_mut();
        st.tabs_done += 1;
        if spec.slow {
            st.slow_tabs += 1;
        } else {
            st.counted_tabs[spec.session] += 1;
        }
        if ctx.expect_runs.is_some_and(|n| self.runs >= n) {
            st.tabs_all_runs += 1;
        }
    }
}

/// Wait for the coordinator's timeline; None when the run was aborted.
pub async fn wait_timeline(ctx: &TabCtx) -> Option<Timeline> {
    let mut rx = ctx.timeline.clone();
    let t = match rx.wait_for(Option::is_some).await {
        Ok(v) => (*v)?,
        Err(_) => return None,
    };
    (!t.abort).then_some(t)
}

/// The client message id of a driver's k-th message.
pub fn client_msg_id(spec: &TabSpec, k: usize) -> String {
    format!("lt-{}-{k}", spec.session)
}
