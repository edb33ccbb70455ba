//! The write side: commands in, events stored, events relayed to the bus.
//!
//! Owns command dispatch through cqrs-es over postgres-es (plain event-store mode), the metadata
//! stored with every event, the global gap-free feed of the event store, and the relay that
//! publishes that feed to NATS JetStream. It never builds read models: those are fed only from
//! the bus (see the `projections` crate), so a crash can never leave one half-updated.
//!
//! Map:
//! - [`bus`]: the generic command bus every aggregate is dispatched through.
//! - [`metadata`]: who and why, attached to every event.
//! - [`users`]: user commands, including the email-uniqueness rule.
//! - [`jobs`]: job commands, with the checks that span documents and parent jobs.
//! - [`scheduler`]: the job process manager (durable lease-expiry and retry timers).
//! - [`idempotency`]: reading back what an idempotency key already produced.
//! - [`feed`]: the only reader of the `events` table by global position.
//! - [`jetstream`]: connecting to NATS, checking its version, declaring the stream.
//! - [`relay`]: feed → JetStream with acknowledged publishes and a checkpoint, one active
//!   instance at a time.

pub mod bus;
pub mod feed;
pub mod idempotency;
pub mod jetstream;
pub mod jobs;
pub mod metadata;
pub mod relay;
pub mod scheduler;
pub mod users;

pub use bus::{CommandBus, CommandError, CommandOutcome};
pub use metadata::{CommandContext, IdempotencyClaim};
