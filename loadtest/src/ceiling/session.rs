//! A ceiling session: sequenced events fanned out with `try_send`, a replay tail, and one
//! scripted run at a time (later sends queue behind it). State sits under one std mutex that
//! is never held across an await.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, Notify};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::{unix_ms, CeilingConfig};
use crate::wire::{json_str, unix_us};

/// One frame on its way to a connection. `seq` and `kind` let the SSE writer add its
/// `id:`/`event:` lines; direct replies have seq 0.
#[derive(Clone)]
pub struct Out {
    pub seq: u64,
    pub kind: &'static str,
    pub json: Utf8Bytes,
}

/// What the session and the connection's task share: the cut signal for a slow consumer.
#[derive(Default)]
pub struct ConnShared {
    pub overflow: AtomicBool,
    pub notify: Notify,
}

/// A subscriber: the sending half of a connection's bounded queue (the receiver is the
/// connection task).
pub struct Sub {
    pub conn: u64,
    pub tx: mpsc::Sender<Out>,
    pub shared: Arc<ConnShared>,
}

struct Inner {
    seq: u64,
    subs: Vec<Sub>,
    tail: VecDeque<Out>,
    running: bool,
    queued: VecDeque<(String, String)>,
    acks: HashMap<String, (String, u64)>,
    next_item: u64,
}

pub struct Session {
    pub id: Arc<str>,
    pub epoch: Arc<str>,
    tail_cap: usize,
    inner: Mutex<Inner>,
}

/// The answer to a subscribe: replay (the events after `since`) or a snapshot.
pub struct Subscribed {
    pub head: u64,
    pub replay: Option<Vec<Out>>,
}

impl Session {
    pub fn new(id: String, tail_cap: usize) -> Arc<Self> {
        Arc::new(Session {
            id: id.into(),
            epoch: format!("e{}", unix_us()).into(),
            tail_cap,
            inner: Mutex::new(Inner {
                seq: 0,
                subs: Vec::new(),
                tail: VecDeque::new(),
                running: false,
                queued: VecDeque::new(),
                acks: HashMap::new(),
                next_item: 1,
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock would be a bug; keep serving with the data as is.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Register `sub`; with `since` in the tail, also return the events to replay. Done under
    /// the lock so no live event falls between the replay and the subscription.
    pub fn subscribe(&self, sub: Sub, since: Option<(&str, u64)>) -> Subscribed {
        let mut g = self.lock();
        g.subs.retain(|s| s.conn != sub.conn);
        let head = g.seq;
        let first = g.tail.front().map(|o| o.seq).unwrap_or(head + 1);
        let replay = since.and_then(|(epoch, seq)| {
            (epoch == &*self.epoch && seq <= head && seq + 1 >= first).then(|| {
                g.tail
                    .iter()
                    .filter(|o| o.seq > seq)
                    .cloned()
                    .collect::<Vec<_>>()
            })
        });
        g.subs.push(sub);
        Subscribed { head, replay }
    }

    pub fn unsubscribe(&self, conn: u64) {
        self.lock().subs.retain(|s| s.conn != conn);
    }

    /// Sequence one event and push it to every subscriber; cut those whose queue is full.
    fn emit(&self, g: &mut Inner, kind: &'static str, body: &str) -> u64 {
        g.seq += 1;
        let seq = g.seq;
        let json = format!(
            r#"{{"type":"{kind}","session":{},"epoch":{},"seq":{seq},"ts":{},{body}}}"#,
            json_str(&self.id),
            json_str(&self.epoch),
            unix_ms()
        );
        let out = Out {
            seq,
            kind,
            json: Utf8Bytes::from(json),
        };
        g.subs.retain(|s| match s.tx.try_send(out.clone()) {
            Ok(()) => true,
            Err(_) => {
                s.shared.overflow.store(true, Ordering::Release);
                s.shared.notify.notify_one();
                false
            }
        });
        if g.tail.len() >= self.tail_cap {
            g.tail.pop_front();
        }
        g.tail.push_back(out);
        seq
    }

    /// Store a user message and start or queue its run. Returns the ack frame's fields
    /// (item id, seq, duplicate).
    pub fn send(
        self: &Arc<Self>,
        cfg: &CeilingConfig,
        client_msg_id: &str,
        text: &str,
    ) -> (String, u64, bool) {
        let mut g = self.lock();
        if let Some((item, seq)) = g.acks.get(client_msg_id) {
            return (item.clone(), *seq, true);
        }
        let item = format!("i{}", g.next_item);
        g.next_item += 1;
        let body = format!(
            r#""item":{{"id":"{item}","role":"user","text":{},"client_msg_id":{},"status":"complete","created_at":"1970-01-01T00:00:00Z"}}"#,
            json_str(text),
            json_str(client_msg_id)
        );
        let seq = self.emit(&mut g, "message", &body);
        g.acks.insert(client_msg_id.to_owned(), (item.clone(), seq));
        if g.running {
            let run = format!("r{item}");
            self.emit(
                &mut g,
                "run.queued",
                &format!(r#""run_id":"{run}","reply_to":"{item}""#),
            );
            g.queued.push_back((item.clone(), text.to_owned()));
        } else {
            g.running = true;
            drop(g);
            self.clone()
                .start_run(cfg.clone(), item.clone(), text.to_owned());
        }
        (item, seq, false)
    }

    fn start_run(self: Arc<Self>, cfg: CeilingConfig, reply_to: String, text: String) {
        tokio::spawn(async move {
            let mut reply_to = reply_to;
            let mut text = text;
            // One run after another while messages are queued; bounded by the messages sent.
            loop {
                self.run(&cfg, &reply_to, &text).await;
                let mut g = self.lock();
                match g.queued.pop_front() {
                    Some((r, t)) => {
                        reply_to = r;
                        text = t;
                    }
                    None => {
                        g.running = false;
                        return;
                    }
                }
            }
        });
    }

    /// The scripted agent's reply, with each delta stamped when it is produced.
    async fn run(&self, cfg: &CeilingConfig, reply_to: &str, text: &str) {
        let run_id = format!("r{reply_to}");
        let item_id = format!("a{reply_to}");
        let words: Vec<&str> = std::iter::once("Echo:")
            .chain(text.split_whitespace().take(64))
            .collect();
        {
            let mut g = self.lock();
            let body =
                format!(r#""run_id":"{run_id}","item_id":"{item_id}","reply_to":"{reply_to}""#);
            self.emit(&mut g, "run.started", &body);
        }
        let mut full = String::new();
        let mut tick = tokio::time::interval(cfg.delay);
        for i in 0..cfg.deltas {
            tick.tick().await;
            let delta = format!("{} {} ", unix_us(), words[i % words.len()]);
            full.push_str(&delta);
            let body = format!(
                r#""run_id":"{run_id}","item_id":"{item_id}","text":{}"#,
                json_str(&delta)
            );
            let mut g = self.lock();
            self.emit(&mut g, "run.delta", &body);
        }
        let body = format!(
            r#""run_id":"{run_id}","item":{{"id":"{item_id}","role":"assistant","text":{},"status":"complete"}}"#,
            json_str(&full)
        );
        let mut g = self.lock();
        self.emit(&mut g, "run.completed", &body);
    }
}
