//! What a projection has done and what it still owes: lag, parked streams, and the
//! completeness check against the event store.
//!
//! These queries read the event store by stream (never by global position, which is the feed's
//! business) and compare it with the per-stream guard, which records exactly what was applied.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;

use crate::engine::partition_of;

/// Lag and health of one projection.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ProjectionStatus {
    /// The projection.
    pub name: String,
    /// Events applied since it started (rebuilds start again).
    pub events_applied: i64,
    /// Redeliveries and re-publishes the guard dropped.
    pub duplicates_skipped: i64,
    /// Stored events of its streams not applied yet (parked ones included).
    pub events_behind: i64,
    /// Age of the oldest stored event not applied yet; 0 when caught up.
    pub seconds_behind: f64,
    /// Streams parked by a poison event.
    pub parked_streams: i64,
    /// Events waiting in parked streams.
    pub parked_events: i64,
    /// The most recent parking error, if any stream is parked.
    pub last_error: Option<String>,
    /// When the projection last committed a batch.
    pub updated_at: Option<DateTime<Utc>>,
    /// The live tables' version.
    pub version: i32,
    /// The same per partition, with the process building it.
    pub partitions: Vec<PartitionStatus>,
    /// The latest rebuild, running or done.
    pub rebuild: Option<RebuildStatus>,
}

/// Lag of one partition of a projection.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PartitionStatus {
    /// The partition.
    pub partition: u32,
    /// The process building it (absent until one took it).
    pub owner: Option<String>,
    /// When its owner last showed it is alive.
    pub heartbeat_at: Option<DateTime<Utc>>,
    /// Stored events of its streams not applied yet.
    pub events_behind: i64,
    /// Age of its oldest stored event not applied yet.
    pub seconds_behind: f64,
    /// Its parked streams.
    pub parked_streams: i64,
}

