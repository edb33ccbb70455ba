//! The projection engine: consume, guard, apply, checkpoint, acknowledge.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::time::Duration;

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
use async_nats::jetstream::{self, AckKind, Message};
use domain::event::{RecordedEvent, Subjects};
use futures::StreamExt;
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use tracing::{error, warn};

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
}

impl ApplyError {
    /// Whether retrying the same event later may succeed (the database was unreachable or
    /// overloaded), as opposed to a failure that will repeat for this event every time.
    pub fn is_transient(&self) -> bool {
        let Self::Database(error) = self else {
            return false;
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

/// What the per-stream guard decided for one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The next event of its stream: applied.
    Applied,
    /// Already applied (a redelivery or a re-publish): acknowledged, not applied.
    Duplicate,
    /// An earlier event of its stream has not been applied yet: retried later.
    Gap,
    /// Its stream is parked (by this event, or by an earlier one it now waits behind): kept in
    /// `projection.parked` until a retry, and acknowledged.
    Parked,
}

/// Settings of one projection runner.
#[derive(Debug, Clone)]
pub struct RunnerSettings {
    /// The JetStream stream to consume.
    pub stream: String,
    /// The subject naming scheme of that stream.
    pub subjects: Subjects,
    /// Most events applied in one transaction.
    pub batch_size: usize,
    /// How long a gap waits before redelivery.
    pub gap_retry: Duration,
    /// How long a failed batch waits before redelivery.
    pub failure_retry: Duration,
    /// Partitions of every projection (streams are split by a stable hash of their id).
    pub partitions: u32,
    /// This process's id, recorded as the owner of the partitions it builds.
    pub worker_id: String,
}

/// The partition a stream belongs to: FNV-1a of its id, modulo `partitions`. Stable across
/// processes, builds and restarts.
pub fn partition_of(stream_id: &str, partitions: u32) -> u32 {
    let hash = stream_id
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        });
    (hash % u64::from(partitions.max(1))) as u32
}

/// Drives one projection from JetStream into its read model.
#[derive(Debug)]
pub struct ProjectionRunner<P> {
    projection: P,
    pool: PgPool,
    settings: RunnerSettings,
}

impl<P: Projection> ProjectionRunner<P> {
    /// A runner applying `projection` to the database behind `pool`.
    pub fn new(projection: P, pool: PgPool, settings: RunnerSettings) -> Self {
        Self {
            projection,
            pool,
            settings,
        }
    }

    /// The projection being run.
    pub fn projection(&self) -> &P {
        &self.projection
    }

    /// One step, without the bus: applies `events` of `partition` in one transaction, guarded,
    /// and records the partition's progress. Returns one verdict per event, in order.
    ///
    /// An event whose apply fails deterministically parks its stream (inside the same
    /// transaction, behind a savepoint), and the stream's later events wait behind it; every
    /// other stream keeps flowing.
    ///
    /// # Errors
    /// On transient failures (database unavailable); nothing of the batch is then committed.
    pub async fn apply_batch(
        &self,
        partition: u32,
        events: &[(u64, RecordedEvent)],
    ) -> Result<Vec<Verdict>, ApplyError> {
        apply_to(
            &self.projection,
            &Target::live(&self.projection),
            &self.pool,
            partition,
            events,
        )
        .await
    }

    /// Consumes until `shutdown`, recreating the consumer after bus failures.
    ///
    /// Every partition gets a worker here; each worker first wins the partition's advisory lock,
    /// so across all processes exactly one builds a partition at a time, and when its process
    /// (or connection) dies the lock is released and another process takes over.
    pub async fn run(self, jetstream: jetstream::Context, shutdown: CancellationToken) {
        let runner = std::sync::Arc::new(self);
        let mut partitions = tokio::task::JoinSet::new();
        for partition in 0..runner.settings.partitions.max(1) {
            let (runner, jetstream, shutdown) =
                (runner.clone(), jetstream.clone(), shutdown.clone());
            partitions
                .spawn(async move { runner.run_partition(partition, &jetstream, &shutdown).await });
        }
        while partitions.join_next().await.is_some() {}
    }

