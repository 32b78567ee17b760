//! The part of the hub wire protocol (shared/PROTOCOL.md) the loader speaks and the ceiling
//! server answers: subscribe/send/ping out, replies and sequenced events in.

use std::borrow::Cow;

use serde::Deserialize;

/// A frame from the server, read without copying. Unknown fields (items, snapshots' bodies)
/// are skipped by serde, so one struct reads every frame type.
#[derive(Debug, Deserialize)]
pub struct InFrame<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    #[serde(default)]
    pub seq: Option<u64>,
    #[serde(default, borrow)]
    pub epoch: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub text: Option<Cow<'a, str>>,
    #[serde(default)]
    pub head_seq: Option<u64>,
    #[serde(default, borrow)]
    pub resume: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub code: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub message: Option<Cow<'a, str>>,
    #[serde(default)]
    pub item: Option<ItemText>,
    #[serde(default, borrow)]
    pub client_msg_id: Option<Cow<'a, str>>,
}

/// The text of an item in `run.completed`, to check it equals the concatenated deltas.
#[derive(Debug, Deserialize)]
pub struct ItemText {
    #[serde(default)]
    pub text: String,
}

/// Which frames are direct replies rather than sequenced events (PROTOCOL.md, "Details").
pub fn is_direct_reply(kind: &str) -> bool {
    matches!(
        kind,
        "subscribed" | "unsubscribed" | "ack" | "error" | "pong" | "snapshot"
    )
}

/// `{"type":"subscribe",...}`, with `since` when resuming.
pub fn subscribe(session: &str, since: Option<(&str, u64)>) -> String {
    let session = json_str(session);
    match since {
        Some((epoch, seq)) => format!(
            r#"{{"type":"subscribe","ref":1,"session":{session},"since":{{"epoch":{},"seq":{seq}}}}}"#,
            json_str(epoch)
        ),
        None => format!(r#"{{"type":"subscribe","ref":1,"session":{session}}}"#),
    }
}

/// `{"type":"send",...}` with the default busy policy (queue).
pub fn send(session: &str, client_msg_id: &str, text: &str) -> String {
    format!(
        r#"{{"type":"send","ref":2,"session":{},"client_msg_id":{},"text":{}}}"#,
        json_str(session),
        json_str(client_msg_id),
        json_str(text)
    )
}

pub const PING: &str = r#"{"type":"ping"}"#;

/// The body of `POST /v1/sessions/{id}/messages`.
pub fn message_body(client_msg_id: &str, text: &str) -> String {
    format!(
        r#"{{"client_msg_id":{},"text":{}}}"#,
        json_str(client_msg_id),
        json_str(text)
    )
}

/// A JSON string literal.
pub fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned())
}

/// The production stamp at the start of a delta's text: Unix microseconds, then a space
/// (`--scripted-stamp`). None when the text carries no stamp.
pub fn stamp_of(text: &str) -> Option<u64> {
    let end = text.find(' ')?;
    text[..end].parse().ok()
}

/// The user message that starts every run. The scripted agent cycles over `["Echo:", word]`;
/// with the 17-byte stamp the deltas alternate between 23 and 32 bytes of text.
pub const USER_TEXT: &str = "loadtest-delta";

/// Unix time in microseconds.
pub fn unix_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_delta_and_its_stamp() {
        let raw = r#"{"type":"run.delta","session":"s","epoch":"e","seq":7,"ts":1,"run_id":"r","item_id":"i","text":"1763700000000123 Echo: "}"#;
        let f: InFrame<'_> = serde_json::from_str(raw).unwrap();
        assert_eq!(f.kind, "run.delta");
        assert_eq!(f.seq, Some(7));
        assert_eq!(
            stamp_of(f.text.as_deref().unwrap()),
            Some(1_763_700_000_000_123)
        );
        assert_eq!(stamp_of("Echo: "), None);
        assert_eq!(stamp_of("nospace"), None);
    }

    #[test]
    fn skips_unknown_fields_and_reads_items() {
        let raw = r#"{"type":"run.completed","seq":9,"run_id":"r","item":{"id":"a","role":"assistant","text":"x y","status":"complete"},"extra":[1,2]}"#;
        let f: InFrame<'_> = serde_json::from_str(raw).unwrap();
        assert_eq!(f.item.unwrap().text, "x y");
        let snap =
            r#"{"type":"snapshot","seq":3,"items":[{"id":"a","text":"t"}],"active_run":null}"#;
        let f: InFrame<'_> = serde_json::from_str(snap).unwrap();
        assert!(is_direct_reply(&f.kind));
        assert_eq!(f.seq, Some(3));
    }

    #[test]
    fn builds_frames_that_parse() {
        let v: serde_json::Value =
            serde_json::from_str(&subscribe("a\"b", Some(("e", 4)))).unwrap();
        assert_eq!(v["since"]["seq"], 4);
        assert_eq!(v["session"], "a\"b");
        let v: serde_json::Value = serde_json::from_str(&send("s", "c1", "hi")).unwrap();
        assert_eq!(v["client_msg_id"], "c1");
    }
}
