//! Context into the agent (PROTOCOL 1.2, "Context"), checked on what the model server really
//! received: for each transport's way of passing context (native `send.context`, ChatKit
//! `metadata`, `quoted_text` and tag data, AG-UI `context` and `forwardedProps`, the session's
//! REST metadata, the caller's token claims), the recorded upstream request holds it exactly
//! once, as its own system message just before its user message; no transport shows it as
//! message text; and a context over 16 KiB is `too_large` on every transport and stores
//! nothing.

use crate::agui;
use crate::auth_support;
use crate::ck;
use crate::support;
use crate::upstream;

use serde_json::{json, Value};
use sessionhub::agent::openai::CONTEXT_PREFIX;
use support::{http, TestHub};
use upstream::Upstream;

/// The context the model got with the user message `text` in a recorded request body: there
/// must be exactly one context message in the whole request for that message, right before it.
fn context_for(body: &Value, text: &str) -> Value {
    let msgs = body["messages"].as_array().expect("messages");
    let at = msgs
        .iter()
        .position(|m| m["role"] == "user" && m["content"] == text)
        .unwrap_or_else(|| panic!("no user message {text:?} in {body}"));
    let before = &msgs[at - 1];
    assert_eq!(
        before["role"], "system",
        "context right before {text:?}: {body}"
    );
    let content = before["content"].as_str().expect("text");
    let json = content
        .strip_prefix(CONTEXT_PREFIX)
        .unwrap_or_else(|| panic!("not a context message: {content}"));
    json.parse().expect("context JSON")
}

/// Context messages in a request: one per user message that has context, never more.
fn context_messages(body: &Value) -> usize {
    body["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter(|m| {
            m["role"] == "system"
                && m["content"]
                    .as_str()
                    .is_some_and(|c| c.starts_with(CONTEXT_PREFIX))
        })
        .count()
}

fn no_context_in_text(items: &[Value], needle: &str) {
    for item in items {
        assert!(
            !item["text"].as_str().unwrap_or_default().contains(needle),
            "context shown as text: {item}"
        );
    }
}

async fn patch_metadata(hub: &TestHub, session: &str, metadata: Value) {
    let r = http()
        .patch(hub.url(&format!("/v1/sessions/{session}")))
        .json(&json!({ "metadata": metadata }))
        .send()
        .await
        .expect("PATCH");
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn native_context_and_session_metadata_go_once_as_their_own_message() {
    let up = Upstream::start().await;
    let hub = TestHub::start_with(|c| upstream::point_hub_at(c, &up.base_url)).await;
    let session = hub.create_session().await;
    patch_metadata(&hub, &session, json!({"plan": "pro"})).await;
    let mut tab = hub.ws().await;
    tab.join(&session).await;

    tab.send(
        json!({"type": "send", "session": session, "client_msg_id": "c1",
        "text": "what plan?", "context": {"page": "/pricing"}}),
    )
    .await;
    let msg = tab.recv_until(|v| v["type"] == "message").await;
    let item = &msg.last().unwrap()["item"];
    assert_eq!(item["text"], "what plan?");
    // Native `context` keeps its 1.1 meaning; the other sources sit beside it.
    assert_eq!(item["context"], json!({"page": "/pricing"}));
    assert_eq!(
        item["context_sources"],
        json!({"session_metadata": {"plan": "pro"}})
    );
    let run = tab.recv_until(|v| v["type"] == "run.started").await;
    let run = run.last().unwrap()["run_id"].as_str().unwrap().to_owned();
    tab.until_run_end(&run).await;

    // A second message without context: the first keeps its context, once, before it.
    let ack = tab.say(&session, "c2", "and then?").await;
    tab.until_run_end(ack["run_id"].as_str().unwrap()).await;
    let log = up.requests();
    assert_eq!(log.len(), 2);
    assert_eq!(
        context_for(&log[0].body, "what plan?"),
        json!({"context": {"page": "/pricing"}, "session_metadata": {"plan": "pro"}})
    );
    assert_eq!(context_messages(&log[0].body), 1, "{}", log[0].body);
    assert_eq!(
        context_for(&log[1].body, "what plan?"),
        context_for(&log[0].body, "what plan?"),
        "the stored context is what later turns send"
    );
    assert_eq!(
        context_for(&log[1].body, "and then?"),
        json!({"session_metadata": {"plan": "pro"}})
    );
    assert_eq!(context_messages(&log[1].body), 2, "{}", log[1].body);

    // Never message text: native listing and snapshot, and ChatKit's view of the thread.
    let items = hub.items(&session).await;
    no_context_in_text(&items, "pricing");
    let mut other = hub.ws().await;
    let snap = other.join(&session).await;
    no_context_in_text(snap["items"].as_array().unwrap(), "pricing");
    let ck = ck::Ck::new(&hub);
    let listed = ck.items(&session, 50).await;
    let texts: Vec<&Value> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == "user_message")
        .map(|i| &i["content"])
        .collect();
    assert_eq!(
        texts,
        vec![
            &json!([{"type": "input_text", "text": "what plan?"}]),
            &json!([{"type": "input_text", "text": "and then?"}])
        ]
    );
}

