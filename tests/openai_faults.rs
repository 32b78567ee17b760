//! The OpenAI agent's fault policy through the whole hub: retries only before the first token,
//! capped `Retry-After`, no retry of auth errors, partial text kept on failures after the first
//! token, protocol errors, and the two clocks. Real WebSocket tab, real server on 127.0.0.1:0,
//! the scripted OpenAI-compatible upstream of `tests/upstream`.

use crate::support;
use crate::upstream;

use std::time::Duration;

use serde_json::Value;
use sessionhub::config::Config;
use support::{TestHub, WsClient};
use tokio::time::Instant;
use upstream::{End, Ev, Gate, Reply, Upstream};

const WAIT: Duration = Duration::from_secs(10);

/// A hub on the OpenAI agent pointed at a fresh upstream, one session, one tab joined to it.
async fn setup(edit: impl FnOnce(&mut Config)) -> (Upstream, TestHub, String, WsClient) {
    let up = Upstream::start().await;
    let hub = TestHub::start_with(|c| {
        upstream::point_hub_at(c, &up.base_url);
        edit(c);
    })
    .await;
    let session = hub.create_session().await;
    let mut tab = hub.ws().await;
    tab.join(&session).await;
    (up, hub, session, tab)
}

/// Sends `text` and returns the run id from the ack.
async fn ask(tab: &mut WsClient, session: &str, cmid: &str, text: &str) -> String {
    let ack = tab.say(session, cmid, text).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    ack["run_id"].as_str().expect("run id").to_owned()
}

fn deltas(tab: &WsClient, run: &str) -> String {
    tab.events
        .iter()
        .filter(|e| e["type"] == "run.delta" && e["run_id"] == run)
        .map(|e| e["text"].as_str().expect("delta text"))
        .collect()
}

fn count(tab: &WsClient, run: &str, kind: &str) -> usize {
    tab.events
        .iter()
        .filter(|e| e["type"] == kind && e["run_id"] == run)
        .count()
}

/// Asserts a `run.failed` with this code and retryable flag, and returns the item text.
fn failed(end: &Value, code: &str, retryable: bool) -> String {
    assert_eq!(end["type"], "run.failed", "{end}");
    assert_eq!(end["error"]["code"], code, "{end}");
    assert_eq!(end["error"]["retryable"], retryable, "{end}");
    assert_eq!(end["item"]["status"], "failed", "{end}");
    end["item"]["text"].as_str().expect("item text").to_owned()
}

#[tokio::test]
async fn two_503s_then_success_is_one_run_without_duplicates() {
    let (up, hub, session, mut tab) = setup(|_| {}).await;
    up.push(Reply::error(503, "server_error", "overloaded"));
    up.push(Reply::error(503, "server_error", "overloaded"));
    up.push(Reply::text(&["Third ", "time ", "lucky"]));
    let run = ask(&mut tab, &session, "c1", "hello").await;
    let end = tab.until_run_end(&run).await;
    assert_eq!(end["type"], "run.completed", "{end}");
    assert_eq!(end["item"]["text"], "Third time lucky");
    assert_eq!(deltas(&tab, &run), "Third time lucky", "no duplicated text");
    assert_eq!(count(&tab, &run, "run.started"), 1, "one run");
    let log = up.requests();
    let statuses: Vec<u16> = log.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [503, 503, 200],
        "the attempts, as the upstream saw them"
    );
    assert!(
        log.iter().all(|r| r.body == log[0].body),
        "each attempt sent the same request"
    );
    let items = hub.items(&session).await;
    assert_eq!(items.len(), 2, "one user message, one reply: {items:?}");
}

#[tokio::test]
async fn rate_limit_with_retry_after_3600_is_capped_and_fails_in_bounded_time() {
    let (up, _hub, session, mut tab) = setup(|c| {
        c.upstream_max_attempts = 3;
        c.retry_after_cap_ms = 300;
    })
    .await;
    for _ in 0..3 {
        up.push(
            Reply::error(429, "rate_limit_exceeded", "slow down")
                .with_header("retry-after", "3600"),
        );
    }
    let started = Instant::now();
    let run = ask(&mut tab, &session, "c1", "hello").await;
    let end = tab.until_run_end(&run).await;
    let took = started.elapsed();
    let text = failed(&end, "upstream_rate_limited", true);
    assert_eq!(text, "", "nothing was streamed");
    let log = up.requests();
    assert_eq!(log.len(), 3, "bounded attempts");
    assert!(log.iter().all(|r| r.status == 429));
    // Two waits of the 300 ms cap between three attempts, not an hour.
    let gap = log[1].at - log[0].at;
    assert!(
        gap >= Duration::from_millis(290) && gap < Duration::from_secs(2),
        "wait {gap:?}"
    );
    assert!(took < Duration::from_secs(5), "failed after {took:?}");
}

