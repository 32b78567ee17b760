//! Issue 8, negative table continued: ES256 and JWKS keys, single-use tickets (reused,
//! expired, made-up, without Origin, on the wrong route), anonymous development origins, and
//! the 1008 close when a token expires during a WebSocket connection.

use crate::auth_support;
use crate::support;

use auth_support::*;
use jsonwebtoken::Algorithm;
use serde_json::json;
use sessionhub::config::JwtAlg;
use support::TestHub;

#[tokio::test]
async fn es256_and_jwks_keys_verify_their_tokens_only() {
    let dir = tempfile::tempdir().expect("dir");
    let ec = key_pair(dir.path(), JwtAlg::Es256);
    let hub = TestHub::start_with(|c| {
        c.auth_public_key = Some(ec.public_path.clone());
        c.auth_alg = Some(JwtAlg::Es256);
        c.auth_issuer = Some(ISSUER.into());
        c.auth_audience = Some(AUDIENCE.into());
    })
    .await;
    let (status, _) = call(
        &hub,
        "GET",
        "/v1/sessions",
        Some(&ec.token(&claims("erin"))),
        None,
        None,
    )
    .await;
    assert_eq!(status, 200, "ES256 token");
    let (status, _) = call(
        &hub,
        "GET",
        "/v1/sessions",
        Some(&token("erin")),
        None,
        None,
    )
    .await;
    assert_eq!(status, 401, "HS256 token on an ES256 hub");

    // A JWKS with two RSA keys: the token's `kid` picks one; an unknown `kid` is refused.
    let a = key_pair(dir.path(), JwtAlg::Rs256);
    let b_dir = tempfile::tempdir().expect("dir");
    let b = key_pair(b_dir.path(), JwtAlg::Rs256);
    let jwk = |k: &KeyPair, kid: &str| {
        let mut j = serde_json::to_value(
            jsonwebtoken::jwk::Jwk::from_encoding_key(&k.encoding_key(), Algorithm::RS256)
                .expect("jwk"),
        )
        .expect("json");
        j["kid"] = json!(kid);
        j["use"] = json!("sig");
        j
    };
    let jwks = dir.path().join("jwks.json");
    std::fs::write(
        &jwks,
        json!({"keys": [jwk(&a, "key-a"), jwk(&b, "key-b")]}).to_string(),
    )
    .expect("write jwks");
    let hub = TestHub::start_with(|c| {
        c.auth_jwks = Some(jwks.clone());
        c.auth_alg = Some(JwtAlg::Rs256);
        c.auth_issuer = Some(ISSUER.into());
        c.auth_audience = Some(AUDIENCE.into());
    })
    .await;
    let with_kid = |k: &KeyPair, kid: Option<&str>| {
        let mut h = jsonwebtoken::Header::new(Algorithm::RS256);
        h.kid = kid.map(str::to_owned);
        jsonwebtoken::encode(&h, &claims("jo"), &k.encoding_key()).expect("sign")
    };
    for (case, token, status) in [
        ("kid a", with_kid(&a, Some("key-a")), 200),
        ("kid b", with_kid(&b, Some("key-b")), 200),
        ("key a named as b", with_kid(&a, Some("key-b")), 401),
        ("unknown kid", with_kid(&a, Some("key-c")), 401),
        ("no kid with two keys", with_kid(&a, None), 401),
    ] {
        let (got, body) = call(&hub, "GET", "/v1/sessions", Some(&token), None, None).await;
        assert_eq!(got, status, "{case}: {body}");
    }
}