#[tokio::test]
async fn chatkit_metadata_quoted_text_and_tags_reach_the_model_once() {
    let up = Upstream::start().await;
    let hub = TestHub::start_with(|c| upstream::point_hub_at(c, &up.base_url)).await;
    let ck = ck::Ck::new(&hub);
    let events = ck
        .stream(json!({"type": "threads.create", "metadata": {"tz": "Europe/Paris"},
            "params": {"input": {
                "content": [{"type": "input_text", "text": "Tell me about "},
                            {"type": "input_tag", "id": "t1", "text": "@Pro", "data": {"plan_id": "pro"}, "interactive": false}],
                "attachments": [], "quoted_text": "the Pro plan costs 20", "inference_options": {}}}}))
        .await
        .all()
        .await;
    let thread = events[0]["thread"]["id"].as_str().unwrap().to_owned();
    assert_eq!(events.last().unwrap()["type"], "thread.item.done");
    let log = up.requests();
    assert_eq!(log.len(), 1);
    assert_eq!(
        context_for(&log[0].body, "Tell me about @Pro"),
        json!({"chatkit_metadata": {"tz": "Europe/Paris"},
               "quoted_text": "the Pro plan costs 20",
               "tags": [{"id": "t1", "text": "@Pro", "data": {"plan_id": "pro"}}]})
    );
    assert_eq!(context_messages(&log[0].body), 1);
    // The thread's items show the message as the user wrote it, nothing more.
    let listed = ck.items(&thread, 50).await;
    assert_eq!(
        listed["data"][0]["content"],
        json!([{"type": "input_text", "text": "Tell me about @Pro"}])
    );
    no_context_in_text(&hub.items(&thread).await, "20");
}

#[tokio::test]
async fn agui_context_entries_and_forwarded_props_reach_the_model_once() {
    let up = Upstream::start().await;
    let hub = TestHub::start_with(|c| upstream::point_hub_at(c, &up.base_url)).await;
    let mut body = agui::input("t-ctx", "r1", json!([agui::user("m1", "where am I?")]));
    body["context"] = json!([{"description": "current page", "value": "/pricing"}]);
    body["forwardedProps"] = json!({"locale": "fr"});
    let mut s = agui::AguiStream::open(&http(), &hub.url("/agui"), &body).await;
    assert_eq!(s.rest().await.last().unwrap()["type"], "RUN_FINISHED");
    let log = up.requests();
    assert_eq!(
        context_for(&log[0].body, "where am I?"),
        json!({"agui_context": [{"description": "current page", "value": "/pricing"}],
               "forwarded_props": {"locale": "fr"}})
    );
    assert_eq!(context_messages(&log[0].body), 1);

    // The client resends the whole conversation: the old message is not stored again, and its
    // context still goes once.
    let mut body = agui::input(
        "t-ctx",
        "r2",
        json!([agui::user("m1", "where am I?"), {"id": "a1", "role": "assistant", "content": log[0].sent},
               agui::user("m2", "and now?")]),
    );
    body["context"] = json!([{"description": "current page", "value": "/checkout"}]);
    let mut s = agui::AguiStream::open(&http(), &hub.url("/agui"), &body).await;
    assert_eq!(s.rest().await.last().unwrap()["type"], "RUN_FINISHED");
    let log = up.requests();
    assert_eq!(context_messages(&log[1].body), 2, "{}", log[1].body);
    assert_eq!(
        context_for(&log[1].body, "and now?")["agui_context"][0]["value"],
        "/checkout"
    );
    no_context_in_text(&hub.items("t-ctx").await, "/checkout");
}

