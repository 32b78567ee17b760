//! The bundled page against a hub with authentication on (HS256 tokens): hub.js sends the
//! bearer token on REST and trades it for a single-use ticket for the WebSocket. Fails on any
//! console error; saves a screenshot under tests/artifacts/browser/.

use crate::auth_support;
use crate::runner;

use runner::Scenario;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_page_works_with_a_token_and_a_websocket_ticket() {
    runner::require_setup();
    let hub = auth_support::start(|c| {
        c.scripted_deltas = 20;
        c.scripted_delay_ms = 20;
    })
    .await;
    let token = auth_support::token("browser-user");
    let r = Scenario::start_with_env(
        "auth",
        &format!("http://{}", hub.addr),
        20,
        &[("SESSIONHUB_TEST_TOKEN", &token)],
    )
    .finish()
    .await;
    assert!(r["ms"].as_u64().is_some(), "{r}");
    // The session belongs to the token's user: anonymous callers cannot see it.
    let (status, _) = hub.get_json("/v1/sessions").await;
    assert_eq!(status, 401, "no token, no listing");
    hub.stop().await;
}
