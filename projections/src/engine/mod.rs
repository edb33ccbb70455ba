//! The projection engine: consume, guard, apply, checkpoint, acknowledge.
//!
//! The one hard idea: a read model is exactly-once although the bus is at-least-once. JetStream
//! redelivers whatever was not acknowledged, and the relay may publish an event twice, so the
//! engine never trusts delivery. It applies a batch in ONE Postgres transaction together with a
//! per-stream guard (the last sequence applied per projection and aggregate) and the lane's
//! progress, and acknowledges only after that transaction commits. A crash anywhere means a
//! redelivery; the guard turns it into a no-op (an older sequence is a duplicate), holds back an
//! event that came too early (a newer sequence is a gap), and a poison event parks its stream
//! alone. Postgres is the history, JetStream a buffer: a projection seen for the first time is
//! built from the store before it consumes, a gap the bus can no longer fill is filled from the
//! store, and so is every stream of a partition whose unread messages the bus's retention
//! dropped.
//!
//! Map:
//! - [`runner`]: [`ProjectionRunner`], one worker per partition, consuming JetStream.
//! - [`startup`]: what a runner settles before it consumes: a first build from the store.
//! - [`guard`]: the per-stream guard and its [`Verdict`]s.
//! - [`batch`]: applying a batch in one transaction ([`apply_to`], [`apply_events`]).
//! - [`gaps`]: filling a gap JetStream cannot fill from the event store.
//! - [`catchup`]: a partition that JetStream's retention left behind catches up from the store.
//! - [`parking`]: poison streams kept aside, and [`retry_parked`].
//! - [`progress`]: the per-lane counters behind lag and proofs of exactly-once.
//! - [`checkpoint`]: the per-projection row: live version and where consumers start.
//! - [`source`]: [`EventSource`], how the engine reads the event store.

use std::future::Future;

use domain::event::RecordedEvent;
use sqlx::PgConnection;

pub mod batch;
pub mod catchup;
pub mod checkpoint;
mod consumer;
pub mod gaps;
pub mod guard;
pub mod in_progress;
pub mod parking;
pub mod progress;
pub mod runner;
pub mod source;
pub mod startup;

pub use batch::{apply_events, apply_to};
pub use guard::Verdict;
pub use parking::{retry_parked, retry_parked_from_store, RetryOutcome};
pub(crate) use progress::LaneProgress;
pub use runner::{consumer_name, partition_of, ProjectionRunner, RunnerSettings};
pub use source::{BoxError, EventSource, UnreadableHistory};

