//! The runner: one durable JetStream consumer per partition, each driven by the one process
//! that holds the partition's advisory lock.
//!
//! The hard idea here is ownership without a coordinator. Every process starts a worker for every
//! partition, and each worker tries `pg_try_advisory_lock` on a key naming the projection and the
//! partition. The lock lives exactly as long as the worker's Postgres connection, so the partition
//! has exactly one builder at a time, and when a process dies its connections close, its locks
//! go, and a standby worker elsewhere takes the partition over within a poll. JetStream never has
//! to know who is alive: its durable consumer simply keeps the partition's position for whoever
//! pulls next, and the guard makes whatever was in flight harmless.
//!
//! JetStream's retention is bounded, so a worker also checks, when it starts and then every few
//! seconds, that the bus has not dropped messages it never processed; if it has, it catches its
//! partition up from the event store (see [`super::catchup`]).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::stream::Stream;
use async_nats::jetstream::{self, AckKind, Message};

use super::in_progress::while_in_progress;
use domain::event::{RecordedEvent, Subjects};
use futures::StreamExt;
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::catchup::{catch_up, Floor};
use super::checkpoint::Checkpoint;
use super::consumer::{durable, Durable};
use super::gaps::{fill_from_store, GapFill, GAP_FILL_AFTER_DELIVERIES};
use super::{apply_to, ApplyError, BoxError, EventSource, Projection, Target, Verdict};

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

/// How long JetStream waits for a delivered message's acknowledgement before delivering it
/// again: after a crash, at most this long passes before a surviving or restarted owner receives
/// what the dead one was handed. A batch that takes longer marks its messages in progress
/// ([`super::in_progress`]), and the client fetches no more than one batch ahead, so slow work
/// is not redelivered meanwhile (and if it were, the guard would make it harmless).
pub const ACK_WAIT: Duration = Duration::from_secs(4);

/// The durable JetStream consumer of `partition` of `projection`.
pub fn consumer_name(projection: &str, partition: u32, partitions: u32) -> String {
    format!("{projection}-{partition}of{}", partitions.max(1))
}

/// The partition a stream belongs to: FNV-1a of its id, modulo `partitions`. Stable across
/// processes, builds and restarts, and the same hash that names the stream's bus bucket.
pub use domain::subjects::partition_of;

/// Drives one projection from JetStream into its read model, reading the event store (through
/// `source`) for what JetStream no longer holds.
pub struct ProjectionRunner<P> {
    projection: P,
    pool: PgPool,
    settings: RunnerSettings,
    source: Arc<dyn EventSource>,
}

