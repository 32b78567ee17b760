//! The sled store against real files: crash recovery of streaming items and their
//! checkpoint chunks.

use super::*;
use crate::domain::Role;
use crate::store::TextChunk;

fn record(id: &str) -> SessionRecord {
    SessionRecord {
        id: id.into(),
        owner: "u".into(),
        title: None,
        metadata: None,
        created_at: "2026-11-21T00:00:00Z".into(),
        created_ms: 0,
        updated_at: "2026-11-21T00:00:00Z".into(),
        epoch: "e".into(),
        head_seq: 0,
        generation: 0,
        next_ord: 1,
        waiting: None,
        state: None,
        state_version: 0,
    }
}

fn streaming(id: &str) -> Item {
    Item {
        run_id: Some("r".into()),
        ..Item::new(
            id.into(),
            Role::Assistant,
            String::new(),
            ItemStatus::Streaming,
            "2026-11-21T00:00:00Z".into(),
        )
    }
}

fn chunk(n: u32, text: &str) -> TextChunk {
    TextChunk {
        session: "s".into(),
        ord: 0,
        n,
        text: text.into(),
    }
}

#[test]
fn recovery_rebuilds_an_interrupted_item_from_its_checkpoint_chunks() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SledStore::open(dir.path(), true).unwrap();
        store.recover().unwrap();
        store
            .write(WriteBatch {
                session: Some(record("s")),
                items: vec![StoredItem {
                    ord: 0,
                    item: streaming("a"),
                }],
                streaming_started: vec![("s".into(), 0)],
                ..Default::default()
            })
            .unwrap();
        for (n, t) in ["Hel", "lo, ", "world"].iter().enumerate() {
            store
                .write(WriteBatch {
                    text_chunks: vec![chunk(n as u32, t)],
                    ..Default::default()
                })
                .unwrap();
        }
        store.close().unwrap();
    }
    let store = SledStore::open(dir.path(), true).unwrap();
    let rec = store.recover().unwrap();
    assert!(!rec.clean);
    assert_eq!(rec.interrupted_items, 1);
    let item = store.get_item("s", 0).unwrap().unwrap();
    assert_eq!(item.status, ItemStatus::Interrupted);
    assert_eq!(item.text, "Hello, world");
    assert_eq!(
        store.db.scan_prefix(b"c/").count(),
        0,
        "chunks are folded in and dropped"
    );
    assert_eq!(store.db.scan_prefix(b"r/").count(), 0);
}

#[test]
fn finishing_a_run_drops_its_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path(), false).unwrap();
    store
        .write(WriteBatch {
            text_chunks: vec![chunk(0, "x"), chunk(1, "y")],
            ..Default::default()
        })
        .unwrap();
    let mut done = streaming("a");
    done.text = "xy".into();
    done.status = ItemStatus::Complete;
    store
        .write(WriteBatch {
            session: Some(record("s")),
            items: vec![StoredItem { ord: 0, item: done }],
            streaming_ended: vec![("s".into(), 0)],
            ..Default::default()
        })
        .unwrap();
    assert_eq!(store.db.scan_prefix(b"c/").count(), 0);
    assert_eq!(store.get_item("s", 0).unwrap().unwrap().text, "xy");
}