#[tokio::test]
async fn unauthorized_is_not_retried() {
    let (up, _hub, session, mut tab) = setup(|_| {}).await;
    up.push(Reply::error(
        401,
        "invalid_request_error",
        "Incorrect API key provided",
    ));
    let run = ask(&mut tab, &session, "c1", "hello").await;
    let end = tab.until_run_end(&run).await;
    failed(&end, "upstream_auth", false);
    assert!(
        end["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Incorrect API key"),
        "{end}"
    );
    // The run is over, so any retry would already be in the log.
    assert_eq!(up.requests().len(), 1, "401 is not retried");
}

#[tokio::test]
async fn reset_after_first_tokens_fails_keeps_partial_and_does_not_retry() {
    let (up, hub, session, mut tab) = setup(|_| {}).await;
    let gate = Gate::default();
    up.push(Reply::Stream(vec![
        Ev::Role,
        Ev::Text("Partial ".into()),
        Ev::Text("answer".into()),
        Ev::Wait(gate.clone()),
        Ev::Reset,
    ]));
    let run = ask(&mut tab, &session, "c1", "hello").await;
    tab.recv_until(|v| v["type"] == "run.delta" && v["text"] == "answer")
        .await;
    gate.open();
    let end = tab.until_run_end(&run).await;
    let text = failed(&end, "upstream_unavailable", true);
    assert_eq!(text, "Partial answer", "partial text kept");
    let log = up.requests();
    assert_eq!(log.len(), 1, "no retry after the first token");
    assert_eq!(log[0].end, End::Reset);
    let items = hub.items(&session).await;
    assert_eq!(items[1]["status"], "failed");
    assert_eq!(
        items[1]["text"], "Partial answer",
        "the stored item keeps the partial"
    );
}

#[tokio::test]
async fn malformed_chunk_and_eof_without_done_are_protocol_errors() {
    let (up, _hub, session, mut tab) = setup(|_| {}).await;
    up.push(Reply::Stream(vec![
        Ev::Role,
        Ev::Text("Good ".into()),
        Ev::Raw("{\"id\": \"chatcmpl-x\", \"choices\": [oops".into()),
        Ev::Text("never shown".into()),
        Ev::Finish("stop"),
        Ev::Done,
    ]));
    let run = ask(&mut tab, &session, "c1", "first").await;
    let end = tab.until_run_end(&run).await;
    assert_eq!(failed(&end, "upstream_protocol", true), "Good ");
    assert!(
        end["error"]["message"]
            .as_str()
            .unwrap()
            .contains("malformed"),
        "{end}"
    );

    // A clean end of body with neither finish_reason nor [DONE] is a failure, not a reply.
    up.push(Reply::Stream(vec![
        Ev::Role,
        Ev::Text("Half ".into()),
        Ev::Text("way".into()),
    ]));
    let run = ask(&mut tab, &session, "c2", "second").await;
    let end = tab.until_run_end(&run).await;
    assert_eq!(failed(&end, "upstream_protocol", true), "Half way");
    assert!(
        end["error"]["message"]
            .as_str()
            .unwrap()
            .contains("finish_reason"),
        "{end}"
    );
    let log = up.requests();
    assert_eq!(log.len(), 2, "protocol errors are not retried");
    assert_eq!(
        log[1].end,
        End::Finished,
        "the upstream ended that body itself"
    );

    // finish_reason "length" completes the item and says it was cut.
    up.push(Reply::Stream(vec![
        Ev::Role,
        Ev::Text("Cut".into()),
        Ev::Finish("length"),
        Ev::Done,
    ]));
    let run = ask(&mut tab, &session, "c3", "third").await;
    let end = tab.until_run_end(&run).await;
    assert_eq!(end["type"], "run.completed", "{end}");
    assert_eq!(end["item"]["text"], "Cut");
    assert_eq!(end["item"]["finish_reason"], "length");
}

