//! The hub's event model as a client sees it, on any transport: which frames are sequenced
//! events, which one ends a run, and a small client-side list of items that snapshots and
//! events are applied to.

use serde_json::Value;

/// True for hub frames that are sequenced events (they carry `seq` and are not snapshots).
pub fn is_event(v: &Value) -> bool {
    v.get("seq").is_some() && !matches!(v["type"].as_str(), Some("snapshot" | "ack" | "subscribed"))
}

/// True for the event that ends run `run_id` (`run.completed`, `run.cancelled`, `run.failed`).
pub fn ends_run(v: &Value, run_id: &str) -> bool {
    v["run_id"] == run_id
        && matches!(
            v["type"].as_str(),
            Some("run.completed" | "run.cancelled" | "run.failed")
        )
}

/// Apply a snapshot or an event to a simple client-side model: items by id with their text and
/// status, in order.
pub fn apply_frame(state: &mut Vec<(String, String, String)>, ev: &Value) {
    let upsert = |state: &mut Vec<(String, String, String)>, item: &Value| {
        let id = item["id"].as_str().unwrap().to_owned();
        let entry = (
            id.clone(),
            item["text"].as_str().unwrap().to_owned(),
            item["status"].as_str().unwrap().to_owned(),
        );
        match state.iter_mut().find(|e| e.0 == id) {
            Some(e) => *e = entry,
            None => state.push(entry),
        }
    };
    match ev["type"].as_str().unwrap() {
        "snapshot" => {
            state.clear();
            for it in ev["items"].as_array().unwrap() {
                upsert(state, it);
            }
            if let Some(ar) = ev["active_run"].as_object() {
                state.push((
                    ar["item_id"].as_str().unwrap().into(),
                    ar["text"].as_str().unwrap().into(),
                    "streaming".into(),
                ));
            }
        }
        "message" | "run.completed" | "run.cancelled" | "run.failed" if ev["item"].is_object() => {
            upsert(state, &ev["item"])
        }
        "items.removed" => {
            let gone: Vec<&str> = ev["item_ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            state.retain(|e| !gone.contains(&e.0.as_str()));
        }
        "run.started" => state.push((
            ev["item_id"].as_str().unwrap().into(),
            String::new(),
            "streaming".into(),
        )),
        "run.delta" => {
            let id = ev["item_id"].as_str().unwrap();
            let e = state
                .iter_mut()
                .find(|e| e.0 == id)
                .expect("delta for a known item");
            e.1.push_str(ev["text"].as_str().unwrap());
        }
        _ => {}
    }
}
