//! What the clients saw, across every connection and every restart, and the checks against it:
//! one event per (session, epoch, seq), acknowledged messages and finished items durable
//! exactly once, resumes after a crash answered with a snapshot under a new epoch.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::Value;

/// At most this many violations are kept word for word (all are counted).
const KEEP_VIOLATIONS: usize = 50;

/// An acknowledged message.
struct Acked {
    item_id: String,
    text: String,
}

/// An item some client saw finished (a user message's `message` event, a terminal event or
/// `item.completed`).
struct Finished {
    session: String,
    text: String,
    status: String,
    assistant: bool,
}

/// Everything observed, shared by the tabs of a run (behind a mutex, never held across I/O).
#[derive(Default)]
pub(crate) struct Ledger {
    /// (session, epoch, seq) to the event as first received.
    events: HashMap<(String, String, u64), Value>,
    /// (session, client_msg_id) to the message its first ack named.
    acked: HashMap<(String, String), Acked>,
    /// Item id to what a client saw it finish as.
    finished: HashMap<String, Finished>,
    /// Item id to whether a tab saw its `run.started`, and its deltas' texts by seq.
    streamed: HashMap<String, (bool, BTreeMap<u64, String>)>,
    /// Epochs of earlier lives of the hub, per session.
    old_epochs: HashMap<String, HashSet<String>>,
    /// The epoch of each session in the current life of the hub.
    epoch_now: HashMap<String, String>,
    pub(crate) events_compared: u64,
    pub(crate) retried_sends: u64,
    pub(crate) retry_duplicates: u64,
    pub(crate) acked_checks: u64,
    pub(crate) finished_checks: u64,
    pub(crate) interrupted_checks: u64,
    pub(crate) resumes: BTreeMap<String, u64>,
    pub(crate) violation_count: u64,
    pub(crate) violations: Vec<String>,
}

impl Ledger {
    pub(crate) fn violation(&mut self, what: String) {
        self.violation_count += 1;
        if self.violations.len() < KEEP_VIOLATIONS {
            self.violations.push(what);
        }
    }

    pub(crate) fn acked_count(&self) -> usize {
        self.acked.len()
    }

    pub(crate) fn finished_count(&self) -> usize {
        self.finished.len()
    }

    pub(crate) fn finished_replies(&self) -> usize {
        self.finished.values().filter(|f| f.assistant).count()
    }

    pub(crate) fn distinct_events(&self) -> usize {
        self.events.len()
    }

    /// A sequenced event from any tab: the same (epoch, seq) must always be the same event.
    pub(crate) fn event(&mut self, session: &str, v: &Value) {
        let epoch = v["epoch"].as_str().unwrap_or_default().to_owned();
        let seq = v["seq"].as_u64().unwrap_or_default();
        self.events_compared += 1;
        let key = (session.to_owned(), epoch, seq);
        match self.events.get(&key) {
            Some(first) if first != v => {
                let msg = format!(
                    "({}, {}) names two events in session {}: {first} and {v}",
                    key.1, key.2, key.0
                );
                self.violation(msg);
            }
            Some(_) => {}
            None => {
                self.events.insert(key, v.clone());
                self.stream(v);
            }
        }
        let finished_item = match v["type"].as_str() {
            Some(
                "message" | "run.completed" | "run.cancelled" | "run.failed" | "item.completed",
            ) => v["item"].as_object(),
            _ => None,
        };
        if let Some(item) = finished_item {
            let id = item["id"].as_str().unwrap_or_default().to_owned();
            let f = Finished {
                session: session.to_owned(),
                text: item["text"].as_str().unwrap_or_default().to_owned(),
                status: item["status"].as_str().unwrap_or_default().to_owned(),
                assistant: item["role"] == "assistant",
            };
            if let Some(old) = self.finished.get(&id) {
                if old.text != f.text || old.status != f.status {
                    let msg = format!("item {id} finished twice, differently: {v}");
                    self.violation(msg);
                }
            } else {
                self.finished.insert(id, f);
            }
        }
    }

    /// A new event's share of a streaming reply, for replies seen from their start: deltas by
    /// seq (each event counts once, whichever tab got it first; a tab that joined with a
    /// snapshot may get a later delta before another tab gets an earlier one).
    fn stream(&mut self, v: &Value) {
        let id = v["item_id"].as_str().unwrap_or_default();
        match v["type"].as_str() {
            Some("run.started") => {
                self.streamed.entry(id.to_owned()).or_default().0 = true;
            }
            Some("run.delta") => {
                let text = v["text"].as_str().unwrap_or_default().to_owned();
                let seq = v["seq"].as_u64().unwrap_or_default();
                self.streamed
                    .entry(id.to_owned())
                    .or_default()
                    .1
                    .insert(seq, text);
            }
            _ => {}
        }
    }

