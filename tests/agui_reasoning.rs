//! Reasoning on `POST /agui` (PROTOCOL 1.2): the official `@ag-ui/client` 1.0.0 and 0.0.59
//! (tests/agui/driver.mjs, scenario `reasoning`) verify the hub's `REASONING_*` events without
//! an error or warning, collect the reasoning text as a `reasoning` message beside the reply,
//! and carry it back on the next turn without harm.

use crate::agui;
use crate::support;

use support::TestHub;

const DELTAS: u32 = 6;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_client_versions_accept_reasoning_events_and_keep_the_text() {
    agui::require_clients();
    let hub = TestHub::start_with(|c| {
        c.scripted_deltas = DELTAS;
        c.scripted_delay_ms = 5;
    })
    .await;
    let base = hub.url("");
    agui::both_clients_pass(&base, DELTAS, &["reasoning"], &["reasoning"]).await;
}
