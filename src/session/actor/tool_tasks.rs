//! Server tool calls in flight, each a child task whose outcome comes back to the actor over
//! one bounded channel. Aborting a task (cancel, delete, shutdown) drops the call's future,
//! which cancels the request at the tool's server.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::tools::{ToolOutcome, Tools};

/// Outcomes that may wait for the actor.
const OUTCOMES: usize = 64;

pub(super) struct ToolTasks {
    /// Made at the first call (most sessions never call a server tool, and a channel
    /// allocates its first slots at once). The sender is cloned into every task; the actor
    /// holds the receiver, where the outcomes of finished calls arrive with their call ids.
    channel: Option<Outcomes>,
    running: HashMap<String, JoinHandle<()>>,
}

struct Outcomes {
    tx: mpsc::Sender<(String, ToolOutcome)>,
    rx: mpsc::Receiver<(String, ToolOutcome)>,
}

impl ToolTasks {
    pub(super) fn new() -> Self {
        ToolTasks {
            channel: None,
            running: HashMap::new(),
        }
    }

    pub(super) fn start(
        &mut self,
        tools: &Arc<Tools>,
        call_id: String,
        name: &str,
        arguments: &str,
    ) {
        let call = tools.call(name, arguments);
        let tx = self
            .channel
            .get_or_insert_with(|| {
                let (tx, rx) = mpsc::channel(OUTCOMES);
                Outcomes { tx, rx }
            })
            .tx
            .clone();
        let id = call_id.clone();
        let task = tokio::spawn(async move {
            let outcome = call.await;
            let _ = tx.send((id, outcome)).await;
        });
        if let Some(old) = self.running.insert(call_id, task) {
            old.abort();
        }
    }

    pub(super) fn stop(&mut self, call_id: &str) {
        if let Some(task) = self.running.remove(call_id) {
            task.abort();
        }
    }

    /// The next finished call; pending while none finishes.
    pub(super) async fn next(&mut self) -> (String, ToolOutcome) {
        let Some(ch) = self.channel.as_mut() else {
            return std::future::pending().await;
        };
        loop {
            let (call_id, outcome) = ch.rx.recv().await.expect("the actor holds a sender");
            // An outcome of a call stopped meanwhile is dropped.
            if self.running.remove(&call_id).is_some() {
                return (call_id, outcome);
            }
        }
    }
}

impl Drop for ToolTasks {
    fn drop(&mut self) {
        for (_, task) in self.running.drain() {
            task.abort();
        }
    }
}
