//! The read side: the projection engine and every read model with its queries.
//!
//! Read models are fed only from JetStream (never from cqrs-es's in-process queries, which run
//! after the commit and swallow failures). The engine applies each batch in one Postgres
//! transaction together with a per-stream guard and the projection's checkpoint, and acknowledges
//! messages only after that transaction commits: a crash anywhere leads to redelivery, and the
//! guard turns redelivery into a no-op. This crate never writes the event store.
//!
//! Map:
//! - [`engine`]: the [`engine::Projection`] trait and the runner that drives one.
//! - [`consistency`]: read-your-writes, waiting for a command's consistency token.
//! - [`jobs`]: the jobs read models (detail, lists, worker queue, usage) and dashboard statistics.
//! - [`rebuild`]: rebuilding a projection from the event store without downtime.
//! - [`registry`]: every projection of this build, by name.
//! - [`status`]: lag, parked streams, and the completeness check against the event store.
//! - [`users`]: the users read model and its queries.

pub mod consistency;
pub mod engine;
pub mod jobs;
pub mod rebuild;
pub mod registry;
pub mod status;
pub mod users;
