//! A counting agent for cancel tests: the scripted agent, wrapped to count streams started and
//! dropped.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use sessionhub::agent::Agent;
use tokio::sync::Notify;

use super::ws::FRAME_TIMEOUT;

/// An agent that streams like the scripted one and counts streams started and dropped, so
/// tests can see that a cancel really stopped the upstream work.
pub struct TrackingAgent {
    pub inner: sessionhub::agent::scripted::ScriptedAgent,
    pub started: Arc<AtomicUsize>,
    pub dropped: Arc<AtomicUsize>,
    pub dropped_notify: Arc<Notify>,
}

impl TrackingAgent {
    pub fn new(deltas: u32, delay_ms: u64) -> Arc<Self> {
        Arc::new(TrackingAgent {
            inner: sessionhub::agent::scripted::ScriptedAgent {
                deltas,
                delay: Duration::from_millis(delay_ms),
                stamp: false,
            },
            started: Default::default(),
            dropped: Default::default(),
            dropped_notify: Default::default(),
        })
    }

    /// Wait (bounded) until `n` streams have been dropped.
    pub async fn wait_dropped(&self, n: usize) {
        tokio::time::timeout(FRAME_TIMEOUT, async {
            loop {
                let notified = self.dropped_notify.notified();
                if self.dropped.load(Ordering::SeqCst) >= n {
                    return;
                }
                notified.await;
            }
        })
        .await
        .expect("agent stream dropped in time");
    }
}

struct DropGuard(Arc<AtomicUsize>, Arc<Notify>);

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
        self.1.notify_waiters();
    }
}

impl Agent for TrackingAgent {
    fn stream(&self, request: sessionhub::agent::AgentRequest) -> sessionhub::agent::AgentStream {
        self.started.fetch_add(1, Ordering::SeqCst);
        let guard = DropGuard(self.dropped.clone(), self.dropped_notify.clone());
        let inner = self.inner.stream(request);
        Box::pin(inner.map(move |c| {
            let _keep = &guard;
            c
        }))
    }
}
