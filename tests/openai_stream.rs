//! The OpenAI agent through the whole hub, happy paths and cancel: real WebSocket tabs, the real
//! server on 127.0.0.1:0, and the scripted OpenAI-compatible upstream of `tests/upstream`.

use crate::support;
use crate::upstream;

use std::time::Duration;

use serde_json::{json, Value};
use sessionhub::agent::openai::STOPPED_NOTE;
use support::{TestHub, WsClient};
use tokio::time::Instant;
use upstream::{echo_pieces, End, Ev, Gate, Reply, Upstream};

const WAIT: Duration = Duration::from_secs(10);

/// The run id an ack announces.
fn run_of(ack: &Value) -> String {
    assert_eq!(ack["type"], "ack", "expected an ack: {ack}");
    ack["run_id"]
        .as_str()
        .expect("ack names its run")
        .to_owned()
}

/// The concatenated `run.delta` texts a tab saw for a run.
fn deltas(tab: &WsClient, run: &str) -> String {
    tab.events
        .iter()
        .filter(|e| e["type"] == "run.delta" && e["run_id"] == run)
        .map(|e| e["text"].as_str().expect("delta text"))
        .collect()
}

#[tokio::test]
async fn normal_reply_reaches_every_tab_with_history_prompt_and_model() {
    let up = Upstream::start().await;
    let hub = TestHub::start_with(|c| upstream::point_hub_at(c, &up.base_url)).await;
    let session = hub.create_session().await;
    let mut a = hub.ws().await;
    let mut b = hub.ws().await;
    a.join(&session).await;
    b.join(&session).await;

    let first = run_of(&a.say(&session, "c1", "first question").await);
    let done_a = a.until_run_end(&first).await;
    let done_b = b.until_run_end(&first).await;
    assert_eq!(done_a, done_b, "every tab gets the same terminal event");
    let reply1 = done_a["item"]["text"].as_str().unwrap().to_owned();
    assert_eq!(reply1, echo_pieces("first question").concat());

    let second = run_of(&a.say(&session, "c2", "second question").await);
    let done_a = a.until_run_end(&second).await;
    let done_b = b.until_run_end(&second).await;
    assert_eq!(done_a["type"], "run.completed", "{done_a}");
    let reply2 = done_a["item"]["text"].as_str().unwrap().to_owned();
    let log = up.requests();
    assert_eq!(log.len(), 2, "one upstream request per run");
    assert_eq!(reply2, log[1].sent, "the tab's text is the upstream's");
    for tab in [&a, &b] {
        assert_eq!(deltas(tab, &second), reply2, "deltas add up to the item");
    }
    assert_eq!(done_b["item"]["text"], done_a["item"]["text"]);

    // The second request carried the system prompt, the history and the model.
    let body = &log[1].body;
    assert_eq!(body["model"], upstream::MODEL);
    assert_eq!(body["stream"], true);
    assert_eq!(
        body["messages"],
        json!([
            {"role": "system", "content": upstream::SYSTEM_PROMPT},
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": reply1},
            {"role": "user", "content": "second question"},
        ])
    );
    assert_eq!(log[1].authorization.as_deref(), Some("Bearer sk-scripted"));

    // Usage reported by the upstream is stored on the item and counted in /metrics.
    let usage = &done_a["item"]["usage"];
    let words = echo_pieces("second question").len() as u64;
    assert_eq!(usage["completion_tokens"], words, "{done_a}");
    assert_eq!(usage["prompt_tokens"], 7);
    let items = hub.items(&session).await;
    assert_eq!(items[3]["usage"], *usage, "usage is stored: {items:?}");
    let completion = hub.metric("sessionhub_tokens_total").await;
    let first_words = echo_pieces("first question").len() as f64;
    assert_eq!(completion, 7.0 * 2.0 + first_words + words as f64);
}