impl<P: std::fmt::Debug> std::fmt::Debug for ProjectionRunner<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjectionRunner")
            .field("projection", &self.projection)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl<P: Projection> ProjectionRunner<P> {
    /// A runner applying `projection` to the database behind `pool`; `source` reads the event
    /// store for the projection's first build and for gaps JetStream cannot fill.
    pub fn new(
        projection: P,
        pool: PgPool,
        settings: RunnerSettings,
        source: Arc<dyn EventSource>,
    ) -> Self {
        Self {
            projection,
            pool,
            settings,
            source,
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
    /// A projection that was never built is first built from the event store (see
    /// [`super::startup`]); nothing is consumed before. Then every partition gets a worker here;
    /// each worker first wins the partition's advisory lock, so across all processes exactly one
    /// builds a partition at a time, and when its process (or connection) dies the lock is
    /// released and another process takes over.
    pub async fn run(self, jetstream: jetstream::Context, shutdown: CancellationToken) {
        let Some(checkpoint) = super::startup::settle(
            &self.projection,
            &self.pool,
            &*self.source,
            &jetstream,
            &self.settings.stream,
            &shutdown,
        )
        .await
        else {
            return;
        };
        let runner = Arc::new(self);
        let mut partitions = tokio::task::JoinSet::new();
        for partition in 0..runner.settings.partitions.max(1) {
            let (runner, jetstream, shutdown) =
                (runner.clone(), jetstream.clone(), shutdown.clone());
            partitions.spawn(async move {
                runner
                    .run_partition(partition, checkpoint, &jetstream, &shutdown)
                    .await
            });
        }
        while partitions.join_next().await.is_some() {}
    }

    async fn run_partition(
        &self,
        partition: u32,
        checkpoint: Checkpoint,
        jetstream: &jetstream::Context,
        shutdown: &CancellationToken,
    ) {
        let name = self.projection.name();
        let mut wait = Duration::from_millis(50);
        while !shutdown.is_cancelled() {
            let result = match self.own(partition).await {
                Ok(Some(lock)) => {
                    self.consume(partition, checkpoint, lock, jetstream, shutdown)
                        .await
                }
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
        checkpoint: Checkpoint,
        mut lock: PgConnection,
        jetstream: &jetstream::Context,
        shutdown: &CancellationToken,
    ) -> Result<(), BoxError> {
        let name = self.projection.name();
        let partitions = self.settings.partitions.max(1);
        let consumer_name = consumer_name(name, partition, partitions);
        let stream = jetstream.get_stream(&self.settings.stream).await?;
        // Only a consumer created now uses this; an existing one keeps its position. Every
        // message before the start carries an event the projection's first build read from the
        // store. Clamped to the stream's end, should the stream have been recreated since.
        let start = checkpoint
            .consumer_start
            .map(|start| start.min(stream.cached_info().state.last_sequence + 1));
        let deliver_policy = match start {
            Some(start_sequence) => DeliverPolicy::ByStartSequence { start_sequence },
            None => DeliverPolicy::All,
        };
        // Only this partition's buckets (see `domain::subjects`), when the partition count
        // allows; other partitions' messages are then never delivered here.
        let filters: Vec<String> = self
            .projection
            .aggregate_types()
            .iter()
            .flat_map(|aggregate_type| {
                self.settings
                    .subjects
                    .for_partition(aggregate_type, partition, partitions)
            })
            .collect();
        let Durable {
            consumer,
            existing,
            refiltered,
        } = durable(&stream, &consumer_name, filters, deliver_policy).await?;
        let mut floor = Floor::starting(
            &self.pool,
            name,
            partition,
            existing.as_ref(),
            start.unwrap_or(1),
        )
        .await?;
        // A consumer that filtered on other subjects may have passed messages it did not
        // match (an older release pulling while a newer relay published bucketed subjects):
        // the partition catches up from the store once, so nothing it skipped stays missing.
        self.keep_up(partition, &stream, &mut floor, refiltered)
            .await?;
        // Fetched no more than one batch ahead: a message waiting in the client's buffer is
        // not marked in progress, so the buffer must not outlast the ack wait.
        let mut batches = consumer
            .stream()
            .max_messages_per_batch(self.settings.batch_size)
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
                    if let Err(error) = self.keep_up(partition, &stream, &mut floor, false).await {
                        warn!(projection = name, partition, error = %error,
                            "checking JetStream's retention failed; trying again later");
                    }
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
            self.handle(partition, messages, &mut floor).await;
        }
    }

    /// Catches the partition up from the event store if JetStream, by now, dropped messages it
    /// may never have processed (see [`super::catchup`]), or when `anyway`.
    async fn keep_up(
        &self,
        partition: u32,
        stream: &Stream,
        floor: &mut Floor,
        anyway: bool,
    ) -> Result<(), BoxError> {
        // Noted before the store is read: the catch-up covers every message up to its last.
        let state = stream.get_info().await?.state;
        if !anyway && !floor.behind(state.first_sequence) {
            return Ok(());
        }
        let name = self.projection.name();
        if anyway {
            info!(projection = name, partition,
                "the partition's consumer filtered on other subjects; catching up from the event store once");
        } else {
            warn!(
                projection = name,
                partition,
                read_through = floor.position(),
                first_retained = state.first_sequence,
                "JetStream no longer holds messages this partition may never have processed; \
                 catching up from the event store"
            );
        }
        let filled = catch_up(
            &self.projection,
            &self.pool,
            &*self.source,
            partition,
            self.settings.partitions,
            state.last_sequence,
        )
        .await?;
        floor.caught_up(state.last_sequence, state.first_sequence);
        info!(
            projection = name,
            partition,
            streams = filled,
            "caught up from the event store"
        );
        Ok(())
    }

    /// Applies one batch of messages and acknowledges them according to their verdicts.
    async fn handle(&self, partition: u32, messages: Vec<Message>, floor: &mut Floor) {
        let name = self.projection.name();
        let mut events = Vec::with_capacity(messages.len());
        let mut decoded = Vec::with_capacity(messages.len());
        let partitions = self.settings.partitions;
        for message in messages {
            // The subject names the stream, so another partition's message is acknowledged
            // without decoding its payload.
            if let Some(id) = self.settings.subjects.aggregate_id_of(&message.subject) {
                if partition_of(id, partitions) != partition {
                    ack(&message, floor).await;
                    continue;
                }
            }
            let stream_sequence = message.info().map(|info| info.stream_sequence).unwrap_or(0);
            match serde_json::from_slice::<RecordedEvent>(&message.payload) {
                // Another partition's stream: this partition's consumer has nothing to do.
                Ok(event) if partition_of(&event.aggregate_id, partitions) != partition => {
                    ack(&message, floor).await;
                }
                Ok(event) => {
                    events.push((stream_sequence, event));
                    decoded.push(message);
                }
                Err(error) => {
                    error!(projection = name, subject = %message.subject, error = %error,
                        "message is not a recorded event; holding it for redelivery");
                    nak(&message, self.settings.failure_retry, floor).await;
                }
            }
        }
        if events.is_empty() {
            return;
        }
        let work = async {
            let verdicts = self.apply_batch(partition, &events).await?;
            let filled = self
                .fill_lasting_gaps(partition, &decoded, &events, &verdicts)
                .await;
            Ok::<_, ApplyError>((verdicts, filled))
        };
        match while_in_progress(&decoded, ACK_WAIT / 2, work).await {
            Ok((verdicts, filled)) => {
                for ((message, (_, event)), verdict) in decoded.iter().zip(&events).zip(verdicts) {
                    let verdict = match verdict {
                        Verdict::Gap => filled.verdict(event),
                        verdict => verdict,
                    };
                    match verdict {
                        Verdict::Applied | Verdict::Duplicate | Verdict::Parked => {
                            ack(message, floor).await;
                        }
                        Verdict::Gap => nak(message, self.settings.gap_retry, floor).await,
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
                    nak(message, delay.min(Duration::from_secs(60)), floor).await;
                }
            }
        }
    }

    /// Fills from the event store the streams whose gap outlasted
    /// [`GAP_FILL_AFTER_DELIVERIES`] deliveries (see [`super::gaps`]). A failure is logged and
    /// changes nothing: the messages are redelivered and the fill is tried again.
    async fn fill_lasting_gaps(
        &self,
        partition: u32,
        messages: &[Message],
        events: &[(u64, RecordedEvent)],
        verdicts: &[Verdict],
    ) -> Filled {
        let gaps: Vec<(&Message, &RecordedEvent)> = messages
            .iter()
            .zip(events)
            .zip(verdicts)
            .filter(|(_, verdict)| **verdict == Verdict::Gap)
            .map(|((message, (_, event)), _)| (message, event))
            .collect();
        let lasting: HashSet<(&str, &str)> = gaps
            .iter()
            .filter(|(message, _)| {
                message.info().map_or(0, |info| info.delivered) >= GAP_FILL_AFTER_DELIVERIES
            })
            .map(|(_, event)| (event.aggregate_type.as_str(), event.aggregate_id.as_str()))
            .collect();
        // Every held-back event of those streams goes to the fill, so that each of them is
        // either applied from the store, parked, or held back again: none is acknowledged
        // without being kept somewhere.
        let mut waiting: Vec<&RecordedEvent> = gaps
            .into_iter()
            .map(|(_, event)| event)
            .filter(|event| {
                lasting.contains(&(event.aggregate_type.as_str(), event.aggregate_id.as_str()))
            })
            .collect();
        let mut filled = Filled::default();
        if waiting.is_empty() {
            return filled;
        }
        waiting.sort_by(|a, b| {
            (&a.aggregate_type, &a.aggregate_id, a.sequence).cmp(&(
                &b.aggregate_type,
                &b.aggregate_id,
                b.sequence,
            ))
        });
        for stream in waiting.chunk_by(|a, b| {
            (&a.aggregate_type, &a.aggregate_id) == (&b.aggregate_type, &b.aggregate_id)
        }) {
            let key = (
                stream[0].aggregate_type.as_str(),
                stream[0].aggregate_id.as_str(),
            );
            match fill_from_store(
                &self.projection,
                &self.pool,
                &*self.source,
                partition,
                key,
                stream,
            )
            .await
            {
                Ok(fill) => filled.add(stream[0], fill),
                Err(error) => {
                    warn!(projection = self.projection.name(), stream = %stream[0].aggregate_id,
                        error = %error, "filling a gap from the event store failed; retrying later");
                }
            }
        }
        filled
    }
}

/// The message's stream sequence (0 if it has no JetStream metadata).
fn sequence_of(message: &Message) -> u64 {
    message.info().map_or(0, |info| info.stream_sequence)
}

async fn ack(message: &Message, floor: &mut Floor) {
    floor.released(sequence_of(message));
    // A lost ack only means a redelivery, which the guard absorbs.
    if let Err(error) = message.ack().await {
        warn!(error = %error, "ack failed; the message will be redelivered and skipped");
    }
}

async fn nak(message: &Message, delay: Duration, floor: &mut Floor) {
    floor.held(sequence_of(message));
    if let Err(error) = message.ack_with(AckKind::Nak(Some(delay))).await {
        warn!(error = %error, "nak failed; the message will be redelivered after ack_wait");
    }
}

/// What filling this batch's lasting gaps came to, per stream.
#[derive(Debug, Default)]
struct Filled {
    streams: HashMap<(String, String), GapFill>,
}

impl Filled {
    fn add(&mut self, event: &RecordedEvent, fill: GapFill) {
        self.streams.insert(
            (event.aggregate_type.clone(), event.aggregate_id.clone()),
            fill,
        );
    }

    /// The verdict of a gap event after the fill: applied from the store, kept in the parked
    /// table, or still a gap.
    fn verdict(&self, event: &RecordedEvent) -> Verdict {
        let key = (event.aggregate_type.clone(), event.aggregate_id.clone());
        match self.streams.get(&key) {
            Some(GapFill::Through(last)) if event.sequence <= *last => Verdict::Applied,
            Some(GapFill::Parked) => Verdict::Parked,
            _ => Verdict::Gap,
        }
    }
}
