//! A tab on the native SSE fallback: `GET /v1/sessions/{id}/events`, runs started with
//! `POST /v1/sessions/{id}/messages` (scenario S6).

use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use tokio::time::{sleep_until, timeout};

use crate::http::{self, SseReader};
use crate::tab::{self, Ctx, TabSpec, TabState};
use crate::wire;

async fn open(spec: &TabSpec, ctx: &Ctx, state: &mut TabState) -> Result<SseReader> {
    let _permit = ctx.connect_gate.acquire().await?;
    timeout(tab::SUBSCRIBE_TIMEOUT, async {
        let path = format!("/v1/sessions/{}/events", spec.session_id);
        let mut r = SseReader::open(ctx.addr, spec.src, &path, None).await?;
        // The stream opens with a snapshot (or `subscribed` first); bounded by the timeout.
        loop {
            let Some(ev) = r.next_event().await? else {
                bail!("stream ended before the snapshot");
            };
            state.on_frame(&ev.data, &ev.event, ctx);
            if let Some(code) = state.last_error.take() {
                bail!("stream refused: {code}");
            }
            if state.subscribed {
                return Ok(r);
            }
        }
    })
    .await
    .map_err(|_| anyhow!("SSE open timed out"))?
}

/// Start the driver's runs over REST.
async fn drive(spec: &TabSpec, ctx: &Ctx) {
    let path = format!("/v1/sessions/{}/messages", spec.session_id);
    for k in 0..ctx.messages {
        let body = wire::message_body(&tab::client_msg_id(spec, k), wire::USER_TEXT);
        match http::request(ctx.addr, "POST", &path, Some(&body)).await {
            Ok((s, _)) if (200..300).contains(&s) => {}
            Ok((s, b)) => ctx.stats.borrow_mut().count_error(&format!(
                "POST messages {s}: {}",
                b.chars().take(80).collect::<String>()
            )),
            Err(e) => ctx
                .stats
                .borrow_mut()
                .count_error(&format!("POST messages: {e}")),
        }
    }
}

/// The whole life of one SSE tab.
pub async fn run(spec: TabSpec, ctx: Ctx) {
    let mut state = TabState::new(spec.session);
    let mut reader = match open(&spec, &ctx, &mut state).await {
        Ok(r) => {
            let _ = ctx.ready.send(true);
            r
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
    tokio::pin!(stop, send_at);
    // Bounded: `stop` is polled first on every turn.
    loop {
        tokio::select! {
            biased;
            _ = &mut stop => break,
            _ = &mut send_at, if pending_send => {
                pending_send = false;
                drive(&spec, &ctx).await;
            }
            ev = reader.next_event() => match ev {
                Ok(Some(ev)) => {
                    state.on_frame(&ev.data, &ev.event, &ctx);
                    if ctx.expect_runs.is_some_and(|n| state.runs >= n) {
                        break;
                    }
                }
                Ok(None) => {
                    ctx.stats.borrow_mut().count_close("sse eof".to_owned());
                    break;
                }
                Err(e) => {
                    ctx.stats.borrow_mut().count_close(format!("sse error: {e}"));
                    break;
                }
            }
        }
    }
    state.finish(&spec, &ctx);
}