    async fn run_partition(
        &self,
        partition: u32,
        jetstream: &jetstream::Context,
        shutdown: &CancellationToken,
    ) {
        let name = self.projection.name();
        let mut wait = Duration::from_millis(50);
        while !shutdown.is_cancelled() {
            let result = match self.own(partition).await {
                Ok(Some(lock)) => self.consume(partition, lock, jetstream, shutdown).await,
                // Another process builds this partition; stand by to take over.
                Ok(None) => {
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_millis(500)) => {}
                        () = shutdown.cancelled() => {}
                    }
                    continue;
                }
                Err(error) => Err(error.into()),
            };
            match result {
                Ok(()) => wait = Duration::from_millis(50),
                Err(error) => {
                    warn!(projection = name, partition, error = %error, "projection partition failed; retrying");
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        () = shutdown.cancelled() => {}
                    }
                    wait = (wait * 2).min(Duration::from_secs(2));
                }
            }
        }
    }

    /// Tries to become the one worker of `partition`; the returned connection holds the lock.
    async fn own(&self, partition: u32) -> Result<Option<PgConnection>, sqlx::Error> {
        let mut connection = self.pool.acquire().await?.detach();
        let partitions = self.settings.partitions.max(1);
        let key = format!(
            "projection:{}:{partition}/{partitions}",
            self.projection.name()
        );
        let owned: bool =
            sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
                .bind(key)
                .fetch_one(&mut connection)
                .await?;
        if !owned {
            return Ok(None);
        }
        self.heartbeat(&mut connection, partition, true).await?;
        Ok(Some(connection))
    }

    async fn heartbeat(
        &self,
        connection: &mut PgConnection,
        partition: u32,
        new_owner: bool,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO projection.partition_owners (projection, partitions, partition, owner)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (projection, partitions, partition) DO UPDATE
                SET owner = EXCLUDED.owner, heartbeat_at = clock_timestamp(),
                    since = CASE WHEN $5 THEN clock_timestamp() ELSE projection.partition_owners.since END",
        )
        .bind(self.projection.name())
        .bind(self.settings.partitions.max(1) as i32)
        .bind(partition as i32)
        .bind(&self.settings.worker_id)
        .bind(new_owner)
        .execute(connection)
        .await?;
        Ok(())
    }

    async fn consume(
        &self,
        partition: u32,
        mut lock: PgConnection,
        jetstream: &jetstream::Context,
        shutdown: &CancellationToken,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let name = self.projection.name();
        let partitions = self.settings.partitions.max(1);
        let consumer_name = format!("{name}-{partition}of{partitions}");
        let stream = jetstream.get_stream(&self.settings.stream).await?;
        let config = pull::Config {
            durable_name: Some(consumer_name.clone()),
            filter_subjects: self
                .projection
                .aggregate_types()
                .iter()
                .map(|aggregate_type| self.settings.subjects.for_aggregate_type(aggregate_type))
                .collect(),
            ack_policy: AckPolicy::Explicit,
            deliver_policy: DeliverPolicy::All,
            ack_wait: Duration::from_secs(30),
            max_ack_pending: 10_000,
            ..Default::default()
        };
        let consumer = stream
            .get_or_create_consumer(&consumer_name, config)
            .await?;
        let mut batches = consumer
            .messages()
            .await?
            .ready_chunks(self.settings.batch_size);
        let mut heartbeat = tokio::time::interval(Duration::from_secs(5));
        loop {
            let batch = tokio::select! {
                batch = batches.next() => batch,
                _ = heartbeat.tick() => {
                    // The lock lives as long as this connection; if it died, so did ownership.
                    self.heartbeat(&mut lock, partition, false).await?;
                    continue;
                }
                () = shutdown.cancelled() => return Ok(()),
            };
            let Some(batch) = batch else {
                return Err("consumer message stream ended".into());
            };
            let mut messages = Vec::with_capacity(batch.len());
            for message in batch {
                match message {
                    Ok(message) => messages.push(message),
                    Err(error) => warn!(projection = name, error = %error, "consumer error"),
                }
            }
            self.handle(partition, messages).await;
        }
    }

    /// Applies one batch of messages and acknowledges them according to their verdicts.
    async fn handle(&self, partition: u32, messages: Vec<Message>) {
        let name = self.projection.name();
        let mut events = Vec::with_capacity(messages.len());
        let mut decoded = Vec::with_capacity(messages.len());
        let partitions = self.settings.partitions;
        for message in messages {
            // The subject names the stream, so another partition's message is acknowledged
            // without decoding its payload.
            if let Some(id) = self.settings.subjects.aggregate_id_of(&message.subject) {
                if partition_of(id, partitions) != partition {
                    ack(&message).await;
                    continue;
                }
            }
            let stream_sequence = message.info().map(|info| info.stream_sequence).unwrap_or(0);
            match serde_json::from_slice::<RecordedEvent>(&message.payload) {
                // Another partition's stream: this partition's consumer has nothing to do.
                Ok(event) if partition_of(&event.aggregate_id, partitions) != partition => {
                    ack(&message).await;
                }
                Ok(event) => {
                    events.push((stream_sequence, event));
                    decoded.push(message);
                }
                Err(error) => {
                    error!(projection = name, subject = %message.subject, error = %error,
                        "message is not a recorded event; holding it for redelivery");
                    nak(&message, self.settings.failure_retry).await;
                }
            }
        }
        if events.is_empty() {
            return;
        }
        match self.apply_batch(partition, &events).await {
            Ok(verdicts) => {
                for (message, verdict) in decoded.iter().zip(verdicts) {
                    match verdict {
                        Verdict::Applied | Verdict::Duplicate | Verdict::Parked => {
                            ack(message).await;
                        }
                        Verdict::Gap => nak(message, self.settings.gap_retry).await,
                    }
                }
            }
            Err(error) => {
                error!(projection = name, error = %error, source = ?std::error::Error::source(&error),
                    "applying a batch failed; it will be redelivered");
                for message in &decoded {
                    // Back off exponentially with the number of deliveries, up to a minute.
                    let deliveries = message.info().map_or(1, |info| info.delivered).clamp(1, 16);
                    let delay = self
                        .settings
                        .failure_retry
                        .saturating_mul(1 << (deliveries - 1) as u32);
                    nak(message, delay.min(Duration::from_secs(60))).await;
                }
            }
        }
    }
}

