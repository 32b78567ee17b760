//! The conformance echo (`/v1/ws/echo`, `--conformance-echo`) and the close codes of the
//! WebSocket machinery it shares with `/v1/ws`, checked without the Autobahn chroot: routed
//! only when asked for, anonymous even when the hub requires tokens, text back as text and
//! binary as binary (empty and fragmented too), 1009 over the size limit, and 1007 for text that
//! is not UTF-8 on both routes.

use crate::auth_support;
use crate::support;

use futures::{SinkExt, StreamExt};
use support::{TestHub, FRAME_TIMEOUT};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Control, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{Frame, FrameHeader};
use tokio_tungstenite::tungstenite::{Bytes, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn echo_hub() -> TestHub {
    TestHub::start_with(|c| c.conformance_echo = true).await
}

async fn connect(url: &str) -> Ws {
    let (ws, _) = tokio::time::timeout(FRAME_TIMEOUT, tokio_tungstenite::connect_async(url))
        .await
        .expect("connect in time")
        .expect("connect");
    ws
}

/// The next data message (pings and pongs skipped).
async fn next_message(ws: &mut Ws) -> Message {
    loop {
        let m = tokio::time::timeout(FRAME_TIMEOUT, ws.next())
            .await
            .expect("a message in time")
            .expect("the connection is open")
            .expect("a message");
        if !matches!(m, Message::Ping(_) | Message::Pong(_)) {
            return m;
        }
    }
}

/// Reads until the hub's Close and returns its code, then lets the handshake finish.
async fn close_code(ws: &mut Ws) -> Option<u16> {
    loop {
        match tokio::time::timeout(FRAME_TIMEOUT, ws.next())
            .await
            .expect("a close in time")
        {
            Some(Ok(Message::Close(c))) => {
                let _ = tokio::time::timeout(FRAME_TIMEOUT, async {
                    while ws.next().await.is_some() {}
                })
                .await;
                return c.map(|c| u16::from(c.code));
            }
            Some(Ok(_)) => continue,
            other => panic!("expected a Close, got {other:?}"),
        }
    }
}

/// One raw frame, written as is (the client still masks it).
fn raw(opcode: OpCode, payload: &[u8], fin: bool) -> Message {
    let header = FrameHeader {
        is_final: fin,
        opcode,
        ..FrameHeader::default()
    };
    Message::Frame(Frame::from_payload(header, Bytes::copy_from_slice(payload)))
}

fn frame(op: Data, payload: &[u8], fin: bool) -> Message {
    raw(OpCode::Data(op), payload, fin)
}

#[tokio::test]
async fn the_echo_is_not_routed_unless_asked_for() {
    let hub = TestHub::start().await;
    let r = tokio_tungstenite::connect_async(format!("ws://{}/v1/ws/echo", hub.addr)).await;
    let Err(tokio_tungstenite::tungstenite::Error::Http(resp)) = r else {
        panic!("the upgrade must fail: {r:?}");
    };
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn text_comes_back_as_text_and_binary_as_binary() {
    let hub = echo_hub().await;
    let mut ws = connect(&format!("ws://{}/v1/ws/echo", hub.addr)).await;
    let cases = [
        Message::Text("hello, ünïcode ✓".into()),
        Message::Binary(Bytes::from_static(&[0, 159, 146, 150, 255])),
        Message::Text("".into()),
        Message::Binary(Bytes::new()),
        Message::Text("x".repeat(65_536).into()),
    ];
    for m in cases {
        ws.send(m.clone()).await.expect("send");
        assert_eq!(next_message(&mut ws).await, m);
    }
    // A fragmented message comes back whole, with its first fragment's type.
    ws.send(frame(Data::Text, "frag".as_bytes(), false))
        .await
        .unwrap();
    ws.send(frame(Data::Continue, b"", false)).await.unwrap();
    ws.send(frame(Data::Continue, "mented".as_bytes(), true))
        .await
        .unwrap();
    assert_eq!(
        next_message(&mut ws).await,
        Message::Text("fragmented".into())
    );
    ws.send(frame(Data::Binary, &[1, 2], false)).await.unwrap();
    ws.send(frame(Data::Continue, &[3], true)).await.unwrap();
    assert_eq!(
        next_message(&mut ws).await,
        Message::Binary(Bytes::from_static(&[1, 2, 3]))
    );
    // A Close from the client is answered with the same code.
    ws.close(None).await.expect("close");
    assert_eq!(close_code(&mut ws).await, None);
}

#[tokio::test]
async fn the_echo_is_anonymous_even_when_tokens_are_required() {
    let hub = auth_support::start(|c| c.conformance_echo = true).await;
    let no_token = tokio_tungstenite::connect_async(hub.ws_url()).await;
    assert!(no_token.is_err(), "/v1/ws still needs a token");
    let mut ws = connect(&format!("ws://{}/v1/ws/echo", hub.addr)).await;
    ws.send(Message::Text("anyone".into())).await.unwrap();
    assert_eq!(next_message(&mut ws).await, Message::Text("anyone".into()));
}

#[tokio::test]
async fn over_the_limit_closes_with_1009_after_the_echoes_already_queued() {
    let hub = echo_hub().await;
    let mut ws = connect(&format!("ws://{}/v1/ws/echo", hub.addr)).await;
    ws.send(Message::Text("before".into())).await.unwrap();
    ws.send(Message::Binary(vec![7u8; 65_537].into()))
        .await
        .unwrap();
    assert_eq!(next_message(&mut ws).await, Message::Text("before".into()));
    assert_eq!(close_code(&mut ws).await, Some(1009));
}

#[tokio::test]
async fn invalid_utf8_closes_with_1007_on_both_routes() {
    let hub = echo_hub().await;
    let invalid: &[u8] = &[b'o', b'k', 0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xed, 0xa0, 0x80];
    for path in ["/v1/ws/echo", "/v1/ws"] {
        let mut ws = connect(&format!("ws://{}{path}", hub.addr)).await;
        ws.send(frame(Data::Text, invalid, true)).await.unwrap();
        assert_eq!(close_code(&mut ws).await, Some(1007), "{path}");
    }
    // Split across fragments, and as a close reason, too.
    let mut ws = connect(&format!("ws://{}/v1/ws/echo", hub.addr)).await;
    ws.send(frame(Data::Text, &[0xf0, 0x9f], false))
        .await
        .unwrap();
    ws.send(frame(Data::Continue, &[0x28, 0x8c], true))
        .await
        .unwrap();
    assert_eq!(close_code(&mut ws).await, Some(1007));
    let mut ws = connect(&format!("ws://{}/v1/ws/echo", hub.addr)).await;
    let mut payload = 1000u16.to_be_bytes().to_vec();
    payload.extend_from_slice(&[0xff, 0xfe]);
    ws.send(raw(OpCode::Control(Control::Close), &payload, true))
        .await
        .unwrap();
    assert_eq!(close_code(&mut ws).await, Some(1007));
    // A protocol violation that is not about UTF-8 still gets 1002 (a reserved opcode).
    let mut ws = connect(&format!("ws://{}/v1/ws/echo", hub.addr)).await;
    ws.send(frame(Data::Reserved(3), b"?", true)).await.unwrap();
    assert_eq!(close_code(&mut ws).await, Some(1002));
}