#[tokio::test]
async fn cancel_mid_stream_closes_the_upstream_connection_promptly() {
    let up = Upstream::start().await;
    let hub = TestHub::start_with(|c| upstream::point_hub_at(c, &up.base_url)).await;
    let session = hub.create_session().await;
    let mut a = hub.ws().await;
    let mut b = hub.ws().await;
    a.join(&session).await;
    b.join(&session).await;

    let mut latencies = Vec::new();
    for round in 0..5 {
        up.push(Reply::Stream(vec![
            Ev::Role,
            Ev::Text("Stream".into()),
            Ev::Text("ing ".into()),
            Ev::Hang,
        ]));
        let run = run_of(
            &a.say(&session, &format!("c{round}"), "tell me a long story")
                .await,
        );
        for tab in [&mut a, &mut b] {
            tab.recv_until(|v| {
                v["type"] == "run.delta" && v["run_id"] == run && v["text"] == "ing "
            })
            .await;
        }
        let n = up.requests().len() - 1;
        let sent_at = Instant::now();
        a.send(json!({"type": "cancel", "session": session, "run_id": run}))
            .await;
        let closed_at = up
            .wait_for(
                "the hub to close the upstream connection",
                WAIT,
                |log| match log[n].end {
                    End::ClientClosed(at) => Some(at),
                    _ => None,
                },
            )
            .await;
        latencies.push(closed_at.saturating_duration_since(sent_at));
        for tab in [&mut a, &mut b] {
            let end = tab.until_run_end(&run).await;
            assert_eq!(end["type"], "run.cancelled", "{end}");
            assert_eq!(end["item"]["status"], "cancelled");
            assert_eq!(end["item"]["text"], "Streaming ", "partial text kept");
        }
    }
    latencies.sort();
    let ms: Vec<f64> = latencies.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    eprintln!(
        "cancel frame sent -> upstream saw the connection close, 5 rounds (ms, sorted): {ms:.2?}"
    );
    assert!(
        latencies[2] < Duration::from_millis(100),
        "median cancel-to-upstream-close {:?} is over 100 ms",
        latencies[2]
    );
    assert!(
        latencies[4] < Duration::from_secs(1),
        "worst {:?}",
        latencies[4]
    );

    // The next request sends the cancelled replies with their partial text and the note.
    let run = run_of(&a.say(&session, "after", "are you there").await);
    assert_eq!(a.until_run_end(&run).await["type"], "run.completed");
    let log = up.requests();
    let messages = log.last().unwrap().body["messages"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(
        messages[2],
        json!({"role": "assistant", "content": format!("Streaming \n\n{STOPPED_NOTE}")})
    );
    assert_eq!(
        messages.len(),
        1 + 2 * 5 + 1,
        "system, 5 pairs, the new question"
    );
}

#[tokio::test]
async fn fifty_concurrent_sessions_stream_to_completion() {
    const SESSIONS: usize = 50;
    let up = Upstream::start().await;
    up.set_echo_delay(Duration::from_millis(5));
    let hub = TestHub::start_with(|c| upstream::point_hub_at(c, &up.base_url)).await;
    let started = Instant::now();
    let mut tabs = Vec::new();
    for k in 0..SESSIONS {
        let session = hub.create_session().await;
        let mut tab = hub.ws().await;
        tab.join(&session).await;
        tabs.push((k, session, tab));
    }
    // A gate holds every reply until all 50 requests are in flight, so they truly overlap.
    let gate = Gate::default();
    up.set_echo_gate(gate.clone());
    let tasks = {
        let tasks: Vec<_> = tabs
            .into_iter()
            .map(|(k, session, mut tab)| {
                tokio::spawn(async move {
                    let text = format!("session {k} asks question number {k}");
                    let run = run_of(&tab.say(&session, "c", &text).await);
                    let end = tab.until_run_end(&run).await;
                    (text, run, end, tab)
                })
            })
            .collect();
        up.wait_for("all requests in flight", WAIT, |log| {
            (log.len() == SESSIONS).then_some(())
        })
        .await;
        gate.open();
        tasks
    };
    let mut done = Vec::new();
    for t in tasks {
        done.push(t.await.expect("tab task"));
    }
    let elapsed = started.elapsed();
    let log = up.requests();
    assert_eq!(log.len(), SESSIONS);
    for (text, run, end, tab) in &done {
        assert_eq!(end["type"], "run.completed", "{end}");
        let upstream_text = log
            .iter()
            .find(|r| r.last_user_text() == *text)
            .map(|r| r.sent.clone())
            .expect("the upstream saw this session's request");
        assert_eq!(upstream_text, echo_pieces(text).concat());
        assert_eq!(end["item"]["text"], upstream_text.as_str());
        assert_eq!(
            deltas(tab, run),
            upstream_text,
            "the tab's deltas are the upstream's text"
        );
    }
    assert!(log.iter().all(|r| r.end == End::Finished));
    eprintln!("{SESSIONS} sessions streamed through the OpenAI agent in {elapsed:?}");
}

#[tokio::test]
async fn openai_agent_without_key_is_a_startup_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = tokio::time::timeout(
        WAIT,
        tokio::process::Command::new(env!("CARGO_BIN_EXE_sessionhub"))
            .args(["--agent", "openai", "--addr", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .env_remove("OPENAI_API_KEY")
            .env_remove("OPENAI_BASE_URL")
            .output(),
    )
    .await
    .expect("exits in time")
    .expect("runs");
    assert!(!out.status.success(), "must refuse to start");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("OPENAI_API_KEY"),
        "clear message, got: {stderr}"
    );

    // A local server that needs no key is accepted.
    let mut config = sessionhub::config::Config::for_tests(dir.path());
    upstream::point_hub_at(&mut config, "http://127.0.0.1:9/v1");
    config.openai_api_key = None;
    assert!(sessionhub::build_agent(&config).is_ok());
}