/// A projection's latest rebuild.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, sqlx::FromRow)]
pub struct RebuildStatus {
    /// The version being built.
    pub version: i32,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it finished (swapped in, or failed); absent while running.
    pub finished_at: Option<DateTime<Utc>>,
    /// Events applied so far.
    pub events_done: i64,
    /// Events in the store when it started.
    pub events_total: i64,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

/// The status of `projection`, which reads streams of `aggregate_types`. Lag is system-wide;
/// parked streams and their errors are those whose stream id starts with `scope` (a tenant's
/// `"{tenant}:"`, or `""` for every tenant).
///
/// # Errors
/// When the database fails.
pub async fn status(
    pool: &PgPool,
    projection: &str,
    aggregate_types: &[&str],
    partitions: u32,
    scope: &str,
) -> Result<ProjectionStatus, sqlx::Error> {
    let (events_applied, duplicates_skipped, updated_at, version): (i64, i64, Option<DateTime<Utc>>, i32) = sqlx::query_as(
        "SELECT coalesce(sum(events_applied), 0)::bigint, coalesce(sum(duplicates_skipped), 0)::bigint,
                max(updated_at),
                coalesce((SELECT version FROM projection.checkpoints WHERE projection = $1), 0)
           FROM projection.progress WHERE projection = $1",
    )
    .bind(projection)
    .fetch_one(pool)
    .await?;
    // Only streams that are behind come back, so this stays small when the projection keeps up.
    let behind: Vec<(String, i64, Option<DateTime<Utc>>)> = sqlx::query_as(
        "WITH store AS (
             SELECT aggregate_type, aggregate_id, max(sequence) AS head
               FROM events WHERE aggregate_type = ANY($2) GROUP BY aggregate_type, aggregate_id),
         applied AS (
             SELECT aggregate_type, aggregate_id, last_sequence
               FROM projection.stream_positions WHERE projection = $1),
         behind AS (
             SELECT s.aggregate_type, s.aggregate_id, s.head, coalesce(a.last_sequence, 0) AS done
               FROM store s LEFT JOIN applied a USING (aggregate_type, aggregate_id)
              WHERE s.head > coalesce(a.last_sequence, 0))
         SELECT b.aggregate_id, (b.head - b.done)::bigint, e.recorded_at
           FROM behind b
           LEFT JOIN events e ON e.aggregate_type = b.aggregate_type
                             AND e.aggregate_id = b.aggregate_id AND e.sequence = b.done + 1",
    )
    .bind(projection)
    .bind(aggregate_types)
    .fetch_all(pool)
    .await?;
    let parked: Vec<(String, i64, Option<String>)> = sqlx::query_as(
        "SELECT aggregate_id, count(*),
                (array_agg(error ORDER BY last_failed_at DESC) FILTER (WHERE error IS NOT NULL))[1]
           FROM projection.parked WHERE projection = $1 AND starts_with(aggregate_id, $2)
          GROUP BY aggregate_type, aggregate_id",
    )
    .bind(projection)
    .bind(scope)
    .fetch_all(pool)
    .await?;
    let owners: Vec<(i32, String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT partition, owner, heartbeat_at FROM projection.partition_owners
          WHERE projection = $1 AND partitions = $2",
    )
    .bind(projection)
    .bind(partitions as i32)
    .fetch_all(pool)
    .await?;
    let now = Utc::now();
    let seconds_since = |oldest: Option<DateTime<Utc>>| {
        oldest.map_or(0.0, |oldest| {
            (now - oldest).num_milliseconds().max(0) as f64 / 1000.0
        })
    };
    let mut per_partition: Vec<PartitionStatus> = (0..partitions.max(1))
        .map(|partition| PartitionStatus {
            partition,
            owner: None,
            heartbeat_at: None,
            events_behind: 0,
            seconds_behind: 0.0,
            parked_streams: 0,
        })
        .collect();
    for (partition, owner, heartbeat_at) in owners {
        if let Some(status) = per_partition.get_mut(partition.max(0) as usize) {
            status.owner = Some(owner);
            status.heartbeat_at = Some(heartbeat_at);
        }
    }
    let mut oldest: Option<DateTime<Utc>> = None;
    for (stream, count, recorded_at) in &behind {
        let status = &mut per_partition[partition_of(stream, partitions) as usize];
        status.events_behind += count;
        status.seconds_behind = status.seconds_behind.max(seconds_since(*recorded_at));
        oldest = match (oldest, *recorded_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    for (stream, _, _) in &parked {
        per_partition[partition_of(stream, partitions) as usize].parked_streams += 1;
    }
    let events_behind = behind.iter().map(|(_, count, _)| count).sum();
    let parked_streams = parked.len() as i64;
    let parked_events = parked.iter().map(|(_, count, _)| count).sum();
    let last_error = parked.iter().find_map(|(_, _, error)| error.clone());
    let rebuild = sqlx::query_as(
        "SELECT version, started_at, finished_at, events_done, events_total, error
           FROM projection.rebuilds WHERE projection = $1",
    )
    .bind(projection)
    .fetch_optional(pool)
    .await?;
    Ok(ProjectionStatus {
        version,
        rebuild,
        name: projection.to_owned(),
        events_applied,
        duplicates_skipped,
        events_behind,
        seconds_behind: seconds_since(oldest),
        partitions: per_partition,
        parked_streams,
        parked_events,
        last_error,
        updated_at,
    })
}

/// Stored events of `aggregate_types` (a rebuild's total).
///
/// # Errors
/// When the database fails.
pub async fn stored_events(pool: &PgPool, aggregate_types: &[&str]) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_type = ANY($1)")
        .bind(aggregate_types)
        .fetch_one(pool)
        .await
}

/// How much of the event store a projection reads.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Stored {
    /// Streams of its aggregate types.
    pub streams: i64,
    /// Events of its aggregate types.
    pub events: i64,
}

/// Streams and events of `aggregate_types` in the store (the completeness check's totals).
///
/// # Errors
/// When the database fails.
pub async fn stored(pool: &PgPool, aggregate_types: &[&str]) -> Result<Stored, sqlx::Error> {
    let (streams, events) = sqlx::query_as(
        "SELECT count(DISTINCT (aggregate_type, aggregate_id)), count(*) FROM events
          WHERE aggregate_type = ANY($1)",
    )
    .bind(aggregate_types)
    .fetch_one(pool)
    .await?;
    Ok(Stored { streams, events })
}

