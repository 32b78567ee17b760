//! The replay tail: a session's most recent events, for resume (PROTOCOL.md: "The replay tail
//! holds at least the last 1024 events (configurable) while the session is loaded").
//!
//! It has two forms. While a session is busy the tail is a queue of [`Event`]s, each with its
//! body (the transports render it) and its JSON (sent as is). Once the session is quiet the
//! actor [`Tail::pack`]s it: the events' JSON, one per line, compressed with LZ4 into one
//! buffer, and nothing else. A packed 200-delta reply takes a few kB instead of about 150 kB of
//! structs, strings and `Arc`s. The next event, or a subscribe, [`Tail::unpack`]s it: each
//! line is parsed back into its body, and the JSON bytes are those that were sent, so "the
//! same JSON object in every replay" still holds.
//!
//! The count bound (`--replay-tail`) is the protocol's floor and is never cut below. The byte
//! figures ([`Tail::bytes`]) are what the session's and the hub's memory budgets weigh.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;

use super::event::{Event, EventBody};

/// Fixed cost counted for each loaded session besides its tail (actor task, channel, state,
/// registry entry): unloading a quiet session frees 12-19 kB of RSS, ~2.5 kB of it its packed
/// tail (loadtest/results/memory-20261205.md).
pub(crate) const SESSION_OVERHEAD_BYTES: usize = 12 * 1024;

/// The events of a quiet session: their JSON, newline-separated (serde_json escapes newlines
/// inside strings, so a raw `\n` only ever separates events), LZ4-compressed.
struct Packed {
    /// Seq of the first event; the others follow without a gap (one epoch per tail).
    first_seq: u64,
    count: usize,
    /// Uncompressed length, for the decoder.
    raw_len: usize,
    data: Box<[u8]>,
}

pub(crate) struct Tail {
    events: VecDeque<Arc<Event>>,
    packed: Option<Packed>,
    /// Most events kept.
    max_events: usize,
    /// JSON bytes of `events`.
    json_bytes: usize,
}

impl Tail {
    pub(crate) fn new(max_events: usize) -> Self {
        Tail {
            events: VecDeque::new(),
            packed: None,
            max_events,
            json_bytes: 0,
        }
    }

    /// Keep `ev` as the newest event, dropping the oldest beyond the count bound.
    pub(crate) fn push(&mut self, ev: Arc<Event>) {
        self.unpack();
        self.json_bytes += ev.json.len();
        self.events.push_back(ev);
        while self.events.len() > self.max_events {
            if let Some(old) = self.events.pop_front() {
                self.json_bytes -= old.json.len();
            }
        }
    }

    /// Events held.
    pub(crate) fn len(&self) -> usize {
        self.packed.as_ref().map_or(self.events.len(), |p| p.count)
    }

    /// Seq of the oldest event held.
    pub(crate) fn oldest_seq(&self) -> Option<u64> {
        match &self.packed {
            Some(p) => Some(p.first_seq),
            None => self.events.front().map(|e| e.seq),
        }
    }

    pub(crate) fn is_packed(&self) -> bool {
        self.packed.is_some()
    }

    /// Bytes the tail's contents take: the compressed buffer when packed, else the events'
    /// JSON (their structs take about as much again; this is the figure the budgets weigh).
    pub(crate) fn bytes(&self) -> usize {
        match &self.packed {
            Some(p) => p.data.len(),
            None => self.json_bytes,
        }
    }

    /// Compress the events into one buffer and drop their structs. No-op when empty or packed.
    pub(crate) fn pack(&mut self) {
        if self.packed.is_some() || self.events.is_empty() {
            return;
        }
        let mut raw = Vec::with_capacity(self.json_bytes + self.events.len());
        for e in &self.events {
            raw.extend_from_slice(&e.json);
            raw.push(b'\n');
        }
        let data = lz4_flex::block::compress(&raw).into_boxed_slice();
        self.packed = Some(Packed {
            first_seq: self.events.front().map_or(0, |e| e.seq),
            count: self.events.len(),
            raw_len: raw.len(),
            data,
        });
        self.events = VecDeque::new();
    }

    /// Bring the events back from the packed buffer. No-op when not packed.
    pub(crate) fn unpack(&mut self) {
        let Some(p) = self.packed.take() else {
            return;
        };
        let events = decode(&p);
        self.json_bytes = events.iter().map(|e| e.json.len()).sum();
        self.events = events;
    }