/// Applies `events` to `target` in one transaction, guarded, parking poison streams, and records
/// the progress of `lane`. Returns one verdict per event, in order.
///
/// Most batches hold no poison event, so the first attempt applies them without a savepoint
/// each. When an event fails deterministically, that transaction is rolled back and the batch is
/// applied again in a new one with every event behind its own savepoint, so the poison event
/// parks its stream and the others are applied.
///
/// # Errors
/// On transient failures; nothing of the batch is then committed.
pub async fn apply_to<P: Projection>(
    projection: &P,
    target: &Target,
    pool: &PgPool,
    lane: u32,
    events: &[(u64, RecordedEvent)],
) -> Result<Vec<Verdict>, ApplyError> {
    let name = target.name.as_str();
    let refs: Vec<&RecordedEvent> = events.iter().map(|(_, event)| event).collect();
    for isolated in [false, true] {
        let mut tx = pool.begin().await?;
        target.enter(&mut tx, projection.name()).await?;
        let mut guard = Guard::load(&mut tx, name, &refs).await?;
        let Some(verdicts) = walk(projection, name, &mut tx, &refs, &mut guard, isolated).await?
        else {
            tx.rollback().await?;
            continue;
        };
        guard.save(&mut tx, name).await?;
        let applied = events
            .iter()
            .zip(&verdicts)
            .filter(|(_, verdict)| **verdict == Verdict::Applied);
        let progress = LaneProgress {
            last_stream_sequence: events.iter().map(|(seq, _)| *seq).max().unwrap_or(0) as i64,
            last_global_position: applied
                .clone()
                .map(|((_, event), _)| event.global_position)
                .max()
                .unwrap_or(0),
            applied: applied.count() as i64,
            duplicates: verdicts
                .iter()
                .filter(|v| **v == Verdict::Duplicate)
                .count() as i64,
        };
        progress.record(&mut tx, name, lane).await?;
        tx.commit().await?;
        return Ok(verdicts);
    }
    Err(ApplyError::Inconsistent(
        "a batch failed even with every event isolated".into(),
    ))
}