/// One parked stream.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, sqlx::FromRow)]
pub struct ParkedStream {
    /// Its aggregate type.
    pub aggregate_type: String,
    /// Its stream id.
    pub aggregate_id: String,
    /// The sequence of the event that failed.
    pub sequence: i64,
    /// Why it failed (last attempt).
    pub error: String,
    /// How many times it was tried.
    pub attempts: i32,
    /// When it first failed.
    pub first_failed_at: DateTime<Utc>,
    /// When it last failed.
    pub last_failed_at: DateTime<Utc>,
    /// Events of the stream waiting (the failed one included).
    pub waiting_events: i64,
}

/// Parked streams of `projection` whose stream ids start with `prefix` (a tenant's `acme:`, or
/// empty for all), oldest first.
///
/// # Errors
/// When the database fails.
pub async fn parked(
    pool: &PgPool,
    projection: &str,
    prefix: &str,
) -> Result<Vec<ParkedStream>, sqlx::Error> {
    sqlx::query_as(
        "SELECT p.aggregate_type, p.aggregate_id, p.sequence, coalesce(p.error, '') AS error, p.attempts,
                p.first_failed_at, p.last_failed_at,
                (SELECT count(*) FROM projection.parked w
                  WHERE w.projection = p.projection AND w.aggregate_type = p.aggregate_type
                    AND w.aggregate_id = p.aggregate_id) AS waiting_events
           FROM projection.parked p
          WHERE p.projection = $1 AND p.error IS NOT NULL AND starts_with(p.aggregate_id, $2)
          ORDER BY p.first_failed_at",
    )
    .bind(projection)
    .bind(prefix)
    .fetch_all(pool)
    .await
}

/// A stream whose applied events differ from the store's.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, sqlx::FromRow)]
pub struct Discrepancy {
    /// Its aggregate type.
    pub aggregate_type: String,
    /// Its stream id.
    pub aggregate_id: String,
    /// The store's last sequence (0: the store has no such stream).
    pub stored: i64,
    /// The projection's last applied sequence (0: never applied).
    pub applied: i64,
    /// Whether the stream is parked (its missing events are known and waiting).
    pub parked: bool,
}

impl Discrepancy {
    /// Sequences the store holds and the projection has not applied.
    pub fn missing(&self) -> std::ops::RangeInclusive<i64> {
        (self.applied + 1)..=self.stored
    }

    /// Sequences the projection applied that the store does not hold.
    pub fn extra(&self) -> std::ops::RangeInclusive<i64> {
        (self.stored + 1)..=self.applied
    }
}

/// Compares, stream by stream, what `projection` applied with what the store holds. Empty when
/// the projection is complete.
///
/// # Errors
/// When the database fails.
pub async fn verify(
    pool: &PgPool,
    projection: &str,
    aggregate_types: &[&str],
) -> Result<Vec<Discrepancy>, sqlx::Error> {
    sqlx::query_as(
        "WITH store AS (
             SELECT aggregate_type, aggregate_id, max(sequence) AS head
               FROM events WHERE aggregate_type = ANY($2) GROUP BY aggregate_type, aggregate_id),
         applied AS (
             SELECT aggregate_type, aggregate_id, last_sequence
               FROM projection.stream_positions WHERE projection = $1),
         diff AS (
             SELECT aggregate_type AS t, aggregate_id AS i,
                    coalesce(s.head, 0) AS stored, coalesce(a.last_sequence, 0) AS applied
               FROM store s FULL JOIN applied a USING (aggregate_type, aggregate_id)
              WHERE coalesce(s.head, 0) <> coalesce(a.last_sequence, 0))
         SELECT d.t AS aggregate_type, d.i AS aggregate_id, d.stored, d.applied,
                EXISTS (SELECT 1 FROM projection.parked p
                         WHERE p.projection = $1 AND p.aggregate_type = d.t
                           AND p.aggregate_id = d.i) AS parked
           FROM diff d
          ORDER BY d.t, d.i",
    )
    .bind(projection)
    .bind(aggregate_types)
    .fetch_all(pool)
    .await
}
