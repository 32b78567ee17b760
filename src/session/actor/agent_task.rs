//! The active run's agent as a child task: it polls the agent's stream and forwards each chunk
//! over a bounded channel to the actor (the actor holds the receiver; the task holds the
//! sender and awaits room, so a slow actor slows only its own agent). Dropping the
//! `AgentTask` aborts the task, which drops the agent stream and with it the upstream request.

use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::agent::{AgentChunk, AgentError, AgentStream};

type Chunk = Result<AgentChunk, AgentError>;

/// Chunks the task may run ahead of the actor.
const AHEAD: usize = 64;

pub(super) struct AgentTask {
    /// The task's sender is its only other end: closed when the task ends or is aborted.
    rx: mpsc::Receiver<Chunk>,
    task: JoinHandle<()>,
}

impl AgentTask {
    pub(super) fn spawn(mut stream: AgentStream) -> Self {
        let (tx, rx) = mpsc::channel::<Chunk>(AHEAD);
        let task = tokio::spawn(async move {
            while let Some(chunk) = stream.next().await {
                let end = matches!(chunk, Ok(AgentChunk::Finished(_)) | Err(_));
                if tx.send(chunk).await.is_err() || end {
                    return;
                }
            }
            let _ = tx
                .send(Err(AgentError::new(
                    "upstream_protocol",
                    "the agent's stream ended without finishing",
                    true,
                )))
                .await;
        });
        AgentTask { rx, task }
    }

    /// The next chunk of the running agent; pending forever when none runs.
    pub(super) async fn recv(agent: &mut Option<AgentTask>) -> Chunk {
        match agent {
            Some(a) => match a.rx.recv().await {
                Some(chunk) => chunk,
                None => Err(AgentError::new("internal", "the run task stopped", true)),
            },
            None => std::future::pending().await,
        }
    }
}

impl Drop for AgentTask {
    fn drop(&mut self) {
        self.task.abort();
    }
}
