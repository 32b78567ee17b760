//! Issue 8, "what must be shown" 1: the negative table. Every bad credential and every bad
//! Origin is refused, through the real WebSocket handshake and on every HTTP entry point, with
//! the right status; nothing changes; the same requests with a good token are served (so the
//! table can fail).

mod auth_support;
mod support;

use auth_support::*;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{json, Value};
use sessionhub::config::JwtAlg;
use support::TestHub;

/// Every HTTP entry point that needs an identity, on session `s`: (method, path, body).
fn entry_points(s: &str) -> Vec<(&'static str, String, Option<Value>)> {
    let ck_input = json!({"content": [{"type": "input_text", "text": "hi"}], "attachments": [], "inference_options": {}});
    vec![
        ("POST", "/v1/ws-ticket".into(), None),
        ("POST", "/v1/sessions".into(), Some(json!({}))),
        ("GET", "/v1/sessions".into(), None),
        ("GET", format!("/v1/sessions/{s}"), None),
        (
            "PATCH",
            format!("/v1/sessions/{s}"),
            Some(json!({"title": "changed"})),
        ),
        ("GET", format!("/v1/sessions/{s}/items"), None),
        ("GET", format!("/v1/sessions/{s}/events"), None),
        (
            "POST",
            format!("/v1/sessions/{s}/messages"),
            Some(json!({"client_msg_id": "neg-1", "text": "hi"})),
        ),
        ("POST", format!("/v1/sessions/{s}/cancel"), Some(json!({}))),
        (
            "POST",
            "/chatkit".into(),
            Some(json!({"type": "threads.get_by_id", "params": {"thread_id": s}})),
        ),
        (
            "POST",
            "/chatkit".into(),
            Some(
                json!({"type": "threads.add_user_message", "params": {"thread_id": s, "input": ck_input}}),
            ),
        ),
        (
            "POST",
            "/chatkit".into(),
            Some(json!({"type": "threads.create", "params": {"input": ck_input}})),
        ),
        (
            "POST",
            "/agui".into(),
            Some(
                json!({"threadId": s, "runId": "r1", "state": {}, "messages": [{"id": "m1", "role": "user", "content": "hi"}], "tools": [], "context": [], "forwardedProps": {}}),
            ),
        ),
        // Last, so that the good-token pass can use the session until here.
        ("DELETE", format!("/v1/sessions/{s}"), None),
    ]
}

/// What a user can observe of their sessions, to show that refused requests changed nothing.
async fn state_of(hub: &TestHub, token: &str) -> Value {
    let (_, list) = call(
        hub,
        "GET",
        "/v1/sessions?limit=200",
        Some(token),
        None,
        None,
    )
    .await;
    let mut out = vec![list.clone()];
    for s in list["sessions"].as_array().expect("sessions") {
        let id = s["id"].as_str().expect("id");
        out.push(
            call(
                hub,
                "GET",
                &format!("/v1/sessions/{id}/items?limit=200"),
                Some(token),
                None,
                None,
            )
            .await
            .1,
        );
    }
    Value::Array(out)
}

/// Refused on every entry point and on the WebSocket handshake, each with `status`.
async fn refused_everywhere(
    hub: &TestHub,
    session: &str,
    case: &str,
    token: Option<&str>,
    origin: Option<&str>,
    status: u16,
) {
    let code = if status == 401 {
        "unauthorized"
    } else {
        "forbidden"
    };
    for (method, path, body) in entry_points(session) {
        let (got, body) = call(hub, method, &path, token, origin, body.as_ref()).await;
        assert_eq!(
            got, status,
            "{case}: {method} {path} answered {got}: {body}"
        );
        assert_eq!(
            body["error"]["code"], code,
            "{case}: {method} {path}: {body}"
        );
    }
    let mut headers = Vec::new();
    let bearer = token.map(|t| format!("Bearer {t}"));
    if let Some(b) = &bearer {
        headers.push(("authorization", b.as_str()));
    }
    if let Some(o) = origin {
        headers.push(("origin", o));
    }
    match ws_open(hub, "", &headers).await {
        Err(got) => assert_eq!(got, status, "{case}: WebSocket upgrade"),
        Ok(_) => panic!("{case}: WebSocket upgrade accepted"),
    }
}

