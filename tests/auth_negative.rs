//! Issue 8, "what must be shown" 1: the negative table. Every bad credential and every bad
//! Origin is refused, through the real WebSocket handshake and on every HTTP entry point, with
//! the right status; nothing changes; the same requests with a good token are served (so the
//! table can fail).

use crate::auth_support;
use crate::support;

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
