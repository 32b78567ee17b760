//! The sled implementation of [`Store`]: one tree, prefixed keys, group-committed barriers.
//!
//! Key layout (all in sled's default tree, so one `apply_batch` is atomic across kinds):
//! - `s/{session}` -> SessionRecord (JSON)
//! - `o/{owner}\0{created_ms:016x}{session}` -> () : owner's sessions by creation
//! - `i/{session}\0{ord:016x}` -> Item (JSON)
//! - `x/{session}\0{item_id}` -> ord (8 bytes BE) : item id to position
//! - `k/{session}\0{client_msg_id}` -> IdemRecord (JSON)
//! - `t/{session}\0{call_id}` -> CallRecord (JSON) : a tool call's item and resolution
//! - `r/{session}\0{ord:016x}` -> () : items streaming right now (crash recovery)
//! - `c/{session}\0{ord:016x}{n:08x}` -> text : checkpointed text of a streaming item, in order
//! - `m/clean`, `m/gen` : shutdown marker and store generation
//!
//! Durability: sled's `flush` uses `sync_file_range` on Linux, which does not survive power
//! loss (shared/research/reliability.md E7), so a barrier is `flush` plus `fsync` of sled's data
//! file. One background thread performs barriers; callers arriving while one runs share the
//! next, so N sessions acknowledging at once cost one fsync, not N.

mod barrier;
mod keys;

use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use tokio::sync::oneshot;

use barrier::{barrier_thread, BarrierReply, BarrierWorker};
use keys::{chunk_prefix, item_key, owner_key, sep_key, session_key, streaming_key};

use super::{
    CallRecord, IdemRecord, ItemRange, Recovery, SessionRecord, Store, StoreError, StoreResult,
    StoredItem, WriteBatch,
};
use crate::domain::{Item, ItemStatus};

/// sled's page cache unless told otherwise: 64 MiB.
pub const DEFAULT_CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// How long opening waits for the data dir's lock while a store closed in this process still
/// lets go of it (sled's background threads drop their handles a moment after `close`).
const LOCK_WAIT: Duration = Duration::from_secs(2);

pub struct SledStore {
    db: sled::Db,
    generation: AtomicU64,
    /// The barrier thread; `None` when durability is off (benchmarks only) or after `close`.
    barrier: Mutex<Option<BarrierWorker>>,
}

impl SledStore {
    /// Open (or create) the store in `dir`, with sled's page cache at its default here
    /// ([`DEFAULT_CACHE_BYTES`]). With `durable` false, barriers return at once.
    pub fn open(dir: &Path, durable: bool) -> StoreResult<Arc<Self>> {
        Self::open_with_cache(dir, durable, DEFAULT_CACHE_BYTES)
    }

    /// Open (or create) the store in `dir` with a page cache of `cache_bytes` (sled's own
    /// default, 1 GiB, is far more than a hub needs, and freed cache is memory kept).
    pub fn open_with_cache(dir: &Path, durable: bool, cache_bytes: u64) -> StoreResult<Arc<Self>> {
        std::fs::create_dir_all(dir)?;
        let db = open_db(dir, cache_bytes)?;
        let barrier = if durable {
            let data_file = File::open(dir.join("db"))?;
            let (tx, rx) = std_mpsc::channel::<BarrierReply>();
            let db2 = db.clone();
            let join = std::thread::Builder::new()
                .name("store-barrier".into())
                .spawn(move || barrier_thread(db2, data_file, rx))?;
            Some(BarrierWorker { tx, join })
        } else {
            None
        };
        Ok(Arc::new(SledStore {
            db,
            generation: AtomicU64::new(0),
            barrier: Mutex::new(barrier),
        }))
    }

    fn get_json<T: serde::de::DeserializeOwned>(&self, key: &[u8]) -> StoreResult<Option<T>> {
        match self.db.get(key)? {
            Some(v) => Ok(Some(serde_json::from_slice(&v)?)),
            None => Ok(None),
        }
    }

    fn remove_prefix(&self, batch: &mut sled::Batch, prefix: &[u8]) -> StoreResult<()> {
        for kv in self.db.scan_prefix(prefix) {
            let (k, _) = kv?;
            batch.remove(k);
        }
        Ok(())
    }
}

