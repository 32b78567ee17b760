//! Context and model choice (PROTOCOL 1.2) through the official `@ag-ui/client` 1.0.0 and
//! 0.0.59 (tests/agui/driver.mjs, scenario `context`): the clients' own `context` and
//! `forwardedProps` parameters are accepted, stored as the message's context (never as its
//! text), `forwardedProps.model` picks the model the reply records, and an unknown model is
//! refused with nothing stored.

use crate::agui;
use crate::support;

use support::TestHub;

const DELTAS: u32 = 6;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_client_versions_pass_context_and_pick_a_model() {
    agui::require_clients();
    let hub = TestHub::start_with(|c| {
        c.scripted_deltas = DELTAS;
        c.scripted_delay_ms = 5;
    })
    .await;
    let base = hub.url("");
    for version in ["1.0.0", "0.0.59"] {
        let (ok, out) = agui::run_driver(&base, version, DELTAS, &["context"]).await;
        assert!(ok, "@ag-ui/client {version}:\n{out}");
        assert!(out.contains(&format!("ok - {version} context\n")), "{out}");
    }
}