#[tokio::test]
async fn token_claims_named_by_context_claims_are_the_identity() {
    let up = Upstream::start().await;
    let hub = auth_support::start(|c| {
        upstream::point_hub_at(c, &up.base_url);
        c.models.context_claims = vec!["email".into(), "org".into()];
    })
    .await;
    let mut claims = auth_support::claims("u-42");
    claims["email"] = json!("ada@example.test");
    claims["org"] = json!({"id": "o1"});
    claims["secret_stuff"] = json!("not named");
    let token = auth_support::hs256(&claims);
    let r = http()
        .post(hub.url("/v1/sessions"))
        .bearer_auth(&token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let session = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = http()
        .post(hub.url(&format!("/v1/sessions/{session}/messages")))
        .bearer_auth(&token)
        .json(&json!({"client_msg_id": "c1", "text": "who am I?"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    let log = up
        .wait_for("the request", std::time::Duration::from_secs(10), |log| {
            log.first().cloned()
        })
        .await;
    assert_eq!(
        context_for(&log.body, "who am I?"),
        json!({"identity": {"sub": "u-42", "claims": {"email": "ada@example.test", "org": {"id": "o1"}}}})
    );
    assert_eq!(context_messages(&log.body), 1);

    // A browser's WebSocket opened with a ticket carries the same identity.
    let ticket = auth_support::ticket(&hub, &token).await;
    let mut ws = auth_support::ws_open(
        &hub,
        &format!("?ticket={ticket}"),
        &[("origin", auth_support::APP_ORIGIN)],
    )
    .await
    .expect("upgrade");
    ws.join(&session).await;
    let ack = ws.say(&session, "c2", "and on the socket?").await;
    ws.until_run_end(ack["run_id"].as_str().unwrap()).await;
    let last = up.requests().pop().unwrap();
    assert_eq!(
        context_for(&last.body, "and on the socket?"),
        context_for(&last.body, "who am I?")
    );
}

/// A context of about `bytes` bytes.
fn big(bytes: usize) -> Value {
    json!({"blob": "x".repeat(bytes)})
}

#[tokio::test]
async fn too_large_context_is_refused_on_every_transport_and_stores_nothing() {
    let up = Upstream::start().await;
    let hub = TestHub::start_with(|c| {
        upstream::point_hub_at(c, &up.base_url);
    })
    .await;

    // Native: 10 KiB of context and 8 KiB of session metadata are over 16 KiB together.
    let session = hub.create_session().await;
    patch_metadata(&hub, &session, big(8 * 1024)).await;
    let mut tab = hub.ws().await;
    let mut watcher = hub.ws().await;
    tab.join(&session).await;
    let snap = watcher.join(&session).await;
    tab.send(
        json!({"type": "send", "session": session, "client_msg_id": "c1", "ref": 1,
        "text": "hi", "context": big(10 * 1024)}),
    )
    .await;
    let err = tab.recv().await;
    assert_eq!(err["type"], "error", "{err}");
    assert_eq!(err["code"], "too_large", "{err}");
    assert!(hub.items(&session).await.is_empty());
    // No event: the next one the watcher sees is the next message's, at the next seq.
    let ack = tab.say(&session, "c1", "hi").await;
    assert_eq!(ack["type"], "ack", "the refused id was not kept: {ack}");
    watcher
        .sees_only_the_accepted_message_after(&snap, &ack)
        .await;

    // ChatKit: over the bound on a new thread (no thread is left) and on an existing one.
    let ck = ck::Ck::new(&hub);
    let (_, before) = ck.json(json!({"type": "threads.list", "params": {}})).await;
    let over = |kind: &str, params: Value| json!({"type": kind, "metadata": big(17 * 1024), "params": params});
    let (status, body) = ck
        .json(over("threads.create", json!({"input": ck::input("hi")})))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (413, Some("too_large"))
    );
    let (_, after) = ck.json(json!({"type": "threads.list", "params": {}})).await;
    assert_eq!(before, after, "no thread was created");
    let (status, body) = ck
        .json(over(
            "threads.add_user_message",
            json!({"thread_id": session, "input": ck::input("more")}),
        ))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (413, Some("too_large"))
    );
    // Under the bound alone, over it with the session's metadata: refused by the session.
    let (status, body) = ck
        .json(
            json!({"type": "threads.add_user_message", "metadata": big(9 * 1024),
            "params": {"thread_id": session, "input": ck::input("more")}}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (413, Some("too_large"))
    );
    assert_eq!(hub.items(&session).await.len(), 2, "nothing stored");

    // AG-UI: on a new thread (none is created) and on the session.
    let mut body = agui::input("t-big", "r1", json!([agui::user("m1", "hi")]));
    body["context"] = json!([{"description": "d", "value": "x".repeat(17 * 1024)}]);
    let (status, answer) = hub.post_json("/agui", &body).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (413, Some("too_large"))
    );
    assert_eq!(hub.get_json("/v1/sessions/t-big").await.0, 404);
    let mut body = agui::input(&session, "r2", json!([agui::user("m2", "hi")]));
    body["forwardedProps"] = big(9 * 1024);
    let (status, answer) = hub.post_json("/agui", &body).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (413, Some("too_large"))
    );
    assert_eq!(hub.items(&session).await.len(), 2, "nothing stored");
    // Only the accepted message ever reached the model.
    assert_eq!(up.requests().len(), 1);
}
