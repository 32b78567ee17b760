//! Model choice (PROTOCOL 1.2, "Model choice"), checked on what the model server received: a
//! models file with two ids pointing at the recording upstream under different upstream names;
//! each transport's way of picking (`send.model`, ChatKit `inference_options.model`, AG-UI
//! `forwardedProps.model`) sends the picked id's upstream name, the items record the id, a
//! retry keeps it, and an unknown id is `bad_request` with nothing stored on every transport.

use crate::agui;
use crate::ck;
use crate::support;
use crate::upstream;

use std::path::Path;

use serde_json::{json, Value};
use support::{http, TestHub};
use upstream::Upstream;

fn models_file(dir: &Path, base_url: &str) -> std::path::PathBuf {
    let path = dir.join("models.toml");
    let text = format!(
        "[models.fast]\nbase_url = \"{base_url}\"\nupstream_model = \"up-fast\"\n\n\
         [models.big]\nbase_url = \"{base_url}\"\nupstream_model = \"up-big\"\nmax_output_tokens = 77\n"
    );
    std::fs::write(&path, text).expect("write the models file");
    path
}

async fn hub_with_models(up: &Upstream, dir: &Path) -> TestHub {
    let file = models_file(dir, &up.base_url);
    TestHub::start_with(|c| {
        upstream::point_hub_at(c, &up.base_url);
        c.models.models_file = Some(file);
        c.model = "fast".into();
    })
    .await
}

#[tokio::test]
async fn each_transport_picks_the_model_the_request_is_sent_with() {
    let up = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let hub = hub_with_models(&up, dir.path()).await;
    let (status, list) = hub.get_json("/v1/models").await;
    assert_eq!(status, 200);
    assert_eq!(
        list,
        json!({"models": [{"id": "big"}, {"id": "fast"}], "default": "fast"})
    );

    // Native: `send.model`, and the default when a message picks none.
    let session = hub.create_session().await;
    let mut tab = hub.ws().await;
    tab.join(&session).await;
    tab.send(json!({"type": "send", "session": session, "client_msg_id": "c1", "text": "one", "model": "big", "ref": 1}))
        .await;
    let ack = tab.recv_until(|v| v["type"] == "ack").await;
    let done = tab
        .until_run_end(ack.last().unwrap()["run_id"].as_str().unwrap())
        .await;
    assert_eq!(done["item"]["model"], "big", "{done}");
    let ack = tab.say(&session, "c2", "two").await;
    let done = tab.until_run_end(ack["run_id"].as_str().unwrap()).await;
    assert_eq!(done["item"]["model"], "fast", "{done}");
    let log = up.requests();
    assert_eq!(log[0].body["model"], "up-big");
    assert_eq!(log[0].body["max_tokens"], 77);
    assert_eq!(log[1].body["model"], "up-fast");
    assert!(log[1].body.get("max_tokens").is_none());
    let items = hub.items(&session).await;
    let models: Vec<&Value> = items.iter().map(|i| &i["model"]).collect();
    assert_eq!(
        models,
        [&json!("big"), &json!("big"), &json!("fast"), &json!("fast")]
    );

    // ChatKit: `inference_options.model`; a retry answers with the same model.
    let ck = ck::Ck::new(&hub);
    let mut input = ck::input("three");
    input["inference_options"] = json!({"model": "big"});
    let events = ck
        .stream(json!({"type": "threads.create", "params": {"input": input}}))
        .await
        .all()
        .await;
    let thread = events[0]["thread"]["id"].as_str().unwrap().to_owned();
    let user_item = events[1]["item"]["id"].as_str().unwrap().to_owned();
    assert_eq!(up.requests()[2].body["model"], "up-big");
    ck.stream(json!({"type": "threads.retry_after_item", "params": {"thread_id": thread, "item_id": user_item}}))
        .await
        .all()
        .await;
    assert_eq!(up.requests()[3].body["model"], "up-big");
    let items = hub.items(&thread).await;
    assert_eq!(items.last().unwrap()["model"], "big");

    // AG-UI: `forwardedProps.model`.
    let mut body = agui::input("t-model", "r1", json!([agui::user("m1", "four")]));
    body["forwardedProps"] = json!({"model": "big"});
    let mut s = agui::AguiStream::open(&http(), &hub.url("/agui"), &body).await;
    assert_eq!(s.rest().await.last().unwrap()["type"], "RUN_FINISHED");
    assert_eq!(up.requests()[4].body["model"], "up-big");
    assert_eq!(hub.items("t-model").await[1]["model"], "big");
}