/// Applies `events` in order on `connection`, inside the caller's transaction (which it cannot
/// restart), against the guard of `name`, parking poison streams. Returns one verdict per event.
///
/// Like [`apply_to`], it first applies without savepoints; a deterministic failure rolls back
/// to a savepoint taken before the batch and walks it again with every event isolated.
///
/// # Errors
/// On transient failures.
pub async fn apply_events<P: Projection>(
    projection: &P,
    name: &str,
    connection: &mut PgConnection,
    events: &[&RecordedEvent],
) -> Result<Vec<Verdict>, ApplyError> {
    let loaded = Guard::load(&mut *connection, name, events).await?;
    sqlx::query("SAVEPOINT apply_batch")
        .execute(&mut *connection)
        .await?;
    let mut guard = loaded.clone();
    let verdicts = match walk(projection, name, connection, events, &mut guard, false).await? {
        Some(verdicts) => verdicts,
        None => {
            sqlx::query("ROLLBACK TO SAVEPOINT apply_batch")
                .execute(&mut *connection)
                .await?;
            guard = loaded;
            walk(projection, name, connection, events, &mut guard, true)
                .await?
                .ok_or_else(|| ApplyError::Inconsistent("isolated walk did not finish".into()))?
        }
    };
    sqlx::query("RELEASE SAVEPOINT apply_batch")
        .execute(&mut *connection)
        .await?;
    guard.save(connection, name).await?;
    Ok(verdicts)
}

/// A stream's key in the guard: (aggregate type, aggregate id), borrowed from the batch.
type StreamKey<'a> = (&'a str, &'a str);

fn stream_key(event: &RecordedEvent) -> StreamKey<'_> {
    (event.aggregate_type.as_str(), event.aggregate_id.as_str())
}

/// The per-stream guard of one batch: the last applied sequence of each of its streams, and
/// which of them are parked.
#[derive(Debug, Clone, Default)]
struct Guard<'a> {
    last: HashMap<StreamKey<'a>, i64>,
    advanced: HashSet<StreamKey<'a>>,
    parked: HashSet<StreamKey<'a>>,
}

