//! Sessions: one actor task per session owns its state, history, runs and subscribers.
//!
//! - [`state`]: the protocol rules as a state machine that does no I/O;
//! - `actor`: the task that executes what the state decides (store, fan-out, agent);
//! - [`Hub`], `handle`, [`Subscription`]: the ways in;
//! - [`event`], [`outbox`], [`request`]: what goes in and comes out.
//!
//! This room knows nothing of HTTP, WebSockets or auth; transports reach it through [`Hub`].

mod actor;
mod budget;
mod checkpoint;
pub mod context;
mod directory;
pub mod event;
mod handle;
pub mod hub;
pub mod outbox;
mod registry;
pub mod request;
mod state;
mod subscription;
mod tail;

pub use hub::Hub;
pub use outbox::{Outbound, Outbox, OutboxReceiver, PushError};
pub use request::{Caller, ItemOrder, ItemsPage, ItemsQuery, Quota, SendRequest, SessionInfo};
pub use state::Resolve as ToolResolution;
pub use state::StateChange;
pub use subscription::Subscription;

use crate::error::HubError;
use crate::store::StoreError;

impl From<StoreError> for HubError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "store error");
        HubError::Internal("storage failure".into())
    }
}
