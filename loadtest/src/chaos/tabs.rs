//! The tabs under chaos: WebSocket and SSE clients that resume with their last (epoch, seq),
//! first repeat the sends whose ack a crash swallowed (same `client_msg_id`), then send one
//! message at a time while the scripted replies stream, until the hub dies under them.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::time::{sleep_until, timeout, Instant};
use tokio_tungstenite::tungstenite::Message;

use super::ledger::Ledger;
use super::Rng;
use crate::http::{self, SseReader};
use crate::wire;

/// Any connect, subscribe or single read during the round.
const IO_TIMEOUT: Duration = Duration::from_secs(20);

/// One tab, across every life of the hub.
#[derive(Debug, Clone)]
pub(crate) struct Tab {
    pub(crate) name: String,
    pub(crate) session: String,
    pub(crate) sse: bool,
    /// The last event (or snapshot position) it holds.
    pub(crate) last: Option<(String, u64)>,
    /// Sends without an ack yet: (client_msg_id, text).
    pub(crate) pending: Vec<(String, String)>,
    /// The last acknowledged send, repeated after each restart: it must come back as the
    /// same item with `duplicate: true`.
    pub(crate) last_acked: Option<(String, String)>,
    pub(crate) sent: u64,
}

/// What every tab of one round shares.
#[derive(Clone)]
pub(crate) struct Round {
    pub(crate) addr: SocketAddr,
    pub(crate) ledger: Arc<Mutex<Ledger>>,
    /// One message per tab once it is subscribed (or gave up): the kill clock starts after all.
    pub(crate) ready: mpsc::Sender<()>,
    /// The last round: resume, repeat the lost sends, then leave.
    pub(crate) last_round: bool,
    pub(crate) think_ms: (u64, u64),
    /// Set just before the SIGKILL: a connection that ends before it was cut by the hub.
    pub(crate) killed: Arc<AtomicBool>,
}

impl Round {
    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Per-connection view: the position events must continue from.
struct Conn<'a> {
    tab: &'a mut Tab,
    round: &'a Round,
    rng: Rng,
    /// When to send the next message (None while one is in flight).
    next_send: Option<Instant>,
    /// Whether this tab told the round it is subscribed (or gave up).
    signalled: bool,
}

impl Conn<'_> {
    /// A sequenced event: compared in the ledger, and it must follow the connection's position.
    fn on_event(&mut self, v: &Value) {
        let epoch = v["epoch"].as_str().unwrap_or_default().to_owned();
        let seq = v["seq"].as_u64().unwrap_or_default();
        let mut l = self.round.ledger();
        if let Some((e, s)) = &self.tab.last {
            if *e != epoch || seq != s + 1 {
                l.violation(format!(
                    "{}: event ({epoch}, {seq}) after ({e}, {s}) on one connection",
                    self.tab.name
                ));
            }
        }
        l.event(&self.tab.session, v);
        self.tab.last = Some((epoch, seq));
    }

    fn on_ack(&mut self, cmid: &str, ack: &Value, retry: bool) {
        let Some(pos) = self.tab.pending.iter().position(|p| p.0 == cmid) else {
            return;
        };
        let (cmid, text) = self.tab.pending.remove(pos);
        self.round
            .ledger()
            .ack(&self.tab.session, &cmid, &text, ack, retry);
        self.tab.last_acked = Some((cmid, text));
        if self.tab.pending.is_empty() && !self.round.last_round {
            let (lo, hi) = self.round.think_ms;
            self.next_send = Some(Instant::now() + Duration::from_millis(self.rng.range(lo, hi)));
        }
    }

    fn on_error(&mut self, v: &Value) {
        let msg = format!("{}: error reply {v}", self.tab.name);
        self.round.ledger().violation(msg);
        if let Some(r) = v["ref"].as_str() {
            self.tab.pending.retain(|p| p.0 != r);
        }
    }

    /// A new message: registered as pending before it leaves.
    fn new_message(&mut self) -> (String, String) {
        self.next_send = None;
        self.tab.sent += 1;
        let cmid = format!("{}-m{}", self.tab.name, self.tab.sent);
        let text = format!("chaos {} message {}", self.tab.name, self.tab.sent);
        self.tab.pending.push((cmid.clone(), text.clone()));
        (cmid, text)
    }

    /// The sends to repeat after a restart: those a crash left unanswered, and the last
    /// acknowledged one (registered as pending again, so its ack is awaited and checked).
    fn repeats(&mut self) -> Vec<(String, String)> {
        if let Some(a) = self.tab.last_acked.take() {
            if !self.tab.pending.contains(&a) {
                self.tab.pending.push(a);
            }
        }
        self.tab.pending.clone()
    }

    /// Leave the last round once every lost send was repeated and acknowledged.
    fn done(&self) -> bool {
        self.round.last_round && self.signalled && self.tab.pending.is_empty()
    }

    fn resumed(&mut self, since: Option<(String, u64)>, resume: &str, epoch: &str) {
        self.round
            .ledger()
            .resume(&self.tab.session, since.as_ref(), resume, epoch);
    }

    /// When the select loop's send branch fires (far away while a send is in flight).
    fn send_at(&self) -> Instant {
        self.next_send
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600))
    }

    /// Subscribed (or gone): the kill clock waits for one signal per tab.
    async fn signal(&mut self) {
        if !self.signalled {
            self.signalled = true;
            let _ = self.round.ready.send(()).await;
        }
    }
}

