//! Rebuilding a projection without downtime.
//!
//! The rebuild writes a copy of the projection's tables in a schema of its own
//! (`rebuild_{name}`), straight from the event store (JetStream's retention is bounded), under a
//! guard of its own (`{name}@rebuild`). Meanwhile the live projection keeps applying new events
//! to the live tables, and queries keep reading them. When the copy has caught up with the store,
//! one transaction takes the projection's swap lock (live batches hold it shared, so it waits for
//! the batch in flight and holds off the next), applies whatever the live projection applied
//! and the copy has not, moves the copy's tables into `read_models` in place of the live ones,
//! and hands the copy's guard to the live name. Queries blocked for those milliseconds then read
//! the new tables; JetStream deliveries after the swap meet the new guard, which drops what the
//! rebuild already applied.

use std::fmt;

use domain::event::RecordedEvent;
use futures::future::{try_join_all, BoxFuture};
use sqlx::{Acquire, PgConnection, PgPool};

use crate::engine::{
    apply_events, apply_to, partition_of, ApplyError, LaneProgress, Projection, Target, Verdict,
};

/// Transactions a rebuild applies side by side.
const LANES: u32 = 4;

/// Any error of an event source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Where a rebuild reads history. Implemented over the event store's global feed, whose order
/// keeps every stream's sequence order.
pub trait EventSource: Send + Sync {
    /// Up to `limit` events after `after` (`(transaction_id, global_position)` of the last one
    /// read; `(0, 0)` from the start), among transactions that can no longer change.
    fn read_after(
        &self,
        after: (u64, i64),
        limit: i64,
    ) -> BoxFuture<'_, Result<Vec<RecordedEvent>, BoxError>>;

    /// Every event of one stream, in sequence order.
    fn read_stream<'a>(
        &'a self,
        aggregate_type: &'a str,
        aggregate_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<RecordedEvent>, BoxError>>;
}

/// How far a rebuild is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Events of the projection's types applied (or skipped as already applied) so far.
    pub done: i64,
    /// Events of the projection's types in the store when the rebuild started.
    pub total: i64,
}

/// Why a rebuild failed. The live projection is untouched by any failure.
#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    /// Another process is rebuilding this projection.
    #[error("a rebuild of {0} is already running")]
    AlreadyRunning(String),
    /// Applying events failed transiently, or the database failed.
    #[error(transparent)]
    Apply(#[from] ApplyError),
    /// Reading the event store failed.
    #[error("reading the event store failed: {0}")]
    Source(BoxError),
}

impl From<sqlx::Error> for RebuildError {
    fn from(error: sqlx::Error) -> Self {
        Self::Apply(ApplyError::Database(error))
    }
}

/// What a finished rebuild did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rebuilt {
    /// Events applied to the new tables.
    pub events: i64,
    /// The projection version now live.
    pub version: u32,
}

impl fmt::Display for Rebuilt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} events applied, version {} live",
            self.events, self.version
        )
    }
}

