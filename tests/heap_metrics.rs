//! The binary tells `/metrics` what its allocator holds (`sessionhub_heap_*`), the figures
//! issue 15's memory work is read from; the library alone (tests, embedders) exports none.

use crate::support;

use support::{BinHub, TestHub};

/// `name value` lines of the exposition, for one metric.
fn gauge(exposition: &str, name: &str) -> Option<u64> {
    exposition.lines().find_map(|line| {
        let (n, v) = line.split_once(' ')?;
        (n == name).then(|| v.trim().parse().expect("a number"))
    })
}

async fn metrics(url: String) -> String {
    let resp = reqwest::get(url).await.expect("GET /metrics");
    assert!(resp.status().is_success());
    resp.text().await.expect("body")
}

#[tokio::test]
async fn the_binary_exports_its_allocators_counts() {
    let dir = tempfile::tempdir().unwrap();
    let hub = BinHub::start(dir.path(), &[]).await;
    let text = metrics(hub.url("/metrics")).await;
    let allocated = gauge(&text, "sessionhub_heap_allocated_bytes").expect("allocated line");
    let resident = gauge(&text, "sessionhub_heap_resident_bytes").expect("resident line");
    let active = gauge(&text, "sessionhub_heap_active_bytes").expect("active line");
    assert!(gauge(&text, "sessionhub_heap_metadata_bytes").is_some());
    assert!(gauge(&text, "sessionhub_heap_retained_bytes").is_some());
    assert!(
        active >= allocated && resident >= active,
        "allocated {allocated} <= active {active} <= resident {resident}"
    );
    assert!(
        allocated > 1 << 20,
        "a started hub has allocated more than 1 MiB: {allocated}"
    );
    assert!(
        resident >= allocated,
        "what is allocated is resident: {resident} < {allocated}"
    );
    hub.kill9().await;
}

#[tokio::test]
async fn the_library_alone_exports_no_heap_figures() {
    let hub = TestHub::start().await;
    let text = metrics(hub.url("/metrics")).await;
    assert!(text.contains("sessionhub_sessions_live"));
    assert!(!text.contains("sessionhub_heap_"), "{text}");
}