/// One tab for one life of the hub; gives the tab back when its connection ends.
pub(crate) async fn run(mut tab: Tab, round: Round, rng: Rng) -> Tab {
    let mut conn = Conn {
        tab: &mut tab,
        round: &round,
        rng,
        next_send: None,
        signalled: false,
    };
    let r = if conn.tab.sse {
        sse_tab(&mut conn).await
    } else {
        ws_tab(&mut conn).await
    };
    conn.signal().await;
    if let Err(e) = r {
        // A cut connection is what a kill does; before the kill (or in the last round, which
        // has none) the hub must not end it.
        if round.last_round || !round.killed.load(Ordering::SeqCst) {
            let msg = format!("{}: {e:#}", tab.name);
            round.ledger().violation(msg);
        }
    }
    tab
}

async fn ws_tab(c: &mut Conn<'_>) -> anyhow::Result<()> {
    let url = format!("ws://{}/v1/ws", c.round.addr);
    let (mut ws, _) = timeout(IO_TIMEOUT, tokio_tungstenite::connect_async(url)).await??;
    let since = c.tab.last.clone();
    let frame = wire::subscribe(
        &c.tab.session,
        since.as_ref().map(|(e, s)| (e.as_str(), *s)),
    );
    ws.send(Message::Text(frame.into())).await?;
    let mut subscribed = false;
    let mut retry: Vec<String> = Vec::new();
    loop {
        let msg = tokio::select! {
            m = timeout(IO_TIMEOUT, ws.next()) => m?,
            _ = sleep_until(c.send_at()), if c.next_send.is_some() => {
                let (cmid, text) = c.new_message();
                let f = json!({"type":"send","session":c.tab.session,"client_msg_id":cmid,"text":text,"ref":cmid});
                ws.send(Message::Text(f.to_string().into())).await?;
                continue;
            }
        };
        let text = match msg {
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(Message::Close(_))) | None => anyhow::bail!("closed"),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.into()),
        };
        let v: Value = serde_json::from_str(text.as_str())?;
        match v["type"].as_str().unwrap_or_default() {
            "subscribed" => {
                let resume = v["resume"].as_str().unwrap_or_default();
                c.resumed(
                    since.clone(),
                    resume,
                    v["epoch"].as_str().unwrap_or_default(),
                );
                if resume == "replay" {
                    // Replayed events follow; the position stays where the tab was.
                    subscribed = true;
                    retry = resend(c, &mut ws).await?;
                }
            }
            "snapshot" => {
                c.tab.last = Some((
                    v["epoch"].as_str().unwrap_or_default().into(),
                    v["seq"].as_u64().unwrap_or(0),
                ));
                if !subscribed {
                    subscribed = true;
                    retry = resend(c, &mut ws).await?;
                }
            }
            "ack" => {
                let cmid = v["client_msg_id"].as_str().unwrap_or_default().to_owned();
                let was_retry = retry.contains(&cmid);
                c.on_ack(&cmid, &v, was_retry);
            }
            "error" => c.on_error(&v),
            "pong" | "unsubscribed" => {}
            _ if v.get("seq").is_some() => c.on_event(&v),
            _ => {}
        }
        if c.done() {
            return Ok(());
        }
    }
}