fn quoted(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

/// Rebuilds `projection` from `source`, reading `batch` events at a time and reporting
/// progress after each batch. Returns once the new tables are live.
///
/// # Errors
/// [`RebuildError`]; on any error the live tables stay as they were.
pub async fn rebuild<P: Projection>(
    projection: &P,
    pool: &PgPool,
    source: &dyn EventSource,
    batch: i64,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<Rebuilt, RebuildError> {
    let name = projection.name();
    // One rebuild per projection at a time, across processes; the lock lives with this
    // connection.
    let mut lock = pool.acquire().await?.detach();
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
        .bind(format!("projection-rebuild:{name}"))
        .fetch_one(&mut lock)
        .await?;
    if !locked {
        return Err(RebuildError::AlreadyRunning(name.to_owned()));
    }
    let result = run(projection, pool, source, batch, progress).await;
    if let Err(error) = &result {
        sqlx::query("UPDATE projection.rebuilds SET error = $2, finished_at = clock_timestamp() WHERE projection = $1")
            .bind(name)
            .bind(error.to_string())
            .execute(pool)
            .await?;
    }
    result
}

async fn run<P: Projection>(
    projection: &P,
    pool: &PgPool,
    source: &dyn EventSource,
    batch: i64,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<Rebuilt, RebuildError> {
    let name = projection.name();
    let shadow = Target::rebuild(projection);
    let total = crate::status::stored_events(pool, projection.aggregate_types()).await?;
    prepare(projection, &shadow, pool, total).await?;

    let types = projection.aggregate_types();
    let mut after = (0, 0);
    let mut done = 0;
    loop {
        let events = source
            .read_after(after, batch)
            .await
            .map_err(RebuildError::Source)?;
        let Some(last) = events.last() else {
            break;
        };
        after = (last.transaction_id, last.global_position);
        // Streams are independent, so each batch is applied in lanes by stream, one transaction
        // each, side by side: applying is bound by round trips, not by either side's CPU. A
        // stream's events all fall in one lane, in feed order.
        let mut lanes = vec![Vec::new(); LANES as usize];
        for event in events
            .iter()
            .filter(|event| types.contains(&event.aggregate_type.as_str()))
        {
            lanes[partition_of(&event.aggregate_id, LANES) as usize].push((0, event.clone()));
        }
        done += lanes.iter().map(Vec::len).sum::<usize>() as i64;
        try_join_all(
            (0..LANES)
                .zip(&lanes)
                .filter(|(_, events)| !events.is_empty())
                .map(|(lane, events)| apply_to(projection, &shadow, pool, lane, events)),
        )
        .await?;
        sqlx::query("UPDATE projection.rebuilds SET events_done = $2 WHERE projection = $1")
            .bind(name)
            .bind(done)
            .execute(pool)
            .await?;
        progress(Progress {
            done,
            total: total.max(done),
        });
        if (events.len() as i64) < batch {
            break;
        }
    }
    swap(projection, &shadow, pool, source).await?;
    progress(Progress { done, total: done });
    Ok(Rebuilt {
        events: done,
        version: projection.version(),
    })
}

/// Creates the shadow schema with empty copies of the live tables, and clears the shadow guard.
async fn prepare<P: Projection>(
    projection: &P,
    shadow: &Target,
    pool: &PgPool,
    total: i64,
) -> Result<(), RebuildError> {
    let mut tx = pool.begin().await?;
    let schema = quoted(&shadow.schema);
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .execute(&mut *tx)
        .await?;
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut *tx)
        .await?;
    for table in projection.tables() {
        let table = quoted(table);
        sqlx::query(&format!(
            "CREATE TABLE {schema}.{table} (LIKE {}.{table} INCLUDING ALL)",
            Target::LIVE_SCHEMA
        ))
        .execute(&mut *tx)
        .await?;
    }
    for table in ["stream_positions", "parked", "progress"] {
        sqlx::query(&format!(
            "DELETE FROM projection.{table} WHERE projection = $1"
        ))
        .bind(&shadow.name)
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query(
        "INSERT INTO projection.rebuilds (projection, version, events_total) VALUES ($1, $2, $3)
         ON CONFLICT (projection) DO UPDATE
            SET version = EXCLUDED.version, events_total = EXCLUDED.events_total, events_done = 0,
                started_at = clock_timestamp(), finished_at = NULL, error = NULL",
    )
    .bind(projection.name())
    .bind(projection.version() as i32)
    .bind(total)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The atomic hand-over from the live tables to the rebuilt ones.
async fn swap<P: Projection>(
    projection: &P,
    shadow: &Target,
    pool: &PgPool,
    source: &dyn EventSource,
) -> Result<(), RebuildError> {
    let name = projection.name();
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(Target::swap_lock(name))
        .execute(&mut *tx)
        .await?;
    shadow.enter(&mut tx, name).await?;
    let caught_up = catch_up(projection, shadow, &mut tx, source).await?;

    let live = quoted(Target::LIVE_SCHEMA);
    let rebuilt = quoted(&shadow.schema);
    let retired = quoted(&format!("retired_{name}"));
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {retired} CASCADE"))
        .execute(&mut *tx)
        .await?;
    sqlx::query(&format!("CREATE SCHEMA {retired}"))
        .execute(&mut *tx)
        .await?;
    for table in projection.tables() {
        let table = quoted(table);
        sqlx::query(&format!("ALTER TABLE {live}.{table} SET SCHEMA {retired}"))
            .execute(&mut *tx)
            .await?;
        sqlx::query(&format!("ALTER TABLE {rebuilt}.{table} SET SCHEMA {live}"))
            .execute(&mut *tx)
            .await?;
    }
    for table in ["stream_positions", "parked"] {
        sqlx::query(&format!(
            "DELETE FROM projection.{table} WHERE projection = $1"
        ))
        .bind(name)
        .execute(&mut *tx)
        .await?;
        sqlx::query(&format!(
            "UPDATE projection.{table} SET projection = $1 WHERE projection = $2"
        ))
        .bind(name)
        .bind(&shadow.name)
        .execute(&mut *tx)
        .await?;
    }
    // The rebuilt tables' progress becomes the live progress, in one lane.
    let (applied, last_global_position): (i64, i64) = sqlx::query_as(
        "SELECT coalesce(sum(events_applied), 0)::bigint, coalesce(max(last_global_position), 0)
           FROM projection.progress WHERE projection = $1",
    )
    .bind(&shadow.name)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM projection.progress WHERE projection = ANY($1)")
        .bind([name, shadow.name.as_str()])
        .execute(&mut *tx)
        .await?;
    LaneProgress {
        last_global_position,
        applied: applied + caught_up,
        ..LaneProgress::default()
    }
    .record(&mut tx, name, 0)
    .await?;
    sqlx::query(
        "INSERT INTO projection.checkpoints (projection, version, rebuilt_at)
         VALUES ($1, $2, clock_timestamp())
         ON CONFLICT (projection) DO UPDATE
            SET version = EXCLUDED.version, rebuilt_at = EXCLUDED.rebuilt_at",
    )
    .bind(name)
    .bind(projection.version() as i32)
    .execute(&mut *tx)
    .await?;
    sqlx::query(&format!("DROP SCHEMA {retired} CASCADE"))
        .execute(&mut *tx)
        .await?;
    sqlx::query(&format!("DROP SCHEMA {rebuilt} CASCADE"))
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "UPDATE projection.rebuilds SET finished_at = clock_timestamp() WHERE projection = $1",
    )
    .bind(name)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Applies to the shadow whatever the live projection applied and the shadow has not (events
/// that committed after the rebuild's last read of the feed); returns how many it applied.
async fn catch_up<P: Projection>(
    projection: &P,
    shadow: &Target,
    connection: &mut PgConnection,
    source: &dyn EventSource,
) -> Result<i64, RebuildError> {
    let behind: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT l.aggregate_type, l.aggregate_id, coalesce(s.last_sequence, 0)
           FROM projection.stream_positions l
           LEFT JOIN projection.stream_positions s
                  ON s.projection = $2 AND s.aggregate_type = l.aggregate_type
                 AND s.aggregate_id = l.aggregate_id
          WHERE l.projection = $1 AND l.last_sequence > coalesce(s.last_sequence, 0)",
    )
    .bind(projection.name())
    .bind(&shadow.name)
    .fetch_all(connection.acquire().await?)
    .await?;
    let mut applied = 0;
    for (aggregate_type, aggregate_id, done) in behind {
        let events = source
            .read_stream(&aggregate_type, &aggregate_id)
            .await
            .map_err(RebuildError::Source)?;
        let missing: Vec<&RecordedEvent> = events
            .iter()
            .filter(|event| event.sequence > done)
            .collect();
        let verdicts = apply_events(projection, &shadow.name, connection, &missing).await?;
        applied += verdicts.iter().filter(|v| **v == Verdict::Applied).count() as i64;
    }
    Ok(applied)
}