    /// The events after `after`, oldest first (decoded when packed).
    pub(crate) fn after(&self, after: u64) -> Vec<Arc<Event>> {
        match &self.packed {
            Some(p) => decode(p).into_iter().filter(|e| e.seq > after).collect(),
            None => self
                .events
                .iter()
                .filter(|e| e.seq > after)
                .cloned()
                .collect(),
        }
    }

    /// JSON bytes of the events after `after`.
    pub(crate) fn bytes_after(&self, after: u64) -> usize {
        match &self.packed {
            Some(p) => decode(p)
                .iter()
                .filter(|e| e.seq > after)
                .map(|e| e.json.len())
                .sum(),
            None => self
                .events
                .iter()
                .filter(|e| e.seq > after)
                .map(|e| e.json.len())
                .sum(),
        }
    }
}

/// The events of a packed buffer. The buffer was made here from events this process
/// serialised, so a failure is a bug; rather than take the session down (or serve a gap) the
/// tail is then empty, and resumes get a snapshot.
fn decode(p: &Packed) -> VecDeque<Arc<Event>> {
    match try_decode(p) {
        Ok(events) if events.len() == p.count => events,
        Ok(events) => {
            tracing::error!(
                want = p.count,
                got = events.len(),
                "packed replay tail lost events"
            );
            VecDeque::new()
        }
        Err(e) => {
            tracing::error!(error = %e, "packed replay tail does not decode");
            VecDeque::new()
        }
    }
}

fn try_decode(p: &Packed) -> Result<VecDeque<Arc<Event>>, String> {
    let raw = lz4_flex::block::decompress(&p.data, p.raw_len).map_err(|e| e.to_string())?;
    let raw = Bytes::from(raw);
    let mut out = VecDeque::with_capacity(p.count);
    let mut start = 0;
    for (i, end) in newlines(&raw).enumerate() {
        let json = raw.slice(start..end);
        start = end + 1;
        let ev = revive(json).map_err(|e| e.to_string())?;
        if ev.seq != p.first_seq + i as u64 {
            return Err(format!("seq {} at place {i}", ev.seq));
        }
        out.push_back(Arc::new(ev));
    }
    Ok(out)
}

/// Offsets of the newlines in `raw`.
fn newlines(raw: &[u8]) -> impl Iterator<Item = usize> + '_ {
    raw.iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .map(|(i, _)| i)
}

