//! The write side: commands in, events stored, events relayed to the bus.
//!
//! Owns command dispatch through cqrs-es over postgres-es's schema (our own `EventStore`, with
//! snapshots done right and one statement per load and per append), the metadata
//! stored with every event, the global gap-free feed of the event store, and the relay that
//! publishes that feed to NATS JetStream. It never builds read models: those are fed only from
//! the bus (see the `projections` crate), so a crash can never leave one half-updated.
//!
//! Map. Shared machinery:
//! - [`bus`]: the generic command bus every aggregate is dispatched through.
//! - [`metadata`]: who and why, attached to every event.
//! - [`idempotency`]: reading back what an idempotency key already produced.
//! - [`feed`]: the only reader of the `events` table by global position.
//! - [`jetstream`]: connecting to NATS, checking its version, declaring the stream.
//! - [`relay`]: feed → JetStream with acknowledged publishes and a checkpoint, one active
//!   instance at a time.
//! - [`wakeup`]: waking the relay of another process after commits (Postgres `NOTIFY`).
//! - [`failure`]: whether a failure of the store is worth retrying.
//!
//! One folder per bounded context, each registered once in [`WriteSide`]:
//! - [`users`]: user commands, including the email-uniqueness rule.
//! - [`api_keys`]: issuing and revoking API keys.
//! - [`documents`]: uploads into the object store, recorded as events, with compensation.
//! - [`community`]: categories, posts, comments and reactions, each written only where the
//!   aggregates it names take it.
//! - [`prices`]: assets, and reported bars recorded into the series stream of their period.
//! - [`tenants`]: provisioning a tenant with its first admin key, settings, suspension.
//! - [`jobs`]: job commands with the checks that span documents and parent jobs, the worker
//!   protocol, and the process manager (durable lease-expiry and retry timers).

pub mod api_keys;
pub mod audit;
pub mod bus;
pub mod community;
pub mod documents;
pub mod failure;
pub mod feed;
pub mod idempotency;
pub mod jetstream;
pub mod jobs;
pub mod metadata;
pub mod prices;
pub mod relay;
pub mod snapshots;
pub mod tenants;
pub mod users;
pub mod wakeup;

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::Notify;

pub use bus::{CommandBus, CommandError, CommandOutcome};
pub use metadata::{CommandContext, IdempotencyClaim};

/// What the write side is built with.
#[derive(Debug, Clone)]
pub struct WriteSettings {
    /// How long an idempotency key answers retries.
    pub idempotency_ttl: Duration,
    /// A snapshot once a load would replay this many events (0: never).
    pub snapshot_every: u64,
    /// Where document bytes go, and the upload rules.
    pub documents: documents::StoreSettings,
}

/// Every bounded context's command handlers: the one place a context registers its write side.
#[derive(Debug, Clone)]
pub struct WriteSide {
    /// Users.
    pub users: Arc<users::UserCommands>,
    /// API keys.
    pub api_keys: Arc<api_keys::ApiKeyCommands>,
    /// Documents.
    pub documents: Arc<documents::DocumentCommands>,
    /// Translation jobs.
    pub jobs: Arc<jobs::JobCommands>,
    /// Community: categories and posts.
    pub community: Arc<community::CommunityCommands>,
    /// Tenants: provisioning, settings, suspension.
    pub tenants: Arc<tenants::TenantCommands>,
    /// Asset prices: assets and their bars.
    pub prices: Arc<prices::PriceCommands>,
}

impl WriteSide {
    /// Builds every context's handlers over the event store behind `pool`; each append pokes
    /// `relay_wakeup`.
    ///
    /// # Errors
    /// When the document store cannot be opened.
    pub fn build(
        pool: &PgPool,
        relay_wakeup: &Arc<Notify>,
        settings: WriteSettings,
    ) -> Result<Self, object_store::Error> {
        let bus = || Bus {
            pool,
            relay_wakeup,
            ttl: settings.idempotency_ttl,
            snapshot_every: settings.snapshot_every,
        };
        let documents = Arc::new(documents::DocumentCommands::new(
            bus().build(),
            documents::DocumentStore::open(settings.documents.clone())?,
        ));
        Ok(Self {
            users: Arc::new(users::UserCommands::new(bus().build())),
            api_keys: Arc::new(bus().build()),
            jobs: Arc::new(jobs::JobCommands::new(bus().build(), documents.clone())),
            community: Arc::new(community::CommunityCommands::new(
                community::CommunityBuses {
                    categories: bus().build(),
                    posts: bus().build(),
                    comments: bus().build(),
                    reactions: bus().build(),
                    reports: bus().build(),
                    members: bus().build(),
                    users: bus().build(),
                    keys: bus().build(),
                    announcements: bus().build(),
                    readings: bus().build(),
                    public_pages: bus().build(),
                },
            )),
            tenants: Arc::new(tenants::TenantCommands::new(bus().build(), bus().build())),
            prices: Arc::new(prices::PriceCommands::new(
                bus().build(),
                bus().build(),
                bus().build(),
                bus().build(),
                bus().build(),
            )),
            documents,
        })
    }
}

/// The shared parts of every context's bus.
struct Bus<'a> {
    pool: &'a PgPool,
    relay_wakeup: &'a Arc<Notify>,
    ttl: Duration,
    snapshot_every: u64,
}

impl Bus<'_> {
    fn build<D: domain::aggregate::Decider + 'static>(&self) -> CommandBus<D> {
        CommandBus::new(self.pool.clone(), self.relay_wakeup.clone())
            .with_idempotency_ttl(self.ttl)
            .with_snapshots_every(self.snapshot_every)
    }
}