    /// An ack for (session, client_msg_id) sent with `text`; `retry` when the send repeats one
    /// whose ack was lost in a crash.
    pub(crate) fn ack(&mut self, session: &str, cmid: &str, text: &str, ack: &Value, retry: bool) {
        let item_id = ack["item_id"].as_str().unwrap_or_default().to_owned();
        if retry {
            self.retried_sends += 1;
            if ack["duplicate"] == true {
                self.retry_duplicates += 1;
            }
        }
        let key = (session.to_owned(), cmid.to_owned());
        match self.acked.get(&key) {
            Some(a) if a.item_id != item_id => {
                let msg = format!(
                    "{cmid} in {session} acknowledged as item {} and later as {ack}",
                    a.item_id
                );
                self.violation(msg);
            }
            Some(_) if ack["duplicate"] != true => {
                let msg =
                    format!("{cmid} in {session} acknowledged again without duplicate: {ack}");
                self.violation(msg);
            }
            Some(_) => {}
            None => {
                let text = text.to_owned();
                self.acked.insert(key, Acked { item_id, text });
            }
        }
    }

    /// A (re)subscribe answered with `resume` under `epoch`, by a tab that held `since`.
    pub(crate) fn resume(
        &mut self,
        session: &str,
        since: Option<&(String, u64)>,
        resume: &str,
        epoch: &str,
    ) {
        let old = self.old_epochs.get(session);
        let outcome = match since {
            None if resume == "snapshot" => "first join: snapshot",
            None => "first join: NOT a snapshot",
            Some((e, _)) if e == epoch => "resume in the same epoch (across a crash)",
            Some(_) if resume != "snapshot" => "resume from an old epoch: NOT a snapshot",
            Some(_) if old.is_some_and(|o| o.contains(epoch)) => {
                "resume: snapshot under an OLD epoch"
            }
            Some(_) => "resume after a crash: snapshot under a new epoch",
        };
        *self.resumes.entry(outcome.to_owned()).or_default() += 1;
        if outcome.contains("NOT") || outcome.contains("OLD") || outcome.contains("same") {
            let msg =
                format!("session {session}: {outcome} (since {since:?}, got {resume} in {epoch})");
            self.violation(msg);
        }
        let now = self
            .epoch_now
            .entry(session.to_owned())
            .or_insert_with(|| epoch.to_owned());
        if now != epoch {
            let msg =
                format!("session {session}: two epochs in one life of the hub: {now} and {epoch}");
            self.violation(msg);
        }
    }

    /// The hub was killed: this life's epochs become old ones.
    pub(crate) fn crashed(&mut self) {
        for (s, e) in self.epoch_now.drain() {
            self.old_epochs.entry(s).or_default().insert(e);
        }
    }

    /// Compare one session's stored items (oldest first, all pages) with what clients saw.
    pub(crate) fn check_items(&mut self, session: &str, items: &[Value], when: &str) {
        let by_id: HashMap<&str, &Value> = items
            .iter()
            .filter_map(|i| Some((i["id"].as_str()?, i)))
            .collect();
        let mut user_texts: HashMap<&str, usize> = HashMap::new();
        for i in items.iter().filter(|i| i["role"] == "user") {
            *user_texts
                .entry(i["text"].as_str().unwrap_or_default())
                .or_default() += 1;
        }
        let mut bad = Vec::new();
        for ((s, cmid), a) in &self.acked {
            if s != session {
                continue;
            }
            self.acked_checks += 1;
            let stored = by_id.get(a.item_id.as_str());
            let count = user_texts.get(a.text.as_str()).copied().unwrap_or(0);
            if stored.is_none_or(|i| i["text"] != a.text.as_str()) || count != 1 {
                bad.push(format!(
                    "{when}: acknowledged {cmid} (item {}) in {s}: stored {}, {count} copies",
                    a.item_id,
                    stored.map_or("nothing".to_owned(), |i| i.to_string())
                ));
            }
        }
        for (id, f) in &self.finished {
            if f.session != session {
                continue;
            }
            self.finished_checks += 1;
            let stored = by_id.get(id.as_str());
            let same = stored
                .is_some_and(|i| i["text"] == f.text.as_str() && i["status"] == f.status.as_str());
            if !same {
                bad.push(format!(
                    "{when}: finished item {id} in {session} ({} chars, {}): stored {}",
                    f.text.chars().count(),
                    f.status,
                    stored.map_or("nothing".to_owned(), |i| i.to_string())
                ));
            }
        }
        // A reply cut by a crash keeps its checkpointed text: what the clients saw streamed and
        // what was stored agree (the checkpoint may be ahead of, or behind, the last delta sent).
        for i in items.iter().filter(|i| i["status"] == "interrupted") {
            let id = i["id"].as_str().unwrap_or_default();
            let Some((true, deltas)) = self.streamed.get(id) else {
                continue;
            };
            let seen: String = deltas.values().map(String::as_str).collect();
            self.interrupted_checks += 1;
            let stored = i["text"].as_str().unwrap_or_default();
            if !(seen.starts_with(stored) || stored.starts_with(seen.as_str())) {
                bad.push(format!(
                    "{when}: interrupted item {id} in {session}: stored {stored:?}, streamed {seen:?}"
                ));
            }
        }
        for (text, n) in user_texts.iter().filter(|(_, n)| **n > 1) {
            bad.push(format!(
                "{when}: user message {text:?} stored {n} times in {session}"
            ));
        }
        for b in bad {
            self.violation(b);
        }
    }
}
