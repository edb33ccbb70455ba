//! The business domain: aggregates, their commands and events, value objects and domain errors.
//!
//! This crate decides; it never performs I/O. It must not read the clock, generate randomness,
//! touch a database or a message bus: whatever a decision needs (the current time, a new id)
//! arrives inside the command. That keeps every rule testable as a plain function and lets an
//! auditor replay history to exactly the state the system saw.
//!
//! Map:
//! - [`aggregate`]: the adapter that turns a pure `decide`/`evolve` pair into a cqrs-es aggregate,
//!   with optimistic concurrency (`expected_version`) handled once for every aggregate.
//! - [`error`]: the classification every domain error exposes to the layers above.
//! - [`event`]: the stored-event record shared by the relay, projections and auditors.
//! - [`identity`]: tenants, roles, principals, and tenant-scoped stream ids.
//! - [`policy`]: the authorization table every route goes through.
//! - [`documents`]: the `Document` aggregate and recognising content by its first bytes.
//! - [`jobs`]: the `TranslationJob` aggregate: lifecycle, leases, progress, retries.
//! - [`api_keys`]: the `ApiKey` aggregate (issue, revoke; only a hash of the secret is stored).
//! - [`users`]: the `User` aggregate (register, rename, deactivate, reactivate).

pub mod aggregate;
pub mod api_keys;
pub mod documents;
pub mod error;
pub mod event;
pub mod identity;
pub mod jobs;
pub mod policy;
pub mod users;
