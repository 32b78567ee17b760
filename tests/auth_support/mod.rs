//! Helpers for the auth tests: a hub with HS256 (or RS256/ES256) tokens on 127.0.0.1:0,
//! token minting (good and deliberately bad), keys made with the `openssl` CLI, and HTTP and
//! WebSocket clients that set Authorization and Origin. Used next to `mod support;`.
#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};

use crate::support::{http, TestHub, WsClient, FRAME_TIMEOUT};
use sessionhub::config::{Config, JwtAlg};

pub const ISSUER: &str = "https://issuer.test";
pub const AUDIENCE: &str = "sessionhub-test";
/// 45 bytes: above the 32-byte minimum.
pub const SECRET: &str = "test-only-secret-0123456789abcdef-0123456789";
/// The one browser origin the test hubs allow.
pub const APP_ORIGIN: &str = "https://app.example";

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// Valid claims for `sub`, expiring in an hour.
pub fn claims(sub: &str) -> Value {
    json!({"sub": sub, "iss": ISSUER, "aud": AUDIENCE, "iat": now(), "exp": now() + 3600})
}

pub fn hs256(claims: &Value) -> String {
    sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(SECRET.as_bytes()),
        claims,
    )
}

pub fn sign(alg: Algorithm, key: &EncodingKey, claims: &Value) -> String {
    jsonwebtoken::encode(&Header::new(alg), claims, key).expect("sign")
}

/// A valid HS256 token for `sub`.
pub fn token(sub: &str) -> String {
    hs256(&claims(sub))
}

/// A token with `"alg": "none"` and no signature.
pub fn alg_none(claims: &Value) -> String {
    let header = b64url(br#"{"alg":"none","typ":"JWT"}"#);
    let body = b64url(claims.to_string().as_bytes());
    format!("{header}.{body}.")
}

pub fn b64url(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// HS256 settings plus the test origin.
pub fn hs256_config(c: &mut Config) {
    c.auth_hs256_secret = Some(SECRET.into());
    c.auth_issuer = Some(ISSUER.into());
    c.auth_audience = Some(AUDIENCE.into());
    c.cors_origins = vec![APP_ORIGIN.into()];
}

/// A hub that requires HS256 tokens; `edit` changes the config further.
pub async fn start(edit: impl FnOnce(&mut Config)) -> TestHub {
    TestHub::start_with(|c| {
        hs256_config(c);
        edit(c);
    })
    .await
}

/// Run the `openssl` CLI (tests/auth/setup.sh installs it); fails clearly when it is missing.
pub fn openssl(args: &[&str]) {
    let out = std::process::Command::new("openssl")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("the openssl CLI is needed to make test keys ({e}): run tests/auth/setup.sh")
        });
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A key pair in PEM files: the private key signs test tokens, the public one goes to the hub.
pub struct KeyPair {
    pub private_pem: Vec<u8>,
    pub public_path: PathBuf,
    pub alg: JwtAlg,
}

impl KeyPair {
    pub fn encoding_key(&self) -> EncodingKey {
        match self.alg {
            JwtAlg::Rs256 => EncodingKey::from_rsa_pem(&self.private_pem).expect("RSA key"),
            _ => EncodingKey::from_ec_pem(&self.private_pem).expect("EC key"),
        }
    }
    pub fn algorithm(&self) -> Algorithm {
        match self.alg {
            JwtAlg::Rs256 => Algorithm::RS256,
            JwtAlg::Es256 => Algorithm::ES256,
            JwtAlg::Hs256 => Algorithm::HS256,
        }
    }
    pub fn token(&self, claims: &Value) -> String {
        sign(self.algorithm(), &self.encoding_key(), claims)
    }
}

/// A fresh RS256 or ES256 key pair under `dir`.
pub fn key_pair(dir: &Path, alg: JwtAlg) -> KeyPair {
    let name = format!("{alg:?}").to_lowercase();
    let private = dir.join(format!("{name}.key.pem"));
    let public = dir.join(format!("{name}.pub.pem"));
    let p = private.to_str().expect("path");
    match alg {
        JwtAlg::Rs256 => openssl(&[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            p,
        ]),
        _ => openssl(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            p,
        ]),
    }
    openssl(&[
        "pkey",
        "-in",
        p,
        "-pubout",
        "-out",
        public.to_str().expect("path"),
    ]);
    KeyPair {
        private_pem: std::fs::read(&private).expect("private key"),
        public_path: public,
        alg,
    }
}

