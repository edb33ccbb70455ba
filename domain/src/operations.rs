//! Operating the backend: the actions of the shared machinery itself, not of a business
//! context. Projections can be inspected (lag, parked streams), a parked stream retried after a
//! fix, and a projection rebuilt from the event store. Rebuilds and anything that spans tenants
//! belong to operators, whose credentials no tenant's admin can create.

use crate::identity::Role;
use crate::policy::{context_actions, Rule};

context_actions! {
    /// The actions that operate the read side.
    pub enum OperationAction in "operations" {
        /// Read projection lag and parked streams: a tenant's admins and auditors see their
        /// own tenant's parked streams and errors, operators every tenant's.
        ReadProjectionStatus = "read_projection_status" =>
            Rule::roles(&[Role::Admin, Role::Auditor, Role::Operator]),
        /// Retry a parked stream: a tenant's admins their own tenant's, operators any.
        RetryParked = "retry_parked" => Rule::roles(&[Role::Admin, Role::Operator]),
        /// Rebuild a projection from the event store: it rebuilds every tenant's read model, so
        /// only operators may.
        RebuildProjection = "rebuild_projection" => Rule::roles(&[Role::Operator]),
    }
}
