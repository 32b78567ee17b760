//! Issue 8, "what must be shown" 3: each per-user and per-client limit triggers
//! (`rate_limited` / 429, never a hang) and recovers, and anonymous loopback development has no
//! per-user limits (PROTOCOL.md "Limits"). Bodies and floods: auth_flood.rs.

use crate::auth_support;
use crate::support;

use std::time::Duration;

use auth_support::*;
use serde_json::{json, Value};
use support::TestHub;

/// The wait a `rate_limited` message advertises ("retry in N ms").
fn advertised_wait(err: &Value) -> Duration {
    let msg = err["message"].as_str().unwrap_or_default();
    let ms = msg
        .rsplit("retry in ")
        .next()
        .and_then(|t| t.trim_end_matches(" ms").parse::<u64>().ok());
    Duration::from_millis(ms.unwrap_or_else(|| panic!("no wait in {err}")) + 50)
}

#[tokio::test]
async fn connections_per_user_trigger_and_recover() {
    let hub = start(|c| c.max_conns_per_user = 2).await;
    let (alice, bob) = (token("alice"), token("bob"));
    let s = create_session(&hub, &alice).await;
    let bearer = format!("Bearer {alice}");
    let first = ws_as(&hub, &alice).await;
    let _second = ws_as(&hub, &alice).await;
    assert_eq!(
        ws_open(&hub, "", &[("authorization", &bearer)]).await.err(),
        Some(429),
        "third WebSocket"
    );
    let (status, body) = call(
        &hub,
        "GET",
        &format!("/v1/sessions/{s}/events"),
        Some(&alice),
        None,
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (429, Some("rate_limited")),
        "an SSE stream counts too"
    );
    // Another user is not affected.
    ws_as(&hub, &bob).await;
    // Closing one frees its slot (the server notices the close asynchronously).
    let mut first = first;
    first.ws.close(None).await.expect("close");
    first.until_close().await;
    eventually("a freed connection slot", || async {
        ws_open(&hub, "", &[("authorization", &bearer)])
            .await
            .is_ok()
    })
    .await;
}

#[tokio::test]
async fn subscriptions_per_connection_trigger_and_recover() {
    let hub = start(|c| c.max_subscriptions = 2).await;
    let alice = token("alice");
    let ids = [
        create_session(&hub, &alice).await,
        create_session(&hub, &alice).await,
        create_session(&hub, &alice).await,
    ];
    let mut ws = ws_as(&hub, &alice).await;
    ws.join(&ids[0]).await;
    ws.join(&ids[1]).await;
    ws.send(json!({"type": "subscribe", "session": ids[2], "ref": "third"}))
        .await;
    assert_eq!(ws.recv().await["code"], "rate_limited");
    ws.send(json!({"type": "unsubscribe", "session": ids[0], "ref": "u"}))
        .await;
    assert_eq!(ws.recv().await["type"], "unsubscribed");
    ws.join(&ids[2]).await;
}