#[tokio::test]
async fn an_unknown_model_is_bad_request_and_stores_nothing_anywhere() {
    let up = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let hub = hub_with_models(&up, dir.path()).await;
    let session = hub.create_session().await;
    let mut tab = hub.ws().await;
    let mut watcher = hub.ws().await;
    tab.join(&session).await;
    let snap = watcher.join(&session).await;

    // Native WebSocket.
    tab.send(json!({"type": "send", "session": session, "client_msg_id": "c1", "text": "hi", "model": "nope", "ref": 1}))
        .await;
    let err = tab.recv().await;
    assert_eq!(
        (err["type"].as_str(), err["code"].as_str()),
        (Some("error"), Some("bad_request")),
        "{err}"
    );
    assert!(err["message"].as_str().unwrap().contains("nope"), "{err}");
    // Native SSE fallback.
    let r = http()
        .post(hub.url(&format!("/v1/sessions/{session}/messages")))
        .json(&json!({"client_msg_id": "c2", "text": "hi", "model": "nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "bad_request"
    );
    // ChatKit, new thread and existing one.
    let ck = ck::Ck::new(&hub);
    let (_, threads_before) = ck.json(json!({"type": "threads.list", "params": {}})).await;
    let mut input = ck::input("hi");
    input["inference_options"] = json!({"model": "nope"});
    let (status, body) = ck
        .json(json!({"type": "threads.create", "params": {"input": input}}))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("bad_request"))
    );
    let (status, body) = ck
        .json(json!({"type": "threads.add_user_message", "params": {"thread_id": session, "input": input}}))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("bad_request"))
    );
    let (_, threads_after) = ck.json(json!({"type": "threads.list", "params": {}})).await;
    assert_eq!(threads_before, threads_after, "no thread was created");
    // AG-UI, new thread and the session.
    for thread in ["t-unknown", session.as_str()] {
        let mut body = agui::input(thread, "r1", json!([agui::user("m1", "hi")]));
        body["forwardedProps"] = json!({"model": "nope"});
        let r = http()
            .post(hub.url("/agui"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{thread}");
        assert_eq!(
            r.json::<Value>().await.unwrap()["error"]["code"],
            "bad_request"
        );
    }
    assert_eq!(hub.get_json("/v1/sessions/t-unknown").await.0, 404);

    // Nothing stored, no event, nothing sent upstream: the next event the watcher sees is the
    // next accepted message's, at the next seq, and its id `c1` was not kept.
    assert!(hub.items(&session).await.is_empty());
    let ack = tab.say(&session, "c1", "hi").await;
    assert_eq!(ack["type"], "ack", "{ack}");
    watcher
        .sees_only_the_accepted_message_after(&snap, &ack)
        .await;
    assert_eq!(up.requests().len(), 1);
}

#[tokio::test]
async fn a_default_model_missing_from_the_file_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let file = models_file(dir.path(), "http://127.0.0.1:9/v1");
    let mut c = sessionhub::config::Config::for_tests(dir.path().join("data"));
    upstream::point_hub_at(&mut c, "http://127.0.0.1:9/v1");
    c.models.models_file = Some(file.clone());
    c.model = "gpt-4o-mini".into();
    let err = format!("{:#}", sessionhub::build_hub(c).err().expect("refused"));
    assert!(err.contains("\"gpt-4o-mini\""), "{err}");
    assert!(err.contains("big, fast"), "names the ids: {err}");
    // The scripted agent has one model: a models file is refused with it too.
    let mut c = sessionhub::config::Config::for_tests(dir.path().join("data2"));
    c.models.models_file = Some(file);
    let err = format!("{:#}", sessionhub::build_hub(c).err().expect("refused"));
    assert!(err.contains("--models needs --agent openai"), "{err}");
}