/// Why applying an event failed.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The event's payload is not what this projection understands. Retrying will not help.
    #[error("event {event_type} v{event_version} cannot be decoded")]
    Decode {
        /// The stored event type.
        event_type: String,
        /// The stored event version.
        event_version: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// The event contradicts the read model (e.g. an update for a row that does not exist).
    #[error("event does not fit the read model: {0}")]
    Inconsistent(String),
    /// The database failed; retrying may help.
    #[error("read model database failure")]
    Database(#[from] sqlx::Error),
    /// Reading the event store (to fill a gap) failed. Retrying may help, unless the source
    /// marked the failure as [`UnreadableHistory`]: then it repeats on every attempt.
    #[error("reading the event store failed")]
    Store(#[source] BoxError),
}

impl ApplyError {
    /// Whether retrying the same event later may succeed (the database was unreachable or
    /// overloaded), as opposed to a failure that will repeat for this event every time.
    pub fn is_transient(&self) -> bool {
        let error = match self {
            Self::Database(error) => error,
            Self::Store(error) => return !UnreadableHistory::is_in(&**error),
            Self::Decode { .. } | Self::Inconsistent(_) => return false,
        };
        match error {
            sqlx::Error::Database(db) => {
                // Connection exceptions, rollbacks (serialization, deadlock), resources,
                // operator intervention, system errors.
                let code = db.code().unwrap_or_default();
                ["08", "40", "53", "57", "58"]
                    .iter()
                    .any(|class| code.starts_with(class))
            }
            sqlx::Error::Decode(_)
            | sqlx::Error::ColumnDecode { .. }
            | sqlx::Error::TypeNotFound { .. } => false,
            _ => true,
        }
    }

    /// Decodes an event's payload into the aggregate's event type.
    ///
    /// # Errors
    /// [`ApplyError::Decode`].
    pub fn decode<E: serde::de::DeserializeOwned>(event: &RecordedEvent) -> Result<E, Self> {
        serde_json::from_value(event.payload.clone()).map_err(|source| Self::Decode {
            event_type: event.event_type.clone(),
            event_version: event.event_version.clone(),
            source,
        })
    }
}

/// A read model: what it is called, which streams it reads, and how one event changes it.
///
/// Everything else (consuming, the guard, checkpoints, acknowledgements, retries) is the
/// engine's job; a projection never sees the bus.
pub trait Projection: Send + Sync + 'static {
    /// Stable name: the durable consumer's name and the guard's key. Never reuse one.
    fn name(&self) -> &'static str;

    /// The version of its logic and tables. Changing it rebuilds the projection at start-up.
    fn version(&self) -> u32;

    /// The aggregate types whose events this projection reads.
    fn aggregate_types(&self) -> &'static [&'static str];

    /// Its tables, unqualified. They live in the `read_models` schema (created by a migration);
    /// `apply` must name them unqualified, because a rebuild builds copies in another schema.
    fn tables(&self) -> &'static [&'static str];

    /// Applies one event inside the engine's transaction, whose `search_path` points at the
    /// schema being written. Called exactly once per event, in stream order; the engine has
    /// already checked the sequence.
    fn apply(
        &self,
        connection: &mut PgConnection,
        event: &RecordedEvent,
    ) -> impl Future<Output = Result<(), ApplyError>> + Send;

    /// Applies `events`, each the next of its stream, in feed order (a stream may appear more
    /// than once), inside the engine's transaction. The result must be what [`Projection::apply`]
    /// of each in turn gives; the default does exactly that. A projection whose rows fold can
    /// do it in a few statements for the whole batch. On a deterministic failure the engine
    /// rolls the batch back and applies it again one event at a time, so the event at fault
    /// parks its stream alone.
    fn apply_batch(
        &self,
        connection: &mut PgConnection,
        events: &[&RecordedEvent],
    ) -> impl Future<Output = Result<(), ApplyError>> + Send {
        async move {
            for &event in events {
                self.apply(&mut *connection, event).await?;
            }
            Ok(())
        }
    }
}

/// Where a projection writes: the key of its guard, checkpoint and parked rows, and the schema
/// its tables are in. The live target is the projection itself in `read_models`; a rebuild
/// writes to a target of its own until it swaps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Guard, checkpoint and parking key.
    pub name: String,
    /// Schema of the tables written.
    pub schema: String,
}

impl Target {
    /// The schema every live read model lives in.
    pub const LIVE_SCHEMA: &'static str = "read_models";

    /// Where `projection` writes normally.
    pub fn live(projection: &impl Projection) -> Self {
        Self {
            name: projection.name().to_owned(),
            schema: Self::LIVE_SCHEMA.to_owned(),
        }
    }

    /// Where a rebuild of `projection` writes before it swaps.
    pub fn rebuild(projection: &impl Projection) -> Self {
        Self {
            name: format!("{}@rebuild", projection.name()),
            schema: format!("rebuild_{}", projection.name()),
        }
    }

    /// The advisory lock key shared by live batches and taken exclusively by a rebuild's swap.
    pub fn swap_lock(projection_name: &str) -> String {
        format!("projection-swap:{projection_name}")
    }

    /// Points the transaction at this target's tables, in one round trip. Live batches also
    /// hold the projection's swap lock in shared mode, so a rebuild's swap never interleaves
    /// with them.
    pub async fn enter(
        &self,
        connection: &mut PgConnection,
        projection_name: &str,
    ) -> Result<(), sqlx::Error> {
        // `set_config(.., true)` is `SET LOCAL`. Schema names are derived from projection names
        // in code, never from input.
        let search_path = format!("\"{}\"", self.schema);
        let live = self.schema == Self::LIVE_SCHEMA;
        sqlx::query(
            "SELECT set_config('search_path', $1, true),
                    CASE WHEN $2 THEN pg_advisory_xact_lock_shared(hashtextextended($3, 0)) END",
        )
        .bind(search_path)
        .bind(live)
        .bind(Self::swap_lock(projection_name))
        .execute(connection)
        .await?;
        Ok(())
    }
}