#[tokio::test]
async fn messages_per_user_trigger_and_recover_and_duplicates_are_free() {
    let hub = start(|c| {
        c.user_messages_per_min = 60;
        c.user_message_burst = 3;
    })
    .await;
    let (alice, bob) = (token("alice"), token("bob"));
    let s = create_session(&hub, &alice).await;
    let mut ws = ws_as(&hub, &alice).await;
    ws.join(&s).await;
    for n in 0..3 {
        assert_eq!(ws.say(&s, &format!("m{n}"), "hi").await["type"], "ack");
    }
    let refused = ws.say(&s, "m3", "hi").await;
    assert_eq!(refused["code"], "rate_limited", "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .expect("message")
            .contains("messages"),
        "{refused}"
    );
    // A duplicate is acknowledged again at no cost (AG-UI resends its whole history).
    let dup = ws.say(&s, "m0", "hi").await;
    assert_eq!(
        (dup["type"].as_str(), dup["duplicate"].as_bool()),
        (Some("ack"), Some(true)),
        "{dup}"
    );
    // Over REST too, with 429; the refused message stored nothing.
    let (status, body) = call(
        &hub,
        "POST",
        &format!("/v1/sessions/{s}/messages"),
        Some(&alice),
        None,
        Some(&json!({"client_msg_id": "r1", "text": "hi"})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (429, Some("rate_limited"))
    );
    let (_, items) = call(
        &hub,
        "GET",
        &format!("/v1/sessions/{s}/items?limit=200"),
        Some(&alice),
        None,
        None,
    )
    .await;
    let users = items["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|i| i["role"] == "user")
        .count();
    assert_eq!(users, 3, "only the admitted messages are stored");
    // Bob has his own budget.
    let sb = create_session(&hub, &bob).await;
    let (status, _) = call(
        &hub,
        "POST",
        &format!("/v1/sessions/{sb}/messages"),
        Some(&bob),
        None,
        Some(&json!({"client_msg_id": "b1", "text": "hi"})),
    )
    .await;
    assert_eq!(status, 200);
    // After the advertised wait, one more message fits.
    let_time_pass(advertised_wait(&body["error"])).await;
    assert_eq!(ws.say(&s, "m4", "hi").await["type"], "ack");
}

#[tokio::test]
async fn runs_per_user_trigger_and_recover() {
    let hub = start(|c| {
        // One run a minute after a burst of two: no token comes back while the test runs, however
        // slow the machine; the advertised wait is let pass on tokio's clock.
        c.user_runs_per_min = 1;
        c.user_run_burst = 2;
    })
    .await;
    let alice = token("alice");
    let s = create_session(&hub, &alice).await;
    let send = |cmid: &'static str| {
        let (hub, alice, s) = (&hub, &alice, &s);
        async move {
            call(
                hub,
                "POST",
                &format!("/v1/sessions/{s}/messages"),
                Some(alice),
                None,
                Some(&json!({"client_msg_id": cmid, "text": "hi"})),
            )
            .await
        }
    };
    assert_eq!(send("a").await.0, 200);
    assert_eq!(send("b").await.0, 200);
    let (status, body) = send("c").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (429, Some("rate_limited")),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .expect("message")
            .contains("runs"),
        "{body}"
    );
    // A ChatKit retry starts a run too, and is refused the same way. It is tried once both runs
    // have ended: a retry while a run streams is refused as busy (409) before any quota is asked.
    let items = || async {
        call(
            &hub,
            "GET",
            &format!("/v1/sessions/{s}/items"),
            Some(&alice),
            None,
            None,
        )
        .await
        .1
    };
    eventually("both runs to end", || async {
        let items = items().await;
        let items = items["items"].as_array().cloned().unwrap_or_default();
        items.len() == 4 && items.iter().all(|i| i["status"] == "complete")
    })
    .await;
    let items = items().await;
    let first_user_item = items["items"][0]["id"].as_str().expect("item").to_owned();
    let (status, _) = call(&hub, "POST", "/chatkit", Some(&alice), None, Some(&json!({"type": "threads.retry_after_item", "params": {"thread_id": s, "item_id": first_user_item}}))).await;
    assert_eq!(status, 429);
    let_time_pass(advertised_wait(&body["error"])).await;
    assert_eq!(send("d").await.0, 200);
}

#[tokio::test]
async fn http_rate_per_client_triggers_with_retry_after_and_recovers() {
    let hub = start(|c| {
        // A burst of 5, then one request a second: slow enough that a burst is never refilled
        // while the test makes it.
        c.http_rate_per_sec = 1;
        c.http_burst = 5;
    })
    .await;
    let (alice, bob) = (token("alice"), token("bob"));
    for _ in 0..5 {
        assert_eq!(
            call(&hub, "GET", "/v1/sessions", Some(&alice), None, None)
                .await
                .0,
            200
        );
    }
    let r = support::http()
        .get(hub.url("/v1/sessions"))
        .bearer_auth(&alice)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 429);
    let retry_after: u64 = r.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert_eq!(retry_after, 1, "Retry-After");
    // Keyed by user: Bob is served.
    assert_eq!(
        call(&hub, "GET", "/v1/sessions", Some(&bob), None, None)
            .await
            .0,
        200
    );
    // Failed logins are keyed by peer address: a token-guessing flood is cut too...
    let mut codes = Vec::new();
    for _ in 0..8 {
        codes.push(
            call(&hub, "GET", "/v1/sessions", Some("guess"), None, None)
                .await
                .0,
        );
    }
    assert!(
        codes.starts_with(&[401, 401, 401, 401, 401, 429]),
        "{codes:?}"
    );
    // ...without locking out users with valid tokens from the same address.
    assert_eq!(
        call(&hub, "GET", "/v1/sessions", Some(&bob), None, None)
            .await
            .0,
        200
    );
    let_time_pass(Duration::from_secs(retry_after) + Duration::from_millis(100)).await;
    assert_eq!(
        call(&hub, "GET", "/v1/sessions", Some(&alice), None, None)
            .await
            .0,
        200,
        "recovered"
    );
}

#[tokio::test]
async fn anonymous_loopback_development_has_no_per_user_limits() {
    let hub = TestHub::start_with(|c| {
        c.max_conns_per_user = 1;
        c.user_messages_per_min = 1;
        c.user_message_burst = 1;
        c.http_rate_per_sec = 1;
        c.http_burst = 1;
    })
    .await;
    let s = hub.create_session().await;
    let mut tabs = Vec::new();
    for _ in 0..3 {
        tabs.push(hub.ws().await);
    }
    tabs[0].join(&s).await;
    for n in 0..3 {
        assert_eq!(tabs[0].say(&s, &format!("m{n}"), "hi").await["type"], "ack");
    }
    for _ in 0..5 {
        assert_eq!(hub.get_json("/v1/sessions").await.0, 200);
    }
}
