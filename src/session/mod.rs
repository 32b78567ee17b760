//! Sessions: one actor task per session owns its state, history, runs and subscribers.
//! This room knows nothing of HTTP or of sled internals; transports reach it through [`Hub`].

mod actor;
mod checkpoint;
mod edit;
pub mod event;
mod handle;
pub mod hub;
pub mod outbox;
mod registry;
mod run;
mod send;
mod subscribe;

pub use hub::{Hub, ItemOrder, ItemsPage, ItemsQuery, SendRequest, SessionInfo};
pub use outbox::{Outbound, Outbox, OutboxReceiver, PushError, Subscriber};

/// A new opaque id with a readable prefix, time-ordered (UUID v7).
pub(crate) fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

/// A new epoch: 16 characters of `[0-9a-f]`.
pub(crate) fn new_epoch() -> String {
    format!("{:016x}", rand::random::<u64>())
}
