//! A small Server-Sent Events client for the SSE integration tests: opens
//! `GET /v1/sessions/{id}/events` with reqwest, parses the event stream, and bounds every wait.
#![allow(dead_code)]

use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use reqwest::header::HeaderMap;
use serde_json::Value;

/// The same run-end test as the WebSocket client's (the event model is one on every transport).
pub(crate) use crate::support::ends_run;

/// How long any single expected event may take before a test fails.
pub(crate) const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

/// One dispatched SSE event.
#[derive(Debug, Clone)]
pub(crate) struct SseEvent {
    pub(crate) id: Option<String>,
    pub(crate) event: String,
    pub(crate) data: String,
}

impl SseEvent {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.data)
            .unwrap_or_else(|e| panic!("event data is not JSON ({e}): {}", self.data))
    }
}

#[derive(Debug)]
pub(crate) enum SseItem {
    Event(SseEvent),
    Comment(String),
    /// The server ended the response.
    End,
}

type ByteStream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

pub(crate) struct SseClient {
    pub(crate) headers: HeaderMap,
    stream: ByteStream,
    buf: String,
    pending: (Option<String>, String, Vec<String>),
    /// Every sequenced event received (JSON), in order.
    pub(crate) events: Vec<Value>,
}

pub(crate) fn events_url(base: &str, session: &str) -> String {
    format!("{base}/v1/sessions/{session}/events")
}

/// Opens the event stream with optional `Last-Event-ID`; panics unless the hub answers 200.
pub(crate) async fn open(url: &str, last_event_id: Option<&str>) -> SseClient {
    let resp = request(url, last_event_id).await;
    let status = resp.status();
    if status != 200 {
        let body = resp.text().await.unwrap_or_default();
        panic!("GET {url}: {status}: {body}");
    }
    SseClient::new(resp)
}

/// The raw response, for tests of error statuses.
pub(crate) async fn request(url: &str, last_event_id: Option<&str>) -> reqwest::Response {
    // No overall timeout: the stream is long-lived; each read below is bounded instead.
    let client = reqwest::Client::builder()
        .connect_timeout(EVENT_TIMEOUT)
        .build()
        .expect("client");
    let mut req = client.get(url).header("accept", "text/event-stream");
    if let Some(id) = last_event_id {
        req = req.header("last-event-id", id);
    }
    tokio::time::timeout(EVENT_TIMEOUT, req.send())
        .await
        .expect("response in time")
        .expect("GET events")
}

impl SseClient {
    pub(crate) fn new(resp: reqwest::Response) -> Self {
        let headers = resp.headers().clone();
        let ct = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert!(ct.starts_with("text/event-stream"), "content-type {ct}");
        SseClient {
            headers,
            stream: Box::pin(resp.bytes_stream()),
            buf: String::new(),
            pending: (None, String::new(), Vec::new()),
            events: Vec::new(),
        }
    }

    /// A client over a body read some other way (a raw socket), headers already parsed.
    pub(crate) fn from_body(headers: HeaderMap, body: Bytes) -> Self {
        SseClient {
            headers,
            stream: Box::pin(futures::stream::once(async move { Ok(body) })),
            buf: String::new(),
            pending: (None, String::new(), Vec::new()),
            events: Vec::new(),
        }
    }

    pub(crate) fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }

    /// The next event, comment or end of stream.
    pub(crate) async fn next_item(&mut self) -> SseItem {
        loop {
            while let Some(nl) = self.buf.find('\n') {
                let line = self.buf[..nl].trim_end_matches('\r').to_owned();
                self.buf.drain(..=nl);
                if let Some(item) = self.line(&line) {
                    if let SseItem::Event(e) = &item {
                        let v = e.json();
                        if v.get("seq").is_some() && e.event != "snapshot" {
                            self.events.push(v);
                        }
                    }
                    return item;
                }
            }
            let chunk = tokio::time::timeout(EVENT_TIMEOUT, self.stream.next())
                .await
                .expect("SSE data in time");
            match chunk {
                Some(Ok(b)) => self
                    .buf
                    .push_str(std::str::from_utf8(&b).expect("UTF-8 stream")),
                Some(Err(e)) => panic!("SSE stream broke: {e}"),
                None => return SseItem::End,
            }
        }
    }

    fn line(&mut self, line: &str) -> Option<SseItem> {
        if line.is_empty() {
            let (id, event, data) = std::mem::take(&mut self.pending);
            if data.is_empty() {
                return None;
            }
            let event = if event.is_empty() {
                "message".to_owned()
            } else {
                event
            };
            return Some(SseItem::Event(SseEvent {
                id,
                event,
                data: data.join("\n"),
            }));
        }
        if let Some(c) = line.strip_prefix(':') {
            return Some(SseItem::Comment(c.trim().to_owned()));
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value).to_owned();
        match field {
            "id" => self.pending.0 = Some(value),
            "event" => self.pending.1 = value,
            "data" => self.pending.2.push(value),
            _ => {}
        }
        None
    }

    /// The next event, skipping keep-alive comments. Panics if the stream ends.
    pub(crate) async fn next_event(&mut self) -> SseEvent {
        loop {
            match self.next_item().await {
                SseItem::Event(e) => return e,
                SseItem::Comment(_) => continue,
                SseItem::End => panic!("the event stream ended"),
            }
        }
    }

    /// Events until (and including) the first whose JSON matches.
    pub(crate) async fn until(&mut self, pred: impl Fn(&Value) -> bool) -> Vec<SseEvent> {
        let mut out = Vec::new();
        loop {
            let e = self.next_event().await;
            let done = pred(&e.json());
            out.push(e);
            if done {
                return out;
            }
        }
    }

    /// Events until the stream ends (comments skipped).
    pub(crate) async fn until_end(&mut self) -> Vec<SseEvent> {
        let mut out = Vec::new();
        loop {
            match self.next_item().await {
                SseItem::Event(e) => out.push(e),
                SseItem::Comment(_) => continue,
                SseItem::End => return out,
            }
        }
    }
}
