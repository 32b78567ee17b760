//! The composer's model picker (PROTOCOL 1.2) in headless Chromium against the real hub, whose
//! models file points two ids at the recording upstream (tests/upstream) under different
//! upstream names: the picker lists them from `GET /v1/models` with the default selected, each
//! message goes upstream with the picked id's upstream name, each reply's item names its model,
//! and the choice survives a reload. Scenario: tests/browser/model-scenarios.mjs.

use crate::runner;
use crate::support;
use crate::upstream;

use std::path::Path;

use runner::{Scenario, SERIAL};
use serde_json::json;
use support::TestHub;
use upstream::Upstream;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_the_model_picker_picks_the_model_each_message_runs_with() {
    let _one_at_a_time = SERIAL.lock().await;
    runner::require_setup();
    let up = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("models.toml");
    std::fs::write(
        &file,
        format!(
            "[models.fast]\nbase_url = \"{0}\"\nupstream_model = \"up-fast\"\n\n\
             [models.big]\nbase_url = \"{0}\"\nupstream_model = \"up-big\"\n",
            up.base_url
        ),
    )
    .unwrap();
    let hub = TestHub::start_with(|c| {
        upstream::point_hub_at(c, &up.base_url);
        c.static_dir = Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("static"));
        c.models.models_file = Some(file);
        c.model = "fast".into();
    })
    .await;
    let r = Scenario::start("model-picker", &format!("http://{}", hub.addr), 8)
        .finish()
        .await;
    assert_eq!(
        r["options"],
        json!([{"value": "big", "label": "big"}, {"value": "fast", "label": "fast (default)"}])
    );
    assert_eq!(
        (r["first"].as_str(), r["second"].as_str()),
        (Some("fast"), Some("big"))
    );
    assert_eq!(r["afterReload"], "big");
    let models: Vec<_> = up
        .requests()
        .iter()
        .map(|q| q.body["model"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(models, ["up-fast", "up-big"]);
    hub.stop().await;
}
