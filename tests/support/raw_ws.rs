//! A bare TCP WebSocket that never answers pings (heartbeat tests): the upgrade by hand and a
//! reader of raw server frames.

use std::net::SocketAddr;

use tokio::net::TcpStream;

/// Connect a raw TCP WebSocket that never answers pings (heartbeat tests); returns the
/// stream after the handshake.
pub async fn raw_ws(addr: SocketAddr) -> TcpStream {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = TcpStream::connect(addr).await.expect("tcp connect");
    let req = format!(
        "GET /v1/ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.expect("handshake write");
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).await.expect("handshake read");
        buf.push(byte[0]);
    }
    assert!(
        buf.starts_with(b"HTTP/1.1 101"),
        "upgrade refused: {}",
        String::from_utf8_lossy(&buf)
    );
    s
}

/// Read raw server frames until a Close frame; returns its code.
pub async fn raw_until_close(s: &mut TcpStream) -> u16 {
    use tokio::io::AsyncReadExt;
    loop {
        let mut h = [0u8; 2];
        s.read_exact(&mut h).await.expect("frame header");
        let opcode = h[0] & 0x0f;
        let mut len = (h[1] & 0x7f) as usize;
        if len == 126 {
            let mut l = [0u8; 2];
            s.read_exact(&mut l).await.expect("len");
            len = u16::from_be_bytes(l) as usize;
        } else if len == 127 {
            let mut l = [0u8; 8];
            s.read_exact(&mut l).await.expect("len");
            len = u64::from_be_bytes(l) as usize;
        }
        let mut payload = vec![0u8; len];
        s.read_exact(&mut payload).await.expect("payload");
        if opcode == 0x8 {
            return u16::from_be_bytes([payload[0], payload[1]]);
        }
    }
}
