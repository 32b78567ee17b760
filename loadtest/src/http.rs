//! A minimal HTTP/1.1 client over loopback: JSON requests (create a session, post a message)
//! and a `text/event-stream` reader that undoes chunked transfer encoding.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Any single HTTP exchange or header read must finish within this.
const IO_TIMEOUT: Duration = Duration::from_secs(15);
/// The largest response body the client accepts (sessions and acks are tiny).
const MAX_BODY: usize = 1 << 20;

/// Connect to `addr` from the source address `src` (127.0.0.1..4 spread the ephemeral ports).
pub async fn connect_from(addr: SocketAddr, src: IpAddr) -> Result<TcpStream> {
    connect_with(addr, src, None).await
}

/// As [`connect_from`], with a fixed receive buffer (a slow tab's small window makes the
/// server's queue, not the kernel's buffers, absorb what it does not read).
pub async fn connect_with(addr: SocketAddr, src: IpAddr, rcvbuf: Option<u32>) -> Result<TcpStream> {
    let sock = TcpSocket::new_v4()?;
    if let Some(n) = rcvbuf {
        sock.set_recv_buffer_size(n)?;
    }
    sock.bind(SocketAddr::new(src, 0))?;
    sock.set_nodelay(true)?;
    let stream = sock.connect(addr).await?;
    Ok(stream)
}

/// One request with `Connection: close`; returns the status and the body.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Result<(u16, String)> {
    tokio::time::timeout(IO_TIMEOUT, request_inner(addr, method, path, body))
        .await
        .map_err(|_| anyhow!("{method} {path}: timed out"))?
}

async fn request_inner(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Result<(u16, String)> {
    let mut s = TcpStream::connect(addr).await?;
    let body = body.unwrap_or("");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await?;
    let mut raw = Vec::new();
    (&mut s).take(MAX_BODY as u64).read_to_end(&mut raw).await?;
    let head_end = find(&raw, b"\r\n\r\n").ok_or_else(|| anyhow!("no HTTP header end"))?;
    let head = std::str::from_utf8(&raw[..head_end])?;
    let status = parse_status(head)?;
    let mut rest = BytesMut::from(&raw[head_end + 4..]);
    let text = if is_chunked(head) {
        let mut d = Dechunker::default();
        let mut out = BytesMut::new();
        d.decode(&mut rest, &mut out);
        String::from_utf8(out.to_vec())?
    } else {
        String::from_utf8(rest.to_vec())?
    };
    Ok((status, text))
}

fn parse_status(head: &str) -> Result<u16> {
    head.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("bad status line: {}", head.lines().next().unwrap_or("")))
}

