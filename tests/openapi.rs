//! `GET /openapi.json` is a valid OpenAPI 3.1 document (PyPI `openapi-spec-validator`, installed
//! by tests/openapi/setup.sh) that describes exactly the routes the router serves: the same
//! paths, and on each path the same methods the router answers (its `Allow` header). Errors it
//! promises for ChatKit, AG-UI and REST are the ones those routes really answer.

use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use serde_json::{json, Value};
use sessionhub::config::Config;
use sessionhub::transport::{router, AppState};
use support::{http, TestHub};

fn validator_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/openapi"))
}

async fn document(hub: &TestHub) -> Value {
    let r = http()
        .get(hub.url("/openapi.json"))
        .send()
        .await
        .expect("GET /openapi.json");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    r.json().await.expect("the document is JSON")
}

#[tokio::test]
async fn openapi_document_passes_the_openapi_spec_validator() {
    let python = validator_dir().join(".venv/bin/python");
    assert!(
        python.exists(),
        "openapi-spec-validator is not installed: run `bash tests/openapi/setup.sh` \
         (tests/run.sh does it first)"
    );
    let hub = TestHub::start().await;
    let doc = document(&hub).await;
    hub.stop().await;
    assert_eq!(doc["openapi"], "3.1.0");
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), serde_json::to_vec_pretty(&doc).unwrap()).expect("write");
    let out = std::process::Command::new(python)
        .arg(validator_dir().join("validate.py"))
        .arg(file.path())
        .output()
        .expect("run the validator");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "openapi-spec-validator: {report}");
    assert_eq!(report.trim(), "valid");
}

/// The paths the router routes, read from the router itself. axum has no public way to list
/// them, but its `Debug` output carries the path table (`paths: {RouteId(..): "/..", ..}`) of
/// the path router; the fallback router (the page and its files, not an API) comes after it.
fn served_paths() -> BTreeSet<String> {
    let tmp = tempfile::tempdir().expect("temp dir");
    let cfg = Config::for_tests(tmp.path());
    let auth = sessionhub::auth::Auth::from_config(&cfg, cfg.addr).expect("auth");
    let hub = sessionhub::build_hub(cfg).expect("hub");
    let state = AppState {
        hub,
        signals: Default::default(),
        auth: Arc::new(auth),
    };
    let debug = format!("{:?}", router(state));
    let table = debug
        .split_once("path_router:")
        .and_then(|(_, rest)| rest.split_once("fallback_router:"))
        .and_then(|(path_router, _)| path_router.split_once("paths: {"))
        .map(|(_, paths)| paths)
        .unwrap_or_else(|| {
            panic!("no path table in the router's Debug output (did axum change it?): {debug}")
        });
    let paths: BTreeSet<String> = table
        .split("): \"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap().to_owned())
        .collect();
    assert!(
        paths.contains("/v1/ws") && paths.len() > 10,
        "could not read the routes from the router's Debug output: {paths:?}"
    );
    paths
}

/// `{path: {METHOD}}` as the document describes it.
fn described(doc: &Value) -> BTreeMap<String, BTreeSet<String>> {
    doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .map(|(path, item)| {
            let methods = item
                .as_object()
                .expect("path item")
                .keys()
                .filter(|k| {
                    [
                        "get", "put", "post", "delete", "options", "head", "patch", "trace",
                    ]
                    .contains(&k.as_str())
                })
                .map(|k| k.to_uppercase())
                .collect();
            (path.clone(), methods)
        })
        .collect()
}

#[tokio::test]
async fn openapi_describes_every_served_route_and_nothing_else() {
    let hub = TestHub::start().await;
    let doc = document(&hub).await;
    let described = described(&doc);

    let served = served_paths();
    let listed: BTreeSet<String> = described.keys().cloned().collect();
    let missing: Vec<_> = served.difference(&listed).collect();
    let extra: Vec<_> = listed.difference(&served).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "served but not described: {missing:?}; described but not served: {extra:?}"
    );

    // On each path, the methods the router answers are the ones described. A method no route
    // has makes the router answer 405 with the path's `Allow` list.
    let probe = reqwest::Method::from_bytes(b"PROBE").unwrap();
    for (path, methods) in &described {
        let url = hub.url(&path.replace("{id}", "ses_probe"));
        let r = http()
            .request(probe.clone(), &url)
            .send()
            .await
            .expect("probe");
        assert_eq!(r.status(), 405, "PROBE {path}");
        let allow: BTreeSet<String> = r.headers()["allow"]
            .to_str()
            .unwrap()
            .split(',')
            .map(|m| m.trim().to_owned())
            // axum answers HEAD wherever it answers GET; the document describes the GET.
            .filter(|m| !(m == "HEAD" && methods.contains("GET")))
            .collect();
        assert_eq!(&allow, methods, "methods served on {path} vs described");
    }
    hub.stop().await;
}

/// The statuses the document lists for one operation.
fn statuses(doc: &Value, path: &str, method: &str) -> BTreeSet<u16> {
    doc["paths"][path][method]["responses"]
        .as_object()
        .unwrap_or_else(|| panic!("no responses for {method} {path}"))
        .keys()
        .map(|k| k.parse().expect("numeric status"))
        .collect()
}

#[tokio::test]
async fn openapi_error_shapes_are_what_the_routes_answer() {
    let hub = TestHub::start().await;
    let doc = document(&hub).await;
    let error_ref = json!({"$ref": "#/components/schemas/ErrorBody"});
    let cases = [
        ("/chatkit", "{not json"),
        ("/chatkit", r#"{"type":"threads.nonsense","params":{}}"#),
        ("/agui", r#"{"threadId":"t1"}"#),
        ("/v1/sessions", "[1,2]"),
        ("/v1/sessions/{id}/messages", r#"{"text":"no id"}"#),
        ("/v1/sessions/{id}/cancel", r#"{"run_id":7}"#),
    ];
    for (path, body) in cases {
        let r = http()
            .post(hub.url(&path.replace("{id}", "ses_nope")))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("POST");
        let status = r.status().as_u16();
        let answer: Value = r.json().await.expect("a JSON error");
        assert!(
            statuses(&doc, path, "post").contains(&status),
            "POST {path} {body} answered {status}, which the document does not list"
        );
        let listed = &doc["paths"][path]["post"]["responses"][status.to_string()];
        assert_eq!(
            listed["content"]["application/json"]["schema"], error_ref,
            "{path} {status}"
        );
        assert!(
            answer["error"]["code"].is_string() && answer["error"]["message"].is_string(),
            "POST {path} {body}: {answer} is not {{\"error\":{{\"code\",\"message\"}}}}"
        );
    }
    let schema = &doc["components"]["schemas"]["ErrorBody"];
    assert_eq!(schema["required"], json!(["error"]), "{schema}");
    hub.stop().await;
}
