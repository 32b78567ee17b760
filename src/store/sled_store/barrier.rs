//! The durability barrier: one thread runs `flush` plus `fsync` of sled's data file, and every
//! request that arrived while one ran is answered by the next (group commit).

use std::fs::File;
use std::sync::mpsc as std_mpsc;

use tokio::sync::oneshot;

pub(super) type BarrierReply = oneshot::Sender<Result<(), String>>;

/// The barrier thread and the way to reach it; dropping `tx` ends the thread.
pub(super) struct BarrierWorker {
    pub(super) tx: std_mpsc::Sender<BarrierReply>,
    pub(super) join: std::thread::JoinHandle<()>,
}

/// Runs barriers one after another; every request that arrived during a barrier is answered by
/// the next one (group commit). Ends when the store is dropped.
pub(super) fn barrier_thread(db: sled::Db, data_file: File, rx: std_mpsc::Receiver<BarrierReply>) {
    while let Ok(first) = rx.recv() {
        let mut waiting = vec![first];
        while let Ok(more) = rx.try_recv() {
            waiting.push(more);
        }
        let result = db
            .flush()
            .map(|_| ())
            .map_err(|e| e.to_string())
            .and_then(|_| data_file.sync_all().map_err(|e| e.to_string()));
        for w in waiting {
            let _ = w.send(result.clone());
        }
    }
}
