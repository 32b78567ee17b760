//! Issue 2, test 10: random interleavings of send, cancel, disconnect and resume across several
//! tabs, checked against guarantees 1 (same story everywhere) and 2 (resume without gaps or
//! duplicates) of PROTOCOL.md with a simple client-side model.

use crate::support;

use proptest::prelude::*;
use serde_json::{json, Value};
use support::{is_event, TestHub, WsClient};

#[derive(Debug, Clone)]
enum Op {
    Send(usize),
    Cancel(usize),
    Drop(usize),
    Resume(usize),
    Read(usize),
}

const TABS: usize = 3;

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..TABS).prop_map(Op::Send),
        2 => (0..TABS).prop_map(Op::Cancel),
        2 => (0..TABS).prop_map(Op::Drop),
        2 => (0..TABS).prop_map(Op::Resume),
        1 => (0..TABS).prop_map(Op::Read),
    ]
}

/// Items as a client sees them: (id, text, status), in order.
type Model = Vec<(String, String, String)>;

/// A tab: its connection (if connected), its model, its last position and what it received.
struct Tab {
    conn: Option<WsClient>,
    model: Model,
    last: Option<(String, u64)>,
    /// Every sequenced event received, over all connections.
    seen: Vec<Value>,
}

impl Tab {
    /// Apply one frame; checks that events continue the tab's position without gap or duplicate.
    fn absorb(&mut self, f: &Value) {
        if f["type"] == "snapshot" {
            support::apply_frame(&mut self.model, f);
            self.last = Some((
                f["epoch"].as_str().unwrap().into(),
                f["seq"].as_u64().unwrap(),
            ));
        } else if is_event(f) {
            let (epoch, seq) = (
                f["epoch"].as_str().unwrap().to_owned(),
                f["seq"].as_u64().unwrap(),
            );
            if let Some((le, ls)) = &self.last {
                assert_eq!(*le, epoch, "epoch is stable without a crash");
                assert_eq!(
                    seq,
                    ls + 1,
                    "no gap and no duplicate: after {ls} came {seq}"
                );
            }
            support::apply_frame(&mut self.model, f);
            self.last = Some((epoch, seq));
            self.seen.push(f.clone());
        }
    }

    async fn connect(&mut self, url: &str, session: &str) {
        let mut c = WsClient::connect(url).await;
        let since = self.last.as_ref().map(|(e, s)| (e.as_str(), *s));
        let sub = c.subscribe(session, since).await;
        self.conn = Some(c);
        if sub["resume"] == "snapshot" {
            self.read_until(|f| f["type"] == "snapshot").await;
        }
    }

    /// Read frames until the one that matches, absorbing all of them.
    async fn read_until(&mut self, pred: impl Fn(&Value) -> bool) -> Value {
        loop {
            let f = self.conn.as_mut().expect("connected").recv().await;
            self.absorb(&f);
            if pred(&f) {
                return f;
            }
        }
    }

    /// Read everything queued so far (a ping's pong comes after it).
    async fn sync(&mut self) {
        self.conn
            .as_mut()
            .unwrap()
            .send(json!({"type": "ping", "ref": "sync"}))
            .await;
        self.read_until(|f| f["type"] == "pong").await;
    }
}

async fn run_case(ops: Vec<Op>) {
    let hub = TestHub::start_with(|c| {
        c.scripted_deltas = 6;
        c.scripted_delay_ms = 3;
    })
    .await;
    let url = hub.ws_url();
    let s = hub.create_session().await;
    let mut obs = Tab {
        conn: None,
        model: Vec::new(),
        last: None,
        seen: Vec::new(),
    };
    obs.connect(&url, &s).await;
    let mut tabs: Vec<Tab> = Vec::new();
    for _ in 0..TABS {
        let mut t = Tab {
            conn: None,
            model: Vec::new(),
            last: None,
            seen: Vec::new(),
        };
        t.connect(&url, &s).await;
        tabs.push(t);
    }
    let mut sent = 0usize;
    for op in ops {
        match op {
            Op::Send(i) if tabs[i].conn.is_some() => {
                sent += 1;
                let cmid = format!("m{sent}");
                let f = json!({"type": "send", "session": s, "client_msg_id": cmid, "text": format!("message {sent}"), "ref": cmid});
                tabs[i].conn.as_mut().unwrap().send(f).await;
                let reply = tabs[i]
                    .read_until(|f| f["type"] == "ack" || f["type"] == "error")
                    .await;
                assert_eq!(reply["type"], "ack", "{reply}");
            }
            Op::Cancel(i) if tabs[i].conn.is_some() => {
                tabs[i]
                    .conn
                    .as_mut()
                    .unwrap()
                    .send(json!({"type": "cancel", "session": s}))
                    .await;
                tabs[i].sync().await;
            }
            Op::Drop(i) => tabs[i].conn = None,
            Op::Resume(i) if tabs[i].conn.is_none() => tabs[i].connect(&url, &s).await,
            Op::Read(i) if tabs[i].conn.is_some() => tabs[i].sync().await,
            _ => {}
        }
    }
    // Every message's run ends with exactly one terminal event; wait for all of them.
    let done = |t: &Tab| {
        let messages = t.seen.iter().filter(|e| e["type"] == "message").count();
        let ends = t
            .seen
            .iter()
            .filter(|e| {
                e["type"]
                    .as_str()
                    .is_some_and(|k| matches!(k, "run.completed" | "run.cancelled" | "run.failed"))
            })
            .count();
        messages == sent && ends == sent
    };
    while !done(&obs) {
        let f = obs.conn.as_mut().unwrap().recv().await;
        obs.absorb(&f);
    }
    let head = obs.last.clone().unwrap().1;
    for t in tabs.iter_mut() {
        if t.conn.is_none() {
            t.connect(&url, &s).await;
        }
        while t.last.as_ref().map(|l| l.1) != Some(head) {
            let f = t.conn.as_mut().unwrap().recv().await;
            t.absorb(&f);
        }
    }
    // Guarantee 1: every event a tab received is the observer's event at that seq, byte for byte.
    for t in &tabs {
        for e in &t.seen {
            let seq = e["seq"].as_u64().unwrap() as usize;
            assert_eq!(*e, obs.seen[seq - 1], "same event at seq {seq}");
        }
    }
    // Guarantee 2: whatever each tab missed, its state is the state of a tab that never left,
    // which is also what the store holds.
    let stored: Model = hub
        .items(&s)
        .await
        .iter()
        .map(|i| {
            (
                i["id"].as_str().unwrap().into(),
                i["text"].as_str().unwrap().into(),
                i["status"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(obs.model, stored);
    for t in &tabs {
        assert_eq!(t.model, obs.model);
    }
    // Each finished reply equals the concatenation of its deltas.
    for e in obs.seen.iter().filter(|e| {
        e["type"] == "run.completed" || (e["type"] == "run.cancelled" && e["item"].is_object())
    }) {
        let id = &e["item"]["id"];
        let deltas: String = obs
            .seen
            .iter()
            .filter(|d| d["type"] == "run.delta" && d["item_id"] == *id)
            .map(|d| d["text"].as_str().unwrap())
            .collect();
        assert_eq!(e["item"]["text"].as_str().unwrap(), deltas);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
    fn random_interleavings_keep_guarantees_1_and_2(ops in prop::collection::vec(op(), 1..16)) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(run_case(ops));
    }
}
