//! The ceiling server as a process, so the suite can read its CPU and RSS from /proc.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use loadtest::ceiling::{self, Ceiling, CeilingConfig};

/// Raw tokio-tungstenite fan-out server speaking the hub's wire subset.
#[derive(Parser)]
struct Args {
    /// Address to listen on (loopback, ports 19000-19999).
    #[arg(long, default_value = "127.0.0.1:19001")]
    listen: SocketAddr,
    /// Tokio worker threads (the hub runs with 2 on this machine).
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Deltas per scripted run.
    #[arg(long, default_value_t = 12)]
    scripted_deltas: usize,
    /// Microseconds between deltas of a run.
    #[arg(long, default_value_t = 40_000)]
    scripted_delay_us: u64,
    /// Frames a connection may queue before it is cut with 4008.
    #[arg(long, default_value_t = 1024)]
    queue: usize,
    /// Frames fed per flush.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// WebSocket read buffer per connection.
    #[arg(long, default_value_t = 4096)]
    read_buffer: usize,
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let cfg = CeilingConfig {
        deltas: a.scripted_deltas,
        delay: Duration::from_micros(a.scripted_delay_us.max(1)),
        queue: a.queue,
        batch: a.batch.max(1),
        read_buffer: a.read_buffer,
        ..CeilingConfig::default()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(a.workers.max(1))
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = ceiling::listen(a.listen)?;
        eprintln!("ceiling listening on {}", listener.local_addr()?);
        ceiling::serve(listener, Ceiling::new(cfg)).await?;
        Ok(())
    })
}
