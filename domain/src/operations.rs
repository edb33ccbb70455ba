//! Operating the backend: the actions of the shared machinery itself, not of a business
//! context. Projections can be inspected (lag, parked streams), a parked stream retried after a
//! fix, and a projection rebuilt from the event store.

use crate::identity::Role;
use crate::policy::{context_actions, Rule};

context_actions! {
    /// The actions that operate the read side.
    pub enum OperationAction in "operations" {
        /// Read projection lag and parked streams.
        ReadProjectionStatus = "read_projection_status" =>
            Rule::roles(&[Role::Admin, Role::Auditor]),
        /// Retry a parked stream.
        RetryParked = "retry_parked" => Rule::roles(&[Role::Admin]),
        /// Rebuild a projection from the event store.
        RebuildProjection = "rebuild_projection" => Rule::roles(&[Role::Admin]),
    }
}
