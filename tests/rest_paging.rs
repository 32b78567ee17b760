//! REST paging of sessions and items, and the snapshot's `has_more`.

use crate::support;

use serde_json::Value;
use support::TestHub;

fn ids(v: &Value, key: &str) -> Vec<String> {
    v[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

/// A hub whose replies are one delta long and whose snapshots hold 4 items, and a session
/// with `n` answered messages (2n items).
async fn hub_with_messages(n: usize) -> (TestHub, String) {
    let hub = TestHub::start_with(|c| {
        c.scripted_deltas = 1;
        c.scripted_delay_ms = 1;
        c.snapshot_items = 4;
    })
    .await;
    let s = hub.create_session().await;
    let mut t = hub.ws().await;
    t.join(&s).await;
    for i in 0..n {
        let a = t.say(&s, &format!("p{i}"), &format!("message {i}")).await;
        t.until_run_end(a["run_id"].as_str().unwrap()).await;
    }
    (hub, s)
}

#[tokio::test]
async fn items_page_forwards_and_backwards_and_snapshot_says_has_more() {
    let (hub, s) = hub_with_messages(5).await;
    let all: Vec<String> = hub
        .items(&s)
        .await
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(all.len(), 10);
    // Forwards, oldest first.
    let (_, p1) = hub
        .get_json(&format!("/v1/sessions/{s}/items?limit=4"))
        .await;
    assert_eq!(ids(&p1, "items"), all[0..4]);
    assert_eq!(p1["has_more"], true);
    let (_, p2) = hub
        .get_json(&format!("/v1/sessions/{s}/items?limit=4&after={}", all[3]))
        .await;
    assert_eq!(ids(&p2, "items"), all[4..8]);
    let (_, p3) = hub
        .get_json(&format!("/v1/sessions/{s}/items?limit=4&after={}", all[7]))
        .await;
    assert_eq!(ids(&p3, "items"), all[8..10]);
    assert_eq!(p3["has_more"], false);
    // Backwards from the newest: the items just before, still oldest first.
    let (_, b1) = hub
        .get_json(&format!("/v1/sessions/{s}/items?limit=4&before={}", all[9]))
        .await;
    assert_eq!(ids(&b1, "items"), all[5..9]);
    assert_eq!(b1["has_more"], true);
    let (_, b2) = hub
        .get_json(&format!("/v1/sessions/{s}/items?limit=4&before={}", all[5]))
        .await;
    assert_eq!(ids(&b2, "items"), all[1..5]);
    let (_, b3) = hub
        .get_json(&format!("/v1/sessions/{s}/items?limit=4&before={}", all[1]))
        .await;
    assert_eq!(ids(&b3, "items"), all[0..1]);
    assert_eq!(b3["has_more"], false);
    // Newest first.
    let (_, d) = hub
        .get_json(&format!("/v1/sessions/{s}/items?limit=3&order=desc"))
        .await;
    assert_eq!(
        ids(&d, "items"),
        vec![all[9].clone(), all[8].clone(), all[7].clone()]
    );
    // The snapshot holds the most recent page and says older items exist.
    let mut c = hub.ws().await;
    let snap = c.join(&s).await;
    assert_eq!(ids(&snap, "items"), all[6..10]);
    assert_eq!(snap["has_more"], true);
}

#[tokio::test]
async fn snapshot_has_more_is_false_when_everything_fits() {
    let (hub, s) = hub_with_messages(2).await;
    let snap = hub.ws().await.join(&s).await;
    assert_eq!(snap["items"].as_array().unwrap().len(), 4);
    assert_eq!(snap["has_more"], false);
}

#[tokio::test]
async fn sessions_list_newest_first_with_before() {
    let hub = TestHub::start().await;
    let mut created = Vec::new();
    for _ in 0..5 {
        created.push(hub.create_session().await);
    }
    created.reverse();
    let (_, p1) = hub.get_json("/v1/sessions?limit=2").await;
    assert_eq!(ids(&p1, "sessions"), created[0..2]);
    assert_eq!(p1["has_more"], true);
    let (_, p2) = hub
        .get_json(&format!("/v1/sessions?limit=2&before={}", created[1]))
        .await;
    assert_eq!(ids(&p2, "sessions"), created[2..4]);
    let (_, p3) = hub
        .get_json(&format!("/v1/sessions?limit=2&before={}", created[3]))
        .await;
    assert_eq!(ids(&p3, "sessions"), created[4..5]);
    assert_eq!(p3["has_more"], false);
}