impl<'a> Guard<'a> {
    /// Reads, and locks, the guard rows of every stream in `events`, and which of them are
    /// parked, in one statement.
    async fn load(
        connection: &mut PgConnection,
        projection: &str,
        events: &[&'a RecordedEvent],
    ) -> Result<Self, sqlx::Error> {
        let mut streams: Vec<StreamKey<'a>> =
            events.iter().map(|event| stream_key(event)).collect();
        streams.sort_unstable();
        streams.dedup();
        let (types, ids): (Vec<&str>, Vec<&str>) = streams.iter().copied().unzip();
        // Rows are locked in key order, so overlapping batches cannot deadlock on them.
        //
        // Planned for every batch (not prepared): a cached generic plan cannot see how many
        // streams the arrays hold, and one built while the table was small stayed a hash join
        // over all of the projection's rows as the table grew (the bench profiled 10 ms per
        // batch under load; planned with the arrays at hand it is an index lookup per stream).
        let rows: Vec<(String, String, i64, bool)> = sqlx::query_as(
            "WITH batch AS (SELECT * FROM unnest($2::text[], $3::text[]) AS b(aggregate_type, aggregate_id)),
             positions AS (
                 SELECT aggregate_type, aggregate_id, last_sequence FROM projection.stream_positions
                  WHERE projection = $1 AND (aggregate_type, aggregate_id) IN (SELECT * FROM batch)
                  ORDER BY aggregate_type, aggregate_id
                  FOR UPDATE)
             SELECT aggregate_type, aggregate_id, last_sequence, false FROM positions
             UNION ALL
             SELECT DISTINCT aggregate_type, aggregate_id, 0, true FROM projection.parked
              WHERE projection = $1 AND (aggregate_type, aggregate_id) IN (SELECT * FROM batch)",
        )
        .bind(projection)
        .bind(&types)
        .bind(&ids)
        .persistent(false)
        .fetch_all(connection)
        .await?;
        let mut guard = Self::default();
        for (aggregate_type, aggregate_id, last_sequence, parked) in rows {
            // Keys borrow from the batch, not from the rows.
            let Ok(at) = streams.binary_search(&(aggregate_type.as_str(), aggregate_id.as_str()))
            else {
                continue;
            };
            if parked {
                guard.parked.insert(streams[at]);
            } else {
                guard.last.insert(streams[at], last_sequence);
            }
        }
        Ok(guard)
    }

    fn next(&self, event: &RecordedEvent) -> i64 {
        self.last.get(&stream_key(event)).copied().unwrap_or(0) + 1
    }

    fn is_parked(&self, event: &RecordedEvent) -> bool {
        self.parked.contains(&stream_key(event))
    }

    fn applied(&mut self, event: &'a RecordedEvent) {
        let key = stream_key(event);
        self.last.insert(key, event.sequence);
        self.advanced.insert(key);
    }

    /// Writes the positions of the streams this batch advanced, in one statement.
    async fn save(
        &self,
        connection: &mut PgConnection,
        projection: &str,
    ) -> Result<(), sqlx::Error> {
        if self.advanced.is_empty() {
            return Ok(());
        }
        let mut rows: Vec<(&str, &str, i64)> = self
            .advanced
            .iter()
            .map(|key| (key.0, key.1, self.last[key]))
            .collect();
        // A stable order keeps concurrent writers of overlapping guards from deadlocking.
        rows.sort_unstable();
        let types: Vec<&str> = rows.iter().map(|row| row.0).collect();
        let ids: Vec<&str> = rows.iter().map(|row| row.1).collect();
        let sequences: Vec<i64> = rows.iter().map(|row| row.2).collect();
        sqlx::query(
            "INSERT INTO projection.stream_positions
                    (projection, aggregate_type, aggregate_id, last_sequence)
             SELECT $1, * FROM unnest($2::text[], $3::text[], $4::bigint[])
             ON CONFLICT (projection, aggregate_type, aggregate_id)
             DO UPDATE SET last_sequence = EXCLUDED.last_sequence",
        )
        .bind(projection)
        .bind(&types)
        .bind(&ids)
        .bind(&sequences)
        .execute(connection)
        .await?;
        Ok(())
    }
}

/// Walks a batch against `guard`. Without `isolated`, events are applied directly and the first
/// deterministic failure ends the walk with `None` (the caller rolls back and walks again
/// isolated); with it, each event is applied behind a savepoint and a failure parks its stream.
async fn walk<'a, P: Projection>(
    projection: &P,
    name: &str,
    connection: &mut PgConnection,
    events: &[&'a RecordedEvent],
    guard: &mut Guard<'a>,
    isolated: bool,
) -> Result<Option<Vec<Verdict>>, ApplyError> {
    let mut verdicts = Vec::with_capacity(events.len());
    for &event in events {
        let next = guard.next(event);
        let verdict = if event.sequence < next {
            Verdict::Duplicate
        } else if guard.is_parked(event) {
            park(&mut *connection, name, event, None).await?;
            Verdict::Parked
        } else if event.sequence > next {
            Verdict::Gap
        } else if !isolated {
            match projection.apply(&mut *connection, event).await {
                Ok(()) => {
                    guard.applied(event);
                    Verdict::Applied
                }
                Err(error) if error.is_transient() => return Err(error),
                Err(_) => return Ok(None),
            }
        } else {
            match apply_isolated(projection, &mut *connection, event).await? {
                Applied::Yes => {
                    guard.applied(event);
                    Verdict::Applied
                }
                Applied::No(error) => {
                    warn!(projection = name, stream = %event.aggregate_id, sequence = event.sequence,
                        error = %error, "event cannot be applied; parking its stream");
                    park(&mut *connection, name, event, Some(&error)).await?;
                    guard.parked.insert(stream_key(event));
                    Verdict::Parked
                }
            }
        };
        verdicts.push(verdict);
    }
    Ok(Some(verdicts))
}

/// Whether an event was applied, or why it could not be (deterministically).
enum Applied {
    Yes,
    No(String),
}

/// Applies one event behind a savepoint. A deterministic failure rolls back to the savepoint
/// and is returned as `Applied::No` with its cause chain.
async fn apply_isolated<P: Projection>(
    projection: &P,
    connection: &mut PgConnection,
    event: &RecordedEvent,
) -> Result<Applied, ApplyError> {
    sqlx::query("SAVEPOINT apply_event")
        .execute(&mut *connection)
        .await?;
    match projection.apply(connection, event).await {
        Ok(()) => {}
        Err(error) if error.is_transient() => return Err(error),
        Err(error) => {
            sqlx::query("ROLLBACK TO SAVEPOINT apply_event")
                .execute(&mut *connection)
                .await?;
            let mut reason = error.to_string();
            let mut source = std::error::Error::source(&error);
            while let Some(cause) = source {
                reason.push_str(": ");
                reason.push_str(&cause.to_string());
                source = cause.source();
            }
            return Ok(Applied::No(reason));
        }
    }
    sqlx::query("RELEASE SAVEPOINT apply_event")
        .execute(connection)
        .await?;
    Ok(Applied::Yes)
}

/// Keeps `event` in the parked table: with the error when it parks its stream, without when it
/// waits behind an earlier parked event.
async fn park(
    connection: &mut PgConnection,
    projection: &str,
    event: &RecordedEvent,
    error: Option<&str>,
) -> Result<(), ApplyError> {
    let stored =
        serde_json::to_value(event).map_err(|e| ApplyError::Inconsistent(e.to_string()))?;
    sqlx::query(
        "INSERT INTO projection.parked (projection, aggregate_type, aggregate_id, sequence, event, error)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (projection, aggregate_type, aggregate_id, sequence) DO NOTHING",
    )
    .bind(projection)
    .bind(&event.aggregate_type)
    .bind(&event.aggregate_id)
    .bind(event.sequence)
    .bind(stored)
    .bind(error)
    .execute(connection)
    .await?;
    Ok(())
}

/// What one transaction applied, added to the progress row of its lane.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LaneProgress {
    pub last_stream_sequence: i64,
    pub last_global_position: i64,
    pub applied: i64,
    pub duplicates: i64,
}