/// Opens sled, retrying a lock held by this process's store that just closed (a lock file
/// offers no wake-up, so it is polled, for at most [`LOCK_WAIT`]). Another process holding the
/// lock still fails, after that wait, with sled's "could not acquire lock" error.
fn open_db(dir: &Path, cache_bytes: u64) -> sled::Result<sled::Db> {
    let config = sled::Config::new()
        .path(dir)
        .cache_capacity(cache_bytes)
        .flush_every_ms(Some(500));
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        match config.open() {
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock")
                    && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

impl Store for SledStore {
    fn recover(&self) -> StoreResult<Recovery> {
        let clean = self.db.get(b"m/clean")?.is_some_and(|v| v.as_ref() == b"1");
        let mut generation = self
            .db
            .get(b"m/gen")?
            .map(|v| {
                let mut b = [0u8; 8];
                b.copy_from_slice(&v[..8]);
                u64::from_be_bytes(b)
            })
            .unwrap_or(0);
        if !clean {
            generation += 1;
        }
        self.generation.store(generation, Ordering::SeqCst);
        let mut batch = sled::Batch::default();
        batch.insert(b"m/clean".as_ref(), b"0".as_ref());
        batch.insert(b"m/gen".as_ref(), generation.to_be_bytes().as_ref());
        let mut interrupted = 0;
        for kv in self.db.scan_prefix(b"r/") {
            let (k, _) = kv?;
            batch.remove(k.clone());
            // The item key shares the `{session}\0{ord}` suffix.
            let mut ik = b"i/".to_vec();
            ik.extend_from_slice(&k[2..]);
            // So do the item's checkpointed text chunks: the persisted text is their sum.
            let mut ck = b"c/".to_vec();
            ck.extend_from_slice(&k[2..]);
            let mut text = String::new();
            for kv in self.db.scan_prefix(&ck) {
                let (key, chunk) = kv?;
                text.push_str(&String::from_utf8_lossy(&chunk));
                batch.remove(key);
            }
            if let Some(mut item) = self.get_json::<Item>(&ik)? {
                if matches!(item.status, ItemStatus::Streaming | ItemStatus::Running) {
                    item.status = ItemStatus::Interrupted;
                    item.text.push_str(&text);
                    batch.insert(ik, serde_json::to_vec(&item)?);
                    interrupted += 1;
                }
            }
        }
        self.db.apply_batch(batch)?;
        self.db.flush()?;
        Ok(Recovery {
            clean,
            generation,
            interrupted_items: interrupted,
        })
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    fn load_session(&self, id: &str) -> StoreResult<Option<SessionRecord>> {
        self.get_json(&session_key(id))
    }

    fn list_sessions(
        &self,
        owner: &str,
        before: Option<&SessionRecord>,
        limit: usize,
    ) -> StoreResult<(Vec<SessionRecord>, bool)> {
        let prefix = sep_key("o/", owner, b"");
        let upper = match before {
            Some(b) => owner_key(b),
            None => {
                let mut p = prefix.clone();
                p.push(0xff);
                p
            }
        };
        let mut out = Vec::new();
        let mut has_more = false;
        for kv in self.db.range(prefix.clone()..upper).rev() {
            let (k, _) = kv?;
            if !k.starts_with(&prefix) {
                break;
            }
            if out.len() == limit {
                has_more = true;
                break;
            }
            let id = String::from_utf8_lossy(&k[prefix.len() + 16..]).into_owned();
            if let Some(rec) = self.load_session(&id)? {
                out.push(rec);
            }
        }
        Ok((out, has_more))
    }

    fn delete_session(&self, record: &SessionRecord) -> StoreResult<()> {
        let mut batch = sled::Batch::default();
        for p in ["i/", "x/", "k/", "r/", "f/", "c/", "t/"] {
            self.remove_prefix(&mut batch, &sep_key(p, &record.id, b""))?;
        }
        batch.remove(owner_key(record));
        batch.remove(session_key(&record.id));
        self.db.apply_batch(batch)?;
        Ok(())
    }

    fn write(&self, b: WriteBatch) -> StoreResult<()> {
        let mut batch = sled::Batch::default();
        if let Some(rec) = &b.session {
            batch.insert(owner_key(rec), b"".as_ref());
            batch.insert(session_key(&rec.id), serde_json::to_vec(rec)?);
        }
        for si in &b.items {
            let session = items_session(&b, si)?;
            batch.insert(item_key(session, si.ord), serde_json::to_vec(&si.item)?);
            batch.insert(
                sep_key("x/", session, si.item.id.as_bytes()),
                si.ord.to_be_bytes().as_ref(),
            );
        }
        for (session, cmid, rec) in &b.idem {
            batch.insert(
                sep_key("k/", session, cmid.as_bytes()),
                serde_json::to_vec(rec)?,
            );
        }
        for (session, call_id, rec) in &b.calls {
            batch.insert(
                sep_key("t/", session, call_id.as_bytes()),
                serde_json::to_vec(rec)?,
            );
        }
        for (session, ord) in &b.streaming_started {
            batch.insert(streaming_key(session, *ord), b"".as_ref());
        }
        for (session, ord) in &b.streaming_ended {
            batch.remove(streaming_key(session, *ord));
            self.remove_prefix(&mut batch, &chunk_prefix(session, *ord))?;
        }
        for c in &b.text_chunks {
            let mut k = chunk_prefix(&c.session, c.ord);
            k.extend_from_slice(format!("{:08x}", c.n).as_bytes());
            batch.insert(k, c.text.as_bytes());
        }
        for (session, ord, id) in &b.removed_items {
            batch.remove(item_key(session, *ord));
            batch.remove(sep_key("x/", session, id.as_bytes()));
            batch.remove(sep_key("f/", session, id.as_bytes()));
        }
        for (session, id, kind) in &b.feedback {
            batch.insert(sep_key("f/", session, id.as_bytes()), kind.as_bytes());
        }
        self.db.apply_batch(batch)?;
        Ok(())
    }

    fn item_ord(&self, session: &str, item_id: &str) -> StoreResult<Option<u64>> {
        Ok(self
            .db
            .get(sep_key("x/", session, item_id.as_bytes()))?
            .map(|v| {
                let mut b = [0u8; 8];
                b.copy_from_slice(&v[..8]);
                u64::from_be_bytes(b)
            }))
    }

    fn get_item(&self, session: &str, ord: u64) -> StoreResult<Option<Item>> {
        self.get_json(&item_key(session, ord))
    }

    fn list_items(&self, session: &str, r: &ItemRange) -> StoreResult<(Vec<StoredItem>, bool)> {
        let lo = match r.after {
            Some(a) => item_key(session, a.saturating_add(1)),
            None => item_key(session, 0),
        };
        let hi = match r.before {
            Some(b) => item_key(session, b),
            None => item_key(session, u64::MAX),
        };
        let iter = self.db.range(lo..hi);
        let iter: Box<dyn Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>> = if r.descending
        {
            Box::new(iter.rev())
        } else {
            Box::new(iter)
        };
        let mut out = Vec::new();
        let mut has_more = false;
        for kv in iter {
            let (k, v) = kv?;
            if out.len() == r.limit {
                has_more = true;
                break;
            }
            let ord_hex = std::str::from_utf8(&k[k.len() - 16..]).unwrap_or("0");
            let ord = u64::from_str_radix(ord_hex, 16).unwrap_or(0);
            out.push(StoredItem {
                ord,
                item: serde_json::from_slice(&v)?,
            });
        }
        Ok((out, has_more))
    }

    fn get_call(&self, session: &str, call_id: &str) -> StoreResult<Option<CallRecord>> {
        self.get_json(&sep_key("t/", session, call_id.as_bytes()))
    }

    fn get_idem(&self, session: &str, client_msg_id: &str) -> StoreResult<Option<IdemRecord>> {
        self.get_json(&sep_key("k/", session, client_msg_id.as_bytes()))
    }

    fn feedback(&self, session: &str, item_id: &str) -> StoreResult<Option<String>> {
        let v = self.db.get(sep_key("f/", session, item_id.as_bytes()))?;
        Ok(v.map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    fn mark_clean_shutdown(&self) -> StoreResult<()> {
        self.db.insert(b"m/clean", b"1".as_ref())?;
        self.db.flush()?;
        Ok(())
    }

    fn close(&self) -> StoreResult<()> {
        self.db.flush()?;
        let worker = self.barrier.lock().expect("barrier lock").take();
        if let Some(w) = worker {
            drop(w.tx);
            let _ = w.join.join();
        }
        Ok(())
    }

    fn barrier(&self) -> BoxFuture<'static, StoreResult<()>> {
        let tx = match &*self.barrier.lock().expect("barrier lock") {
            Some(w) => w.tx.clone(),
            None => return Box::pin(async { Ok(()) }),
        };
        let (reply, wait) = oneshot::channel();
        let sent = tx.send(reply).is_ok();
        Box::pin(async move {
            if !sent {
                return Err(StoreError::Closed);
            }
            match wait.await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(StoreError::Io(std::io::Error::other(e))),
                Err(_) => Err(StoreError::Closed),
            }
        })
    }
}

/// Items in a batch belong to the batch's session record, or to the session named by their
/// streaming markers; a batch always names its session through its record.
fn items_session<'a>(b: &'a WriteBatch, _si: &StoredItem) -> StoreResult<&'a str> {
    b.session
        .as_ref()
        .map(|s| s.id.as_str())
        .ok_or_else(|| StoreError::Io(std::io::Error::other("item write without session record")))
}

#[cfg(test)]
mod tests;
