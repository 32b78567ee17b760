//! A tab on the native WebSocket protocol: subscribe, (drive runs,) read until told to stop,
//! optionally reconnect with resume (S8) or stop reading (S7).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::time::{sleep_until, timeout, Instant};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::http;
use crate::tab::{self, Ctx, TabSpec, TabState};
use crate::wire;

pub type Ws = WebSocketStream<TcpStream>;

/// A small read buffer: the loader holds up to ~20k sockets.
pub fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(4096)
}

/// TCP connect from `src` plus the WebSocket handshake on `/v1/ws`.
pub async fn connect(addr: SocketAddr, src: IpAddr) -> Result<Ws> {
    connect_with(addr, src, None).await
}

/// Bytes of receive buffer a slow tab asks for (S7).
const SLOW_RCVBUF: u32 = 4096;

async fn connect_with(addr: SocketAddr, src: IpAddr, rcvbuf: Option<u32>) -> Result<Ws> {
    let tcp = http::connect_with(addr, src, rcvbuf).await?;
    let url = format!("ws://{addr}/v1/ws");
    let (ws, _) = tokio_tungstenite::client_async_with_config(url, tcp, Some(ws_config())).await?;
    Ok(ws)
}

/// Connect, subscribe (resuming from `since`), and read until the subscription is answered.
async fn join(
    spec: &TabSpec,
    ctx: &Ctx,
    state: &mut TabState,
    since: Option<(String, u64)>,
) -> Result<Ws> {
    let _permit = ctx.connect_gate.acquire().await?;
    timeout(tab::SUBSCRIBE_TIMEOUT, async {
        let mut ws = connect_with(ctx.addr, spec.src, spec.slow.then_some(SLOW_RCVBUF)).await?;
        let frame = wire::subscribe(
            &spec.session_id,
            since.as_ref().map(|(e, s)| (e.as_str(), *s)),
        );
        ws.send(Message::text(frame)).await?;
        state.subscribed = false;
        // Bounded by the timeout around it.
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    state.on_frame(t.as_str(), "", ctx);
                    if state.subscribed {
                        return Ok(ws);
                    }
                    if let Some(code) = state.last_error.take() {
                        bail!("subscribe refused: {code}");
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
                None => bail!("closed before subscribed"),
            }
        }
    })
    .await
    .map_err(|_| anyhow!("subscribe timed out"))?
}

/// The whole life of one WebSocket tab. Reports into the thread's stats; never panics.
pub async fn run(spec: TabSpec, ctx: Ctx) {
    let mut state = TabState::new(spec.session);
    let mut ws = match join(&spec, &ctx, &mut state, None).await {
        Ok(ws) => {
            let _ = ctx.ready.send(true);
            ws
        }
        Err(e) => {
            let mut st = ctx.stats.borrow_mut();
            st.connect_failures += 1;
            st.count_close(format!("connect: {e}"));
            let _ = ctx.ready.send(false);
            return;
        }
    };
    let Some(tl) = tab::wait_timeline(&ctx).await else {
        return;
    };
    state.set_window(&tl);
    if spec.slow {
        slow_tab(&mut ws, &tl, &ctx).await;
        state.finish(&spec, &ctx);
        return;
    }
    let far = tl.stop + Duration::from_secs(3600);
    let stop = sleep_until(tl.stop.into());
    let mut pending_send = spec.driver;
    let send_at = sleep_until(
        if spec.driver {
            tl.go + spec.stagger
        } else {
            far
        }
        .into(),
    );
    let mut next_churn = spec.churn_every.map(|_| tl.go + spec.churn_phase);
    let churn = sleep_until(next_churn.unwrap_or(far).into());
    tokio::pin!(stop, send_at, churn);
    // Bounded: `stop` is polled first on every turn and ends the loop at the end of the drain.
    loop {
        tokio::select! {
            biased;
            _ = &mut stop => break,
            _ = &mut send_at, if pending_send => {
                pending_send = false;
                state.unacked = (0..ctx.messages).map(|k| tab::client_msg_id(&spec, k)).collect();
                send_unacked(&mut ws, &spec, &state).await;
            }
            _ = &mut churn, if next_churn.is_some() => {
                let _ = ws.close(None).await;
                let since = state.since();
                ctx.stats.borrow_mut().reconnects += 1;
                match join(&spec, &ctx, &mut state, since).await {
                    Ok(w) => {
                        ws = w;
                        send_unacked(&mut ws, &spec, &state).await;
                    }
                    Err(e) => {
                        let mut st = ctx.stats.borrow_mut();
                        st.reconnect_failures += 1;
                        st.count_close(format!("reconnect: {e}"));
                        break;
                    }
                }
                let every = spec.churn_every.unwrap_or(Duration::from_secs(3600));
                let next = next_churn.map(|t| t + every).filter(|t| *t < tl.stop);
                next_churn = next;
                churn.as_mut().reset(next.unwrap_or(far).into());
            }
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(t))) => {
                    state.on_frame(t.as_str(), "", &ctx);
                    if ctx.expect_runs.is_some_and(|n| state.runs >= n) {
                        break;
                    }
                }
                Some(Ok(Message::Close(f))) => {
                    let code = f.map(|f| u16::from(f.code)).unwrap_or(1005);
                    ctx.stats.borrow_mut().count_close(format!("server closed {code}"));
                    break;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    ctx.stats.borrow_mut().count_close(format!("error: {e}"));
                    break;
                }
                None => {
                    ctx.stats.borrow_mut().count_close("eof".to_owned());
                    break;
                }
            }
        }
    }
    state.finish(&spec, &ctx);
}

/// Send (again) every message of this driver that has no ack yet.
async fn send_unacked(ws: &mut Ws, spec: &TabSpec, state: &TabState) {
    for id in &state.unacked {
        let frame = wire::send(&spec.session_id, id, wire::USER_TEXT);
        if ws.feed(Message::text(frame)).await.is_err() {
            return;
        }
    }
    let _ = ws.flush().await;
}

/// S7: do not read until the end, then look (bounded) for the hub's 4008 close.
async fn slow_tab(ws: &mut Ws, tl: &tab::Timeline, ctx: &Ctx) {
    tokio::time::sleep_until(tl.stop.into()).await;
    let deadline = Instant::now() + Duration::from_secs(3);
    // Bounded by the deadline and by a frame count.
    for _ in 0..1_000_000 {
        let Ok(next) = tokio::time::timeout_at(deadline, ws.next()).await else {
            // Still open and quiet: the server kept this tab.
            return;
        };
        match next {
            Some(Ok(Message::Close(f))) => {
                let mut st = ctx.stats.borrow_mut();
                let code = f.map(|f| f.code).unwrap_or(CloseCode::Status);
                if code == CloseCode::from(4008) {
                    st.slow_cut += 1;
                } else {
                    st.count_close(format!("slow tab: server closed {}", u16::from(code)));
                }
                return;
            }
            // The hub drops the TCP connection when the close handshake does not finish.
            Some(Err(_)) | None => {
                let mut st = ctx.stats.borrow_mut();
                st.slow_cut += 1;
                st.count_close("slow tab: connection dropped".to_owned());
                return;
            }
            Some(Ok(_)) => {}
        }
    }
}
