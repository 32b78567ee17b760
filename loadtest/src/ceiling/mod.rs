//! The ceiling server: raw tokio-tungstenite fan-out with no persistence, speaking just enough
//! of the hub's wire protocol (sessions, subscribe with resume, send, scripted stamped runs,
//! SSE events) that the same loader measures both. It is what the hub's transport costs with
//! everything else taken away: the physical limit of this machine for the same offered load.

mod conn;
mod session;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket};

pub use session::Session;

/// Tunables, mirroring the hub's flags where there is one.
#[derive(Debug, Clone)]
pub struct CeilingConfig {
    /// Deltas per run (`--scripted-deltas`).
    pub deltas: usize,
    /// Time between deltas of a run.
    pub delay: Duration,
    /// Frames a connection may have queued before it is cut with 4008 (the hub's 1024).
    pub queue: usize,
    /// Frames fed before one flush (one write syscall).
    pub batch: usize,
    /// WebSocket read buffer per connection.
    pub read_buffer: usize,
    /// Events kept per session for resume.
    pub tail: usize,
}

impl Default for CeilingConfig {
    fn default() -> Self {
        CeilingConfig {
            deltas: 12,
            delay: Duration::from_millis(40),
            queue: 1024,
            batch: 64,
            read_buffer: 4096,
            tail: 1024,
        }
    }
}

/// Shared server state: the session registry (touched on create/subscribe/send only).
pub struct Ceiling {
    pub cfg: CeilingConfig,
    sessions: Mutex<HashMap<Arc<str>, Arc<Session>>>,
    next_id: AtomicU64,
}

impl Ceiling {
    pub fn new(cfg: CeilingConfig) -> Arc<Self> {
        Arc::new(Ceiling {
            cfg,
            sessions: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
        })
    }

    fn create(&self) -> Arc<Session> {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        let s = Session::new(format!("c{n}"), self.cfg.tail);
        if let Ok(mut map) = self.sessions.lock() {
            map.insert(s.id.clone(), s.clone());
        }
        s
    }

    fn get(&self, id: &str) -> Option<Arc<Session>> {
        self.sessions.lock().ok()?.get(id).cloned()
    }

    fn next_conn(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }
}

/// Listen with a 4096 backlog: tokio's `TcpListener::bind` uses 128, and a burst of a few
/// hundred connects then waits out 1-second SYN retries.
pub fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let sock = TcpSocket::new_v4()?;
    sock.set_reuseaddr(true)?;
    sock.bind(addr)?;
    sock.listen(4096)
}

/// Accept connections until the listener fails.
pub async fn serve(listener: TcpListener, state: Arc<Ceiling>) -> std::io::Result<()> {
    // Bounded by the process: runs until the listener errors or the task is dropped.
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(x) => x,
            // Out of file descriptors: keep serving the connections we hold.
            Err(e) if e.raw_os_error() == Some(24) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(conn::handle(stream, state.clone()));
    }
}

/// Unix time in milliseconds (the `ts` of events).
fn unix_ms() -> u64 {
    crate::wire::unix_us() / 1000
}