fn is_chunked(head: &str) -> bool {
    head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Undoes `Transfer-Encoding: chunked` incrementally.
#[derive(Default)]
struct Dechunker {
    left: usize,
    need_crlf: bool,
    done: bool,
}

impl Dechunker {
    /// Move every decodable byte from `raw` to `out`; keeps partial size lines in `raw`.
    fn decode(&mut self, raw: &mut BytesMut, out: &mut BytesMut) {
        // Bounded by the input: every turn consumes bytes or breaks.
        while !self.done && !raw.is_empty() {
            if self.left > 0 {
                let n = self.left.min(raw.len());
                out.extend_from_slice(&raw[..n]);
                raw.advance(n);
                self.left -= n;
                self.need_crlf = self.left == 0;
            } else if self.need_crlf {
                if raw.len() < 2 {
                    break;
                }
                raw.advance(2);
                self.need_crlf = false;
            } else {
                let Some(pos) = find(raw, b"\r\n") else { break };
                let line = String::from_utf8_lossy(&raw[..pos]).to_string();
                raw.advance(pos + 2);
                let hex = line.split(';').next().unwrap_or("").trim();
                let size = usize::from_str_radix(hex, 16).unwrap_or(0);
                if size == 0 {
                    self.done = true;
                } else {
                    self.left = size;
                }
            }
        }
    }
}

/// One server-sent event.
#[derive(Debug, Default, Clone)]
pub struct SseEvent {
    pub event: String,
    pub id: String,
    pub data: String,
}

/// Reads events from a `GET .../events` response.
pub struct SseReader {
    /// The response head (status line and headers), for `header`.
    head: String,
    stream: TcpStream,
    chunked: Option<Dechunker>,
    raw: BytesMut,
    body: BytesMut,
    scanned: usize,
}

impl SseReader {
    /// Send the GET and read the response head. `last_event_id` resumes.
    pub async fn open(
        addr: SocketAddr,
        src: IpAddr,
        path: &str,
        last_event_id: Option<&str>,
    ) -> Result<Self> {
        let resume = last_event_id
            .map(|id| format!("Last-Event-ID: {id}\r\n"))
            .unwrap_or_default();
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n{resume}\r\n"
        );
        Self::start(addr, src, req, path).await
    }

    /// POST a JSON body whose answer is an event stream (ChatKit); the server closes after it.
    pub async fn post(addr: SocketAddr, src: IpAddr, path: &str, body: &str) -> Result<Self> {
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\
             Connection: close\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        Self::start(addr, src, req, path).await
    }

    async fn start(addr: SocketAddr, src: IpAddr, req: String, path: &str) -> Result<Self> {
        let mut stream = connect_from(addr, src).await?;
        stream.write_all(req.as_bytes()).await?;
        let mut raw = BytesMut::with_capacity(4096);
        let head_end = tokio::time::timeout(IO_TIMEOUT, async {
            // Bounded: the head must arrive within 64 KiB.
            while raw.len() < 65536 {
                if let Some(p) = find(&raw, b"\r\n\r\n") {
                    return Ok(p);
                }
                if stream.read_buf(&mut raw).await? == 0 {
                    bail!("connection closed before the response head");
                }
            }
            bail!("response head too large")
        })
        .await
        .context("SSE response head timed out")??;
        let head = String::from_utf8_lossy(&raw[..head_end]).to_string();
        let status = parse_status(&head)?;
        if status != 200 {
            bail!("{path}: HTTP {status}");
        }
        raw.advance(head_end + 4);
        let chunked = is_chunked(&head).then(Dechunker::default);
        let mut r = SseReader {
            head,
            stream,
            chunked,
            raw,
            body: BytesMut::with_capacity(4096),
            scanned: 0,
        };
        r.decode();
        Ok(r)
    }

    /// A response header's value (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    fn decode(&mut self) {
        match &mut self.chunked {
            Some(d) => d.decode(&mut self.raw, &mut self.body),
            None => {
                let all = self.raw.split();
                self.body.extend_from_slice(&all);
            }
        }
    }

    /// The next event with data; comment-only blocks (keep-alives) are skipped. None at EOF.
    pub async fn next_event(&mut self) -> Result<Option<SseEvent>> {
        loop {
            if let Some(ev) = self.take_block() {
                if ev.data.is_empty() && ev.event.is_empty() {
                    continue;
                }
                return Ok(Some(ev));
            }
            // A chunked body ends with its zero-size chunk, whether or not the server closes.
            if self.chunked.as_ref().is_some_and(|d| d.done) {
                return Ok(None);
            }
            if self.stream.read_buf(&mut self.raw).await? == 0 {
                return Ok(None);
            }
            self.decode();
        }
    }

    fn take_block(&mut self) -> Option<SseEvent> {
        let from = self.scanned.saturating_sub(1);
        let Some(rel) = find(&self.body[from..], b"\n\n") else {
            self.scanned = self.body.len();
            return None;
        };
        let block = self.body.split_to(from + rel + 2);
        self.scanned = 0;
        let mut ev = SseEvent::default();
        for line in String::from_utf8_lossy(&block).lines() {
            let line = line.trim_end_matches('\r');
            let (field, value) = match line.split_once(':') {
                Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                None => (line, ""),
            };
            match field {
                "event" => ev.event = value.to_owned(),
                "id" => ev.id = value.to_owned(),
                "data" => {
                    if !ev.data.is_empty() {
                        ev.data.push('\n');
                    }
                    ev.data.push_str(value);
                }
                _ => {}
            }
        }
        Some(ev)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dechunks_across_splits() {
        let mut d = Dechunker::default();
        let mut out = BytesMut::new();
        let mut raw = BytesMut::from(&b"5\r\nhel"[..]);
        d.decode(&mut raw, &mut out);
        raw.extend_from_slice(b"lo\r\n3;x=1\r\n wo\r");
        d.decode(&mut raw, &mut out);
        raw.extend_from_slice(b"\n0\r\n\r\n");
        d.decode(&mut raw, &mut out);
        assert_eq!(&out[..], b"hello wo");
        assert!(d.done);
    }

    #[test]
    fn status_and_chunked_header() {
        assert_eq!(parse_status("HTTP/1.1 201 Created\r\nA: b").unwrap(), 201);
        assert!(parse_status("garbage").is_err());
        assert!(is_chunked("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked"));
        assert!(!is_chunked("HTTP/1.1 200 OK\r\nContent-Length: 3"));
    }
}