/// An event from its JSON: the body and place are read back, the bytes kept as they were.
fn revive(json: Bytes) -> Result<Event, serde_json::Error> {
    #[derive(serde::Deserialize)]
    struct Place {
        session: String,
        epoch: String,
        seq: u64,
        ts: i64,
    }
    let place: Place = serde_json::from_slice(&json)?;
    let body: EventBody = serde_json::from_slice(&json)?;
    Ok(Event {
        session: place.session,
        epoch: place.epoch,
        seq: place.seq,
        ts: place.ts,
        body,
        json,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Executor, Item, ItemStatus, Role, ToolCall};

    fn delta(seq: u64, text: &str) -> Arc<Event> {
        Arc::new(Event::new(
            "S1",
            "E1",
            seq,
            1_700_000_000_000 + seq as i64,
            EventBody::RunDelta {
                run_id: "R1".into(),
                item_id: "A1".into(),
                text: text.into(),
            },
        ))
    }

    fn completed(seq: u64) -> Arc<Event> {
        let item = Item {
            id: "A1".into(),
            role: Role::Assistant,
            text: "line one\nline \"two\"".into(),
            status: ItemStatus::Complete,
            created_at: "2026-12-05T07:00:00Z".into(),
            client_msg_id: None,
            run_id: Some("R1".into()),
            reply_to: Some("U1".into()),
            finish_reason: None,
            usage: None,
            error_code: None,
            context: None,
            context_sources: None,
            model: None,
            tools: None,
            call: None,
            answer_id: None,
        };
        Arc::new(Event::new(
            "S1",
            "E1",
            seq,
            1_700_000_000_000,
            EventBody::RunCompleted {
                run_id: "R1".into(),
                item,
                pending_tool_calls: vec![],
            },
        ))
    }

    fn filled(n: u64) -> (Tail, Vec<Arc<Event>>) {
        let mut t = Tail::new(1024);
        let mut evs: Vec<Arc<Event>> = (1..n).map(|s| delta(s, &format!("word {s} "))).collect();
        evs.push(completed(n));
        for e in &evs {
            t.push(e.clone());
        }
        (t, evs)
    }

    #[test]
    fn a_packed_tail_replays_the_same_bytes_and_bodies() {
        let (mut t, evs) = filled(201);
        let before = t.bytes();
        t.pack();
        assert!(t.is_packed());
        assert!(t.bytes() * 4 < before, "{} packed vs {before}", t.bytes());
        assert_eq!((t.len(), t.oldest_seq()), (201, Some(1)));
        let back = t.after(150);
        assert_eq!(back.len(), 51);
        for (b, e) in back.iter().zip(&evs[150..]) {
            assert_eq!(b.json, e.json);
            assert_eq!(b.body, e.body);
            assert_eq!((b.seq, b.ts, &b.epoch), (e.seq, e.ts, &e.epoch));
        }
        assert_eq!(
            t.bytes_after(150),
            evs[150..].iter().map(|e| e.json.len()).sum::<usize>()
        );
        t.unpack();
        assert!(!t.is_packed());
        assert_eq!(t.bytes(), before);
    }

    #[test]
    fn tool_events_come_back_whole() {
        let mut item = Item::new(
            "T1".into(),
            Role::Tool,
            String::new(),
            ItemStatus::Pending,
            "2026-12-05T07:00:00Z".into(),
        );
        item.run_id = Some("R1".into());
        item.call = Some(ToolCall {
            parent_id: "A1".into(),
            call_id: "call_1".into(),
            name: "get_location".into(),
            arguments: "{\"precise\":true}".into(),
            executor: Executor::Client,
            output: Some("line\nbreak".into()),
        });
        let bodies = vec![
            EventBody::ToolCalled {
                run_id: "R1".into(),
                item: item.clone(),
            },
            EventBody::ToolDelta {
                run_id: "R1".into(),
                item_id: "T1".into(),
                arguments: "{\"a\":".into(),
            },
            EventBody::RunCancelled {
                run_id: "R2".into(),
                reply_to: Some("U2".into()),
                item: None,
            },
            EventBody::SessionUpdated { title: None },
            EventBody::ItemsRemoved {
                item_ids: vec!["U1".into()],
            },
        ];
        let mut t = Tail::new(16);
        let evs: Vec<Arc<Event>> = bodies
            .into_iter()
            .enumerate()
            .map(|(i, b)| Arc::new(Event::new("S1", "E1", i as u64 + 1, 7, b)))
            .collect();
        for e in &evs {
            t.push(e.clone());
        }
        t.pack();
        let back = t.after(0);
        assert_eq!(back.len(), evs.len());
        for (b, e) in back.iter().zip(&evs) {
            assert_eq!((&b.body, &b.json), (&e.body, &e.json));
        }
    }

    #[test]
    fn a_tail_that_does_not_decode_is_dropped_not_served_with_a_gap() {
        let (mut t, _) = filled(10);
        t.pack();
        if let Some(p) = t.packed.as_mut() {
            p.first_seq = 3;
        }
        assert!(t.after(0).is_empty());
        t.unpack();
        assert_eq!((t.len(), t.oldest_seq()), (0, None));
    }

    #[test]
    fn pushing_onto_a_packed_tail_unpacks_it_and_keeps_the_count_bound() {
        let mut t = Tail::new(4);
        for s in 1..=4 {
            t.push(delta(s, "x"));
        }
        t.pack();
        t.push(delta(5, "y"));
        assert!(!t.is_packed());
        assert_eq!((t.len(), t.oldest_seq()), (4, Some(2)));
        let seqs: Vec<u64> = t.after(0).iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![2, 3, 4, 5]);
    }

    #[test]
    fn the_default_floor_of_events_is_kept_whatever_their_size() {
        let mut t = Tail::new(1024);
        let big = "z".repeat(4000);
        for s in 1..=1100 {
            t.push(delta(s, &big));
        }
        t.pack();
        assert_eq!((t.len(), t.oldest_seq()), (1024, Some(77)));
        t.unpack();
        assert_eq!(t.after(76).len(), 1024);
    }
}