#[tokio::test]
async fn tickets_work_once_and_expire() {
    let hub = start(|c| c.ws_ticket_secs = 1).await;
    let alice = token("alice");
    let session = create_session(&hub, &alice).await;
    let origin = [("origin", APP_ORIGIN)];

    let t = ticket(&hub, &alice).await;
    let mut ws = ws_open(&hub, &format!("?ticket={t}"), &origin)
        .await
        .expect("first use");
    ws.join(&session).await;
    assert_eq!(
        ws_open(&hub, &format!("?ticket={t}"), &origin).await.err(),
        Some(401),
        "reused ticket"
    );

    let t = ticket(&hub, &alice).await;
    // Let the one-second ticket lapse: the hub's clock moves on, nobody sleeps.
    let_time_pass(std::time::Duration::from_millis(1300)).await;
    assert_eq!(
        ws_open(&hub, &format!("?ticket={t}"), &origin).await.err(),
        Some(401),
        "expired ticket"
    );

    // A ticket is for browsers: without Origin the upgrade is refused (and the ticket burnt
    // or not, a bearer header is the way for other clients).
    let t = ticket(&hub, &alice).await;
    assert_eq!(
        ws_open(&hub, &format!("?ticket={t}"), &[]).await.err(),
        Some(403),
        "ticket without Origin"
    );
    assert_eq!(
        ws_open(&hub, "?ticket=00ff", &origin).await.err(),
        Some(401),
        "made-up ticket"
    );

    // The SSE events stream accepts a ticket too (a same-origin EventSource sends no Origin).
    let t = ticket(&hub, &alice).await;
    let (status, first) = call_raw(
        &hub,
        "GET",
        &format!("/v1/sessions/{session}/events?ticket={t}"),
        None,
        None,
        None,
    )
    .await;
    assert_eq!(status, 200, "{first}");
    assert!(first.contains("snapshot"), "{first}");
    let (status, _) = call_raw(
        &hub,
        "GET",
        &format!("/v1/sessions/{session}/events?ticket={t}"),
        None,
        None,
        None,
    )
    .await;
    assert_eq!(status, 401, "reused ticket on SSE");

    // Tickets only count where they are accepted: REST wants the bearer header.
    let t = ticket(&hub, &alice).await;
    let (status, _) = call(
        &hub,
        "GET",
        &format!("/v1/sessions?ticket={t}"),
        None,
        None,
        None,
    )
    .await;
    assert_eq!(status, 401, "ticket on a REST route");
    // A ticket cannot mint tickets, and an anonymous caller cannot mint one at all.
    let (status, _) = call(
        &hub,
        "POST",
        &format!("/v1/ws-ticket?ticket={t}"),
        None,
        None,
        None,
    )
    .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn anonymous_mode_refuses_foreign_origins_but_serves_its_own_loopback_page() {
    let hub = TestHub::start().await;
    let own = format!("http://{}", hub.addr);
    assert!(
        ws_open(&hub, "", &[("origin", &own)]).await.is_ok(),
        "the bundled page's own origin"
    );
    assert!(
        ws_open(&hub, "", &[]).await.is_ok(),
        "no Origin in development"
    );
    for origin in [
        "https://evil.example",
        "null",
        &format!("http://{}.evil.example", hub.addr),
    ] {
        assert_eq!(
            ws_open(&hub, "", &[("origin", origin)]).await.err(),
            Some(403),
            "{origin}"
        );
        let (status, _) = call(
            &hub,
            "POST",
            "/v1/sessions",
            None,
            Some(origin),
            Some(&json!({})),
        )
        .await;
        assert_eq!(status, 403, "{origin}");
    }
}

#[tokio::test]
async fn a_websocket_closes_with_1008_when_its_token_expires() {
    // A leeway of 0 so the short token is still valid when it is presented.
    let hub = start(|c| c.auth_leeway_secs = 0).await;
    let mut c = claims("alice");
    c["exp"] = json!(now() + 2);
    let short = hs256(&c);
    let mut ws = ws_as(&hub, &short).await;
    ws.send(json!({"type": "ping", "ref": 1})).await;
    assert_eq!(ws.recv().await["type"], "pong");
    assert_eq!(
        ws.until_close().await,
        Some(1008),
        "bearer connection at the token's exp"
    );

    // Through a ticket the connection keeps the token's exp.
    let mut c = claims("alice");
    c["exp"] = json!(now() + 2);
    let short = hs256(&c);
    let t = ticket(&hub, &short).await;
    let mut ws = ws_open(&hub, &format!("?ticket={t}"), &[("origin", APP_ORIGIN)])
        .await
        .expect("ticket");
    assert_eq!(
        ws.until_close().await,
        Some(1008),
        "ticket connection at the token's exp"
    );
    // A far-future `exp` (year 33658) is served, with no timer overflow.
    let mut c = claims("alice");
    c["exp"] = json!(1_000_000_000_000u64);
    let mut ws = ws_as(&hub, &hs256(&c)).await;
    ws.send(json!({"type": "ping", "ref": 2})).await;
    assert_eq!(ws.recv().await["type"], "pong");
}