#[tokio::test]
async fn bad_tokens_are_refused_with_401_on_the_handshake_and_every_entry_point() {
    let keys_dir = tempfile::tempdir().expect("dir");
    let rsa = key_pair(keys_dir.path(), JwtAlg::Rs256);
    let other_dir = tempfile::tempdir().expect("dir");
    let other = key_pair(other_dir.path(), JwtAlg::Rs256);
    let hub = TestHub::start_with(|c| {
        c.auth_public_key = Some(rsa.public_path.clone());
        c.auth_alg = Some(JwtAlg::Rs256);
        c.auth_issuer = Some(ISSUER.into());
        c.auth_audience = Some(AUDIENCE.into());
        c.cors_origins = vec![APP_ORIGIN.into()];
    })
    .await;
    let good = rsa.token(&claims("alice"));
    let session = create_session(&hub, &good).await;
    // One finished exchange in the session, so "nothing changed" covers items too.
    let mut ws = ws_as(&hub, &good).await;
    ws.join(&session).await;
    ws.say(&session, "c1", "before").await;
    ws.recv_until(|v| v["type"] == "run.completed").await;
    let before = state_of(&hub, &good).await;

    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = claims("alice");
        f(&mut c);
        c
    };
    let public_pem = std::fs::read(&rsa.public_path).expect("public key");
    let rs = |c: &Value| rsa.token(c);
    let cases: Vec<(&str, Option<String>)> = vec![
        ("no token", None),
        ("not a JWT", Some("garbage".into())),
        ("alg none", Some(alg_none(&claims("alice")))),
        // Key confusion: an HMAC over the token with the RSA public key as the secret.
        (
            "HS256 signed with the RS public key",
            Some(sign(
                Algorithm::HS256,
                &EncodingKey::from_secret(&public_pem),
                &claims("alice"),
            )),
        ),
        ("signed by another key", Some(other.token(&claims("alice")))),
        (
            "expired",
            Some(rs(&with(&|c| c["exp"] = json!(now() - 3600)))),
        ),
        (
            "nbf in the future",
            Some(rs(&with(&|c| c["nbf"] = json!(now() + 3600)))),
        ),
        (
            "wrong aud",
            Some(rs(&with(&|c| c["aud"] = json!("another-service")))),
        ),
        (
            "wrong iss",
            Some(rs(&with(&|c| c["iss"] = json!("https://evil.test")))),
        ),
        (
            "string exp",
            Some(rs(&with(&|c| c["exp"] = json!("never")))),
        ),
        (
            "missing exp",
            Some(rs(&with(&|c| {
                drop(c.as_object_mut().expect("obj").remove("exp"))
            }))),
        ),
        (
            "missing sub",
            Some(rs(&with(&|c| {
                drop(c.as_object_mut().expect("obj").remove("sub"))
            }))),
        ),
        ("empty sub", Some(rs(&with(&|c| c["sub"] = json!(""))))),
        (
            "missing aud",
            Some(rs(&with(&|c| {
                drop(c.as_object_mut().expect("obj").remove("aud"))
            }))),
        ),
        (
            "reserved sub",
            Some(rs(&with(&|c| c["sub"] = json!("anonymous")))),
        ),
    ];
    for (case, token) in &cases {
        refused_everywhere(&hub, &session, case, token.as_deref(), None, 401).await;
    }
    // A refused request changes nothing.
    assert_eq!(
        state_of(&hub, &good).await,
        before,
        "a refused request changed state"
    );

    // The same entry points with the good token are served: the table can fail.
    let spare = create_session(&hub, &good).await;
    for (method, path, body) in entry_points(&spare) {
        let (status, body) = call(&hub, method, &path, Some(&good), None, body.as_ref()).await;
        assert!(
            matches!(status, 200 | 201 | 204 | 409),
            "good token: {method} {path} answered {status}: {body}"
        );
    }
    ws_as(&hub, &good).await;
}

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
    // Let the one-second ticket lapse (waiting for time itself, not for an event).
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
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
async fn foreign_null_and_look_alike_origins_are_refused_with_403_everywhere() {
    let hub = start(|_| {}).await;
    let alice = token("alice");
    let session = create_session(&hub, &alice).await;
    let before = state_of(&hub, &alice).await;
    for origin in [
        "https://evil.example",
        "null",
        "https://app.example.evil.com",
        "https://evil-app.example",
        "http://app.example",
        "https://app.example:8443",
    ] {
        refused_everywhere(&hub, &session, origin, Some(&alice), Some(origin), 403).await;
    }
    assert_eq!(
        state_of(&hub, &alice).await,
        before,
        "a refused request changed state"
    );

    // The allowed origin, and no Origin with a bearer token (a non-browser client), are served.
    let (status, _) = call(
        &hub,
        "GET",
        "/v1/sessions",
        Some(&alice),
        Some(APP_ORIGIN),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let bearer = format!("Bearer {alice}");
    assert!(ws_open(
        &hub,
        "",
        &[("authorization", &bearer), ("origin", APP_ORIGIN)]
    )
    .await
    .is_ok());
    assert!(
        ws_open(&hub, "", &[("authorization", &bearer)])
            .await
            .is_ok(),
        "no Origin with a bearer token"
    );
    // No Origin and no credentials: 401, not served.
    assert_eq!(ws_open(&hub, "", &[]).await.err(), Some(401));
    // A cross-origin preflight from a foreign origin gets no CORS grant.
    let pre = support::http()
        .request(reqwest::Method::OPTIONS, hub.url("/v1/sessions"))
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .expect("preflight");
    assert!(pre.headers().get("access-control-allow-origin").is_none());
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
}