/// Subscribed: the kill clock may start, and the sends a crash left unanswered go again.
async fn resend<S>(c: &mut Conn<'_>, ws: &mut S) -> anyhow::Result<Vec<String>>
where
    S: futures::Sink<Message, Error = tokio_tungstenite::tungstenite::Error> + Unpin,
{
    c.signal().await;
    let mut ids = Vec::new();
    for (cmid, text) in c.repeats() {
        let f = json!({"type":"send","session":c.tab.session,"client_msg_id":cmid,"text":text,"ref":cmid});
        ws.send(Message::Text(f.to_string().into())).await?;
        ids.push(cmid);
    }
    if c.tab.pending.is_empty() && !c.round.last_round {
        c.next_send = Some(Instant::now());
    }
    Ok(ids)
}

async fn sse_tab(c: &mut Conn<'_>) -> anyhow::Result<()> {
    let src = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let path = format!("/v1/sessions/{}/events", c.tab.session);
    let since = c.tab.last.clone();
    let last_id = since.as_ref().map(|(e, s)| format!("{e}:{s}"));
    let mut r = timeout(
        IO_TIMEOUT,
        SseReader::open(c.round.addr, src, &path, last_id.as_deref()),
    )
    .await??;
    let resume = r.header("sessionhub-resume").unwrap_or_default().to_owned();
    let epoch = r.header("sessionhub-epoch").unwrap_or_default().to_owned();
    c.resumed(since, &resume, &epoch);
    c.signal().await;
    // The lost sends go again first, then one message at a time.
    for (cmid, text) in c.repeats() {
        post(c, &cmid, &text, true).await?;
    }
    if c.done() {
        return Ok(());
    }
    c.next_send = Some(Instant::now());
    loop {
        tokio::select! {
            ev = timeout(IO_TIMEOUT, r.next_event()) => {
                let Some(ev) = ev?? else { anyhow::bail!("stream ended") };
                let v: Value = serde_json::from_str(&ev.data)?;
                if ev.event == "snapshot" {
                    c.tab.last = Some((v["epoch"].as_str().unwrap_or_default().into(), v["seq"].as_u64().unwrap_or(0)));
                } else if v.get("seq").is_some() && !wire::is_direct_reply(&ev.event) {
                    c.on_event(&v);
                }
            }
            _ = sleep_until(c.send_at()), if c.next_send.is_some() => {
                let (cmid, text) = c.new_message();
                post(c, &cmid, &text, false).await?;
            }
        }
    }
}

/// `POST .../messages`; an answer that is not an ack is a violation, no answer leaves it
/// pending.
async fn post(c: &mut Conn<'_>, cmid: &str, text: &str, retry: bool) -> anyhow::Result<()> {
    let path = format!("/v1/sessions/{}/messages", c.tab.session);
    let body = wire::message_body(cmid, text);
    let (status, body) = http::request(c.round.addr, "POST", &path, Some(&body)).await?;
    let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    if status == 200 && v["type"] == "ack" {
        c.on_ack(cmid, &v, retry);
    } else {
        let mut e = json!({"status": status, "body": body});
        e["ref"] = json!(cmid);
        c.on_error(&e);
    }
    Ok(())
}
