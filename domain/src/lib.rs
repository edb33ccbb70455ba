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
//! - [`names`]: the rules every user-visible name obeys (length, no control characters, no
//!   invisible or bidirectional format characters), shared by the contexts' name value objects.
//! - [`policy`]: authorization, and the one place bounded contexts register their actions: the
//!   crate-wide `Action` is derived from each context's action enum, `authorize` checks any.
//! - [`operations`]: the actions of the shared machinery itself (projection status, retrying
//!   parked streams, rebuilds).
//!
//! One folder per bounded context, each holding its aggregate, commands, events and errors, and
//! a `policy.rs` declaring its actions and who may perform them:
//! - [`documents`]: the `Document` aggregate and recognising content by its first bytes.
//! - [`jobs`]: the `TranslationJob` aggregate: lifecycle, leases, progress, retries.
//! - [`api_keys`]: the `ApiKey` aggregate (issue, revoke; only a hash of the secret is stored).
//! - [`users`]: the `User` aggregate (register, rename, deactivate, reactivate).
//! - [`community`]: the `Category` and `Post` aggregates (categories kept by admins, posts
//!   written by members, edited by their authors, moderated).
//! - [`prices`]: the `Asset` and `PriceSeries` aggregates (bars recorded, corrected, never
//!   deleted). No routes yet, so no policy actions.
//! - [`tenants`]: the `Tenant` aggregate (provisioned, settings changed, suspended,
//!   reactivated by operators).
//! - [`audit`]: reading the history (no aggregate): its actions, and replaying any aggregate's
//!   stored events into its state as of a version or a time.
//!
//! Events are stored forever: each context's `stored_events.rs` holds the stored JSON of every
//! event variant as snapshots, checked by the test-only `stored_check` kernel module, so a rename
//! that would change history fails a test. An aggregate whose events lack that test does not
//! compile in test builds, so a new context needs no list outside its folder to be covered.

/// The bounded contexts of the domain: each line names a context's module and its policy
/// actions, once. This is the crate's one registration point: [`policy`] derives the crate-wide
/// `Action` from it.
macro_rules! bounded_contexts {
    ($callback:ident) => {
        $callback! {
            /// Users: registration, profile, roles, deactivation.
            Users(users::UserAction),
            /// API keys.
            ApiKeys(api_keys::ApiKeyAction),
            /// Operating the read side: projection status, parked streams, rebuilds.
            Operations(operations::OperationAction),
            /// Translation jobs, their worker protocol, statistics and usage.
            Jobs(jobs::JobAction),
            /// Uploaded documents.
            Documents(documents::DocumentAction),
            /// Reading the history: pages, streams, state as of a version or time, exports.
            Audit(audit::AuditAction),
            /// Community: categories and the posts members write in them.
            Community(community::CommunityAction),
            /// Tenants: provisioning, settings, quotas, suspension.
            Tenants(tenants::TenantAction),
            /// Asset prices: assets, bars recorded and corrected, their queries.
            Prices(prices::PriceAction),
        }
    };
}

// The contexts' modules are plain `mod` items, not generated from the list above: tools that find
// source files by walking `mod` items without expanding macros (cargo-mutants) would otherwise
// skip every context, silently. The compiler keeps the two in step: a context listed above
// without its module does not compile, and a module left out of the list has actions that do
// not convert into `Action`, so no route can authorize them.
pub mod api_keys;
pub mod audit;
pub mod community;
pub mod documents;
pub mod jobs;
pub mod operations;
pub mod prices;
pub mod tenants;
pub mod users;

pub mod aggregate;
pub mod error;
pub mod event;
pub mod identity;
pub mod names;
pub mod policy;
pub mod subjects;

#[cfg(test)]
pub(crate) mod stored_check;
