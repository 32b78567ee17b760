//! AG-UI conformance: the official `@ag-ui/client` in both live versions (1.0.0 and 0.0.59,
//! installed by tests/agui/setup.sh) drives the real hub with `HttpAgent` through a normal run,
//! an upstream failure, an abort mid-stream, a run cancelled from elsewhere and a thread
//! continued over several runs, and fails on any client verification error or warning
//! (tests/agui/driver.mjs).

use crate::agui;
use crate::support;

use support::TestHub;

/// The scripted agent's pace: an abort (or cancel) after the first delta lands mid-reply with
/// about a second to spare, even on a loaded machine.
const DELTAS: u32 = 16;
const DELAY_MS: u64 = 60;

async fn hub() -> TestHub {
    TestHub::start_with(|c| {
        c.scripted_deltas = DELTAS;
        c.scripted_delay_ms = DELAY_MS;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_client_versions_accept_every_scenario() {
    agui::require_clients();
    let hub = hub().await;
    let base = hub.url("");
    // Both versions at once: separate threads of the same hub.
    let expect = ["normal", "failure", "abort", "cancelled", "multi"];
    agui::both_clients_pass(&base, DELTAS, &[], &expect).await;
}

/// The driver is a live judge: a hub answering with replies it does not expect fails it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_driver_rejects_a_reply_it_does_not_expect() {
    agui::require_clients();
    let hub = hub().await;
    let (ok, out) = agui::run_driver(&hub.url(""), "1.0.0", DELTAS + 1, &["normal"]).await;
    assert!(
        !ok,
        "the driver accepted a reply of the wrong length:\n{out}"
    );
    assert!(
        out.contains("not ok - 1.0.0 normal") && out.contains("streamed reply"),
        "{out}"
    );
}
