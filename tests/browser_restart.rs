//! The bundled page survives a hub restart: the real binary on a fixed port and data dir is
//! stopped mid-reply (SIGTERM, graceful) and started again; the page shows that it is
//! reconnecting, sends what was typed meanwhile, and carries on.

use crate::runner;
use crate::support;

use std::time::Duration;

use runner::Scenario;
use support::BinHub;

const DELTAS: u32 = 60;

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

async fn start(dir: &std::path::Path, addr: &str) -> BinHub {
    let deltas = DELTAS.to_string();
    // A short drain so the reply that streams at shutdown is cut rather than finished.
    BinHub::start(
        dir,
        &[
            "--addr",
            addr,
            "--scripted-deltas",
            &deltas,
            "--scripted-delay-ms",
            "50",
            "--drain-secs",
            "1",
        ],
    )
    .await
}

async fn stop_gracefully(mut hub: BinHub) -> bool {
    let Some(pid) = hub.child.id() else {
        return false;
    };
    let sent = tokio::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .await
        .is_ok_and(|s| s.success());
    let exited = tokio::time::timeout(Duration::from_secs(30), hub.child.wait()).await;
    sent && matches!(exited, Ok(Ok(s)) if s.success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_page_reconnects_after_a_hub_restart() {
    runner::require_setup();
    let dir = tempfile::tempdir().expect("temp dir");
    let addr = format!("127.0.0.1:{}", free_port());
    let mut hub = Some(start(dir.path(), &addr).await);
    let mut scenario = Scenario::start("restart", &format!("http://{addr}"), DELTAS);
    while let Some(req) = scenario.next_request().await {
        match req.as_str() {
            "stop" => {
                let ok = stop_gracefully(hub.take().expect("a running hub")).await;
                assert!(ok, "the hub did not stop cleanly on SIGTERM");
                scenario.answer(true).await;
            }
            "start" => {
                hub = Some(start(dir.path(), &addr).await);
                scenario.answer(true).await;
            }
            other => panic!("unexpected request from the scenario: {other}"),
        }
    }
    let r = scenario.finish().await;
    eprintln!(
        "restart: down {} ms, page live again {} ms after the hub started, reply cut as {}",
        r["downMs"], r["reconnectAfterStartMs"], r["cutReply"]
    );
    if let Some(hub) = hub {
        assert!(stop_gracefully(hub).await, "final stop");
    }
}