#[tokio::test]
async fn stalls_fail_on_their_clocks() {
    const CLOCK: Duration = Duration::from_millis(400);
    let (up, _hub, session, mut tab) = setup(|c| {
        c.first_token_timeout_ms = CLOCK.as_millis() as u64;
        c.chunk_timeout_ms = CLOCK.as_millis() as u64;
    })
    .await;

    // Before the first token: headers and a role chunk, then silence.
    up.push(Reply::Stream(vec![Ev::Role, Ev::Hang]));
    let started = Instant::now();
    let run = ask(&mut tab, &session, "c1", "first").await;
    let end = tab.until_run_end(&run).await;
    let took = started.elapsed();
    assert_eq!(failed(&end, "upstream_timeout", true), "");
    assert!(
        end["error"]["message"]
            .as_str()
            .unwrap()
            .contains("first token"),
        "{end}"
    );
    assert!(
        took >= CLOCK && took < CLOCK + Duration::from_secs(2),
        "took {took:?}"
    );
    up.wait_for("the stalled request to be closed", WAIT, |log| {
        matches!(log[0].end, End::ClientClosed(_)).then_some(())
    })
    .await;

    // Mid-stream: a token, then silence.
    up.push(Reply::Stream(vec![
        Ev::Role,
        Ev::Text("Slow ".into()),
        Ev::Hang,
    ]));
    let run = ask(&mut tab, &session, "c2", "second").await;
    tab.recv_until(|v| v["type"] == "run.delta" && v["run_id"] == run)
        .await;
    let token_seen = Instant::now();
    let end = tab.until_run_end(&run).await;
    let gap = token_seen.elapsed();
    assert_eq!(
        failed(&end, "upstream_timeout", true),
        "Slow ",
        "partial kept"
    );
    assert!(
        end["error"]["message"].as_str().unwrap().contains("middle"),
        "{end}"
    );
    assert!(
        gap >= CLOCK - Duration::from_millis(100) && gap < CLOCK + Duration::from_secs(2),
        "gap clock fired after {gap:?}"
    );
    up.wait_for("the stalled stream to be closed", WAIT, |log| {
        matches!(log[1].end, End::ClientClosed(_)).then_some(())
    })
    .await;
    assert_eq!(up.requests().len(), 2, "timeouts are not retried");
}

/// A body that starts with byte order marks (some proxies and servers write one) is read as
/// if they were not there, whole or cut across reads. Before `chunks::skip_bom` the SSE parser
/// panicked on the mark and the run failed as a false `upstream_protocol`.
#[tokio::test]
async fn a_body_starting_with_byte_order_marks_streams_normally() {
    const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];
    let (up, hub, session, mut tab) = setup(|_| {}).await;
    let reply = |marks: Vec<Ev>, words: [&str; 2]| {
        let mut evs = marks;
        evs.extend([
            Ev::Role,
            Ev::Text(words[0].into()),
            Ev::Text(words[1].into()),
            Ev::Finish("stop"),
            Ev::Done,
        ]);
        Reply::Stream(evs)
    };
    up.push(reply(vec![Ev::Bytes(BOM.to_vec())], ["Hello ", "world"]));
    up.push(reply(
        vec![
            Ev::Bytes(BOM[..1].to_vec()),
            Ev::Bytes([&BOM[1..], &BOM[..]].concat()),
        ],
        ["Twice ", "marked"],
    ));
    for (cmid, want) in [("c1", "Hello world"), ("c2", "Twice marked")] {
        let run = ask(&mut tab, &session, cmid, "hi").await;
        let end = tab.until_run_end(&run).await;
        assert_eq!(end["type"], "run.completed", "{end}");
        assert_eq!(end["item"]["text"], want, "{end}");
        assert_eq!(deltas(&tab, &run), want);
    }
    let items = hub.items(&session).await;
    assert_eq!(items[1]["text"], "Hello world");
    assert_eq!(items[3]["text"], "Twice marked");
    assert_eq!(up.requests().len(), 2, "no retry");
}
