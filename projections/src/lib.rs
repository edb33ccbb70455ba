//! The read side: the projection engine and every read model with its queries.
//!
//! Read models are fed only from JetStream (never from cqrs-es's in-process queries, which run
//! after the commit and swallow failures) and from the event store where JetStream's bounded
//! retention falls short. The engine applies each batch in one Postgres transaction together
//! with a per-stream guard and the projection's progress, and acknowledges messages only after
//! that transaction commits: a crash anywhere leads to redelivery, and the guard turns
//! redelivery into a no-op. This crate never writes the event store, and never reads it by
//! global position itself: history arrives through an [`engine::EventSource`] that the
//! composition side implements over the write side's feed.
//!
//! Map:
//! - [`engine`]: the [`engine::Projection`] trait, the runner, guard, parking, progress, gap
//!   filling and first builds.
//! - [`rebuild`]: rebuilding a projection from the event store without downtime.
//! - [`registry`]: every projection of this build, by name (one line each).
//! - [`status`]: lag, parked streams, and the completeness check against the event store.
//! - [`health`]: what probes and scrapes read: consumer backlogs and parked counts, without
//!   reading the event store.
//! - [`consistency`]: read-your-writes, waiting for a command's consistency token.
//! - [`live`]: one JetStream subscription per process, fanned out to every live client.
//! - [`jobs`]: the jobs read models (detail, lists, worker queue, usage), dashboard statistics
//!   and live updates.
//! - [`users`]: the users read model and its queries.
//! - [`community`]: categories with their activity and posts, and what each reader may see.

/// The read models of each bounded context: the context's module, and under it each projection
/// it registers (a variant name and the projection's value). This is the crate's one
/// registration point: it declares the modules here, and [`registry`] derives
/// [`registry::Registered`] from the same list.
macro_rules! read_models {
    ($callback:ident) => {
        $callback! {
            users: [
                /// `read_models.users`.
                Users => UsersProjection,
            ],
            jobs: [
                /// `read_models.jobs` and the tables around it.
                Jobs => JobsProjection,
            ],
            community: [
                /// `read_models.community_*`: categories, their activity, posts.
                Community => CommunityProjection,
            ],
            tenants: [
                /// `read_models.tenants` and `read_models.tenant_documents`.
                Tenants => TenantsProjection,
            ],
            prices: [
                /// `read_models.price_*`: assets, bars (partitioned by time), corrections.
                Prices => PricesProjection,
            ],
        }
    };
}

/// Declares each registered context's module.
macro_rules! declare_modules {
    ($($module:ident: [$($(#[doc = $doc:literal])* $variant:ident => $projection:ident),+ $(,)?]),+ $(,)?) => {
        $(pub mod $module;)+
    };
}

read_models!(declare_modules);

pub mod consistency;
pub mod engine;
pub mod health;
pub mod live;
pub mod rebuild;
pub mod registry;
pub mod status;