impl LaneProgress {
    /// Adds this progress to `lane`'s row of `projection`. Each live partition and each rebuild
    /// lane writes a row of its own, so lanes never wait on each other here.
    pub(crate) async fn record(
        self,
        connection: &mut PgConnection,
        projection: &str,
        lane: u32,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO projection.progress AS p
                    (projection, lane, last_stream_sequence, last_global_position,
                     events_applied, duplicates_skipped)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (projection, lane) DO UPDATE SET
                 last_stream_sequence = greatest(p.last_stream_sequence, EXCLUDED.last_stream_sequence),
                 last_global_position = greatest(p.last_global_position, EXCLUDED.last_global_position),
                 events_applied = p.events_applied + EXCLUDED.events_applied,
                 duplicates_skipped = p.duplicates_skipped + EXCLUDED.duplicates_skipped,
                 updated_at = clock_timestamp()",
        )
        .bind(projection)
        .bind(lane as i32)
        .bind(self.last_stream_sequence)
        .bind(self.last_global_position)
        .bind(self.applied)
        .bind(self.duplicates)
        .execute(connection)
        .await?;
        Ok(())
    }
}

/// What a retry of a parked stream did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetryOutcome {
    /// Parked events now applied.
    pub applied: usize,
    /// Events still parked (the first failed again, or a gap remains).
    pub still_parked: usize,
}