#[tokio::test]
async fn the_scripted_agent_lists_scripted_and_accepts_only_it() {
    let hub = TestHub::start_with(|c| c.scripted_deltas = 2).await;
    let (_, list) = hub.get_json("/v1/models").await;
    assert_eq!(
        list,
        json!({"models": [{"id": "scripted"}], "default": "scripted"})
    );
    let session = hub.create_session().await;
    let mut tab = hub.ws().await;
    tab.join(&session).await;
    tab.send(json!({"type": "send", "session": session, "client_msg_id": "c1", "text": "hi", "model": "scripted", "ref": 1}))
        .await;
    let ack = tab.recv_until(|v| v["type"] == "ack").await;
    let done = tab
        .until_run_end(ack.last().unwrap()["run_id"].as_str().unwrap())
        .await;
    assert_eq!(done["item"]["model"], "scripted");
    tab.send(json!({"type": "send", "session": session, "client_msg_id": "c2", "text": "hi", "model": "gpt-4o", "ref": 2}))
        .await;
    let err = tab.recv_until(|v| v["type"] == "error").await;
    assert_eq!(err.last().unwrap()["code"], "bad_request");
    assert_eq!(hub.items(&session).await.len(), 2);
}

/// The real binary with a models file whose entries read their keys from the environment: each
/// request carries the key of the model it picked, and `--model` picks the default.
#[tokio::test]
async fn each_model_sends_the_key_its_variable_holds() {
    let up = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("models.json");
    let models = json!({"models": {
        "one": {"base_url": up.base_url, "upstream_model": "up-one", "api_key_env": "SESSIONHUB_TEST_KEY_ONE"},
        "two": {"base_url": up.base_url, "upstream_model": "up-two", "api_key_env": "SESSIONHUB_TEST_KEY_TWO"},
        "local": {"base_url": up.base_url, "upstream_model": "up-local"},
    }});
    std::fs::write(&file, models.to_string()).unwrap();
    let file = file.to_str().unwrap().to_owned();
    let hub = support::BinHub::start_with_env(
        &dir.path().join("data"),
        &["--agent", "openai", "--models", &file, "--model", "two"],
        &[
            ("SESSIONHUB_TEST_KEY_ONE", "sk-one"),
            ("SESSIONHUB_TEST_KEY_TWO", "sk-two"),
        ],
    )
    .await;
    let mut ws = support::WsClient::connect(&hub.ws_url()).await;
    let session = support::create_session(&hub.url("/v1/sessions")).await;
    ws.join(&session).await;
    for (i, model) in [None, Some("one"), Some("local")].into_iter().enumerate() {
        ws.send(
            json!({"type": "send", "session": session, "client_msg_id": format!("c{i}"),
            "text": "hi", "model": model, "ref": i}),
        )
        .await;
        let ack = ws.recv_until(|v| v["type"] == "ack").await;
        ws.until_run_end(ack.last().unwrap()["run_id"].as_str().unwrap())
            .await;
    }
    let seen: Vec<(String, Option<String>)> = up
        .requests()
        .iter()
        .map(|r| {
            (
                r.body["model"].as_str().unwrap().to_owned(),
                r.authorization.clone(),
            )
        })
        .collect();
    assert_eq!(seen[0], ("up-two".into(), Some("Bearer sk-two".into())));
    assert_eq!(seen[1], ("up-one".into(), Some("Bearer sk-one".into())));
    assert_eq!(seen[2].0, "up-local");
    assert!(
        !seen[2].1.as_deref().unwrap_or_default().contains("sk-"),
        "a model without a key sends none of the others': {:?}",
        seen[2].1
    );
    hub.kill9().await;
}
