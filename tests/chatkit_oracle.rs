//! The ChatKit endpoint judged by the official SDK's models (tests/chatkit/*.py, run in the venv
//! that tests/chatkit/setup.sh makes): every request body, event and JSON response validated
//! against `chatkit.types`, and the same conversations compared with a reference
//! `ChatKitServer`.

use crate::ck;
use crate::support;

use support::TestHub;

/// The reference server's defaults, so both sides stream the same scripted reply.
async fn hub() -> TestHub {
    TestHub::start_with(|c| {
        c.scripted_deltas = 12;
        c.scripted_delay_ms = 40;
    })
    .await
}

#[tokio::test]
async fn validator_rejects_what_it_must() {
    let out = ck::python("selftest.py", &[]).await;
    assert!(out.contains("13 of 13"), "{out}");
}

#[tokio::test]
async fn every_request_type_conforms_to_chatkit_types() {
    let hub = hub().await;
    let out = ck::python("conformance.py", &[&hub.url("/chatkit"), "--deltas", "12"]).await;
    assert!(out.contains("conformance: all 27 checks passed"), "{out}");
}

#[tokio::test]
async fn conversations_match_the_reference_server() {
    let hub = hub().await;
    let out = ck::python(
        "differential.py",
        &[&hub.url("/chatkit"), "--deltas", "12", "--delay-ms", "40"],
    )
    .await;
    assert!(
        out.contains("differential: all 6 steps match the reference"),
        "{out}"
    );
}