/// Retries a parked stream of `projection`: applies its parked events in sequence order until
/// one fails again (it stays parked with the new error) or a gap remains.
///
/// # Errors
/// On transient failures; nothing is committed then.
pub async fn retry_parked<P: Projection>(
    projection: &P,
    pool: &PgPool,
    aggregate_type: &str,
    aggregate_id: &str,
) -> Result<RetryOutcome, ApplyError> {
    let target = Target::live(projection);
    let name = target.name.as_str();
    let mut tx = pool.begin().await?;
    target.enter(&mut tx, projection.name()).await?;
    let rows: Vec<(i64, serde_json::Value)> = sqlx::query_as(
        "SELECT sequence, event FROM projection.parked
          WHERE projection = $1 AND aggregate_type = $2 AND aggregate_id = $3
          ORDER BY sequence FOR UPDATE",
    )
    .bind(name)
    .bind(aggregate_type)
    .bind(aggregate_id)
    .fetch_all(&mut *tx)
    .await?;
    let events = rows
        .into_iter()
        .map(|(_, stored)| serde_json::from_value::<RecordedEvent>(stored))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApplyError::Inconsistent(e.to_string()))?;
    let refs: Vec<&RecordedEvent> = events.iter().collect();
    let mut guard = Guard::load(&mut tx, name, &refs).await?;
    let mut outcome = RetryOutcome {
        applied: 0,
        still_parked: events.len(),
    };
    let mut progress = LaneProgress::default();
    for event in &events {
        let next = guard.next(event);
        if event.sequence > next {
            break;
        }
        if event.sequence == next {
            if let Applied::No(error) = apply_isolated(projection, &mut tx, event).await? {
                sqlx::query(
                    "UPDATE projection.parked
                        SET error = $5, attempts = attempts + 1, last_failed_at = clock_timestamp()
                      WHERE projection = $1 AND aggregate_type = $2 AND aggregate_id = $3
                        AND sequence = $4",
                )
                .bind(name)
                .bind(aggregate_type)
                .bind(aggregate_id)
                .bind(event.sequence)
                .bind(error)
                .execute(&mut *tx)
                .await?;
                break;
            }
            guard.applied(event);
            outcome.applied += 1;
            progress.applied += 1;
            progress.last_global_position =
                progress.last_global_position.max(event.global_position);
        }
        sqlx::query(
            "DELETE FROM projection.parked
              WHERE projection = $1 AND aggregate_type = $2 AND aggregate_id = $3 AND sequence = $4",
        )
        .bind(name)
        .bind(aggregate_type)
        .bind(aggregate_id)
        .bind(event.sequence)
        .execute(&mut *tx)
        .await?;
        outcome.still_parked -= 1;
    }
    guard.save(&mut tx, name).await?;
    progress.record(&mut tx, name, 0).await?;
    tx.commit().await?;
    Ok(outcome)
}

async fn ack(message: &Message) {
    // A lost ack only means a redelivery, which the guard absorbs.
    if let Err(error) = message.ack().await {
        warn!(error = %error, "ack failed; the message will be redelivered and skipped");
    }
}

async fn nak(message: &Message, delay: Duration) {
    if let Err(error) = message.ack_with(AckKind::Nak(Some(delay))).await {
        warn!(error = %error, "nak failed; the message will be redelivered after ack_wait");
    }
}
