//! The key layout (see the module comment of `store::sled_store`): one sled tree, a one-letter
//! prefix per kind, the session id, a NUL, then the kind's own key.

use crate::store::SessionRecord;

pub(super) fn sep_key(prefix: &str, session: &str, rest: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(prefix.len() + session.len() + 1 + rest.len());
    k.extend_from_slice(prefix.as_bytes());
    k.extend_from_slice(session.as_bytes());
    k.push(0);
    k.extend_from_slice(rest);
    k
}

pub(super) fn item_key(session: &str, ord: u64) -> Vec<u8> {
    sep_key("i/", session, format!("{ord:016x}").as_bytes())
}

pub(super) fn chunk_prefix(session: &str, ord: u64) -> Vec<u8> {
    sep_key("c/", session, format!("{ord:016x}").as_bytes())
}

pub(super) fn streaming_key(session: &str, ord: u64) -> Vec<u8> {
    sep_key("r/", session, format!("{ord:016x}").as_bytes())
}

pub(super) fn owner_key(rec: &SessionRecord) -> Vec<u8> {
    sep_key(
        "o/",
        &rec.owner,
        format!("{:016x}{}", rec.created_ms, rec.id).as_bytes(),
    )
}

pub(super) fn session_key(id: &str) -> Vec<u8> {
    format!("s/{id}").into_bytes()
}