/// One HTTP request with optional bearer token and Origin: (status, body as JSON or string).
pub async fn call(
    hub: &TestHub,
    method: &str,
    path: &str,
    token: Option<&str>,
    origin: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value) {
    let (status, text) = call_raw(hub, method, path, token, origin, body).await;
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Like [`call`], the body as text (an SSE stream is read for its first event only).
pub async fn call_raw(
    hub: &TestHub,
    method: &str,
    path: &str,
    token: Option<&str>,
    origin: Option<&str>,
    body: Option<&Value>,
) -> (u16, String) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut r = http().request(method, hub.url(path));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    if let Some(o) = origin {
        r = r.header("origin", o);
    }
    if let Some(b) = body {
        r = r
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let mut resp = tokio::time::timeout(FRAME_TIMEOUT, r.send())
        .await
        .expect("answer in time")
        .expect("request");
    let status = resp.status().as_u16();
    let streaming = resp
        .headers()
        .get("content-type")
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    if streaming {
        // Streams stay open: the first chunk is enough to see what was served.
        let chunk = tokio::time::timeout(FRAME_TIMEOUT, resp.chunk())
            .await
            .expect("first event in time");
        let text = chunk
            .ok()
            .flatten()
            .map(|c| String::from_utf8_lossy(&c).into_owned())
            .unwrap_or_default();
        return (status, text);
    }
    (
        status,
        tokio::time::timeout(FRAME_TIMEOUT, resp.text())
            .await
            .expect("body in time")
            .unwrap_or_default(),
    )
}

/// Create a session as the token's user; returns its id.
pub async fn create_session(hub: &TestHub, token: &str) -> String {
    let (status, body) = call(
        hub,
        "POST",
        "/v1/sessions",
        Some(token),
        None,
        Some(&json!({})),
    )
    .await;
    assert_eq!(status, 201, "create session: {body}");
    body["id"].as_str().expect("id").to_owned()
}

/// Mint a WebSocket ticket with the token.
pub async fn ticket(hub: &TestHub, token: &str) -> String {
    let (status, body) = call(hub, "POST", "/v1/ws-ticket", Some(token), None, None).await;
    assert_eq!(status, 201, "ticket: {body}");
    body["ticket"].as_str().expect("ticket").to_owned()
}

/// Open `/v1/ws` (plus `query`) with the given headers; `Err(status)` when the upgrade is
/// refused with an HTTP answer.
pub async fn ws_open(
    hub: &TestHub,
    query: &str,
    headers: &[(&str, &str)],
) -> Result<WsClient, u16> {
    let mut req = format!("{}{query}", hub.ws_url())
        .into_client_request()
        .expect("request");
    for (k, v) in headers {
        let name = HeaderName::from_bytes(k.as_bytes()).expect("header name");
        req.headers_mut()
            .insert(name, HeaderValue::from_str(v).expect("header value"));
    }
    WsClient::open(req).await
}

/// A WebSocket as `token`'s user (bearer header, no Origin: a non-browser client).
pub async fn ws_as(hub: &TestHub, token: &str) -> WsClient {
    let auth = format!("Bearer {token}");
    ws_open(hub, "", &[("authorization", &auth)])
        .await
        .expect("upgrade")
}

/// Let `d` of the hub's time pass at once instead of sleeping through it: tokio's clock, which
/// the in-process hub's rate limiters and tickets read, is paused, moved on by `d` and let run
/// again (timers due by then fire; the wall clock, and so JWT `exp`, does not move).
pub async fn let_time_pass(d: Duration) {
    tokio::time::pause();
    tokio::time::advance(d).await;
    tokio::time::resume();
}

/// Wait (bounded) until `cond` holds, polling every 20 ms: for state visible only by asking.
pub async fn eventually<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !cond().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
