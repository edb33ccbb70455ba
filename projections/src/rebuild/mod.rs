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
//!
//! The same path builds a projection seen for the first time (see
//! [`crate::engine::startup`]); [`background`] runs rebuilds for start-up, the admin API and the
//! CLI, with progress logged.
//!
//! Map: this file holds the copy (prepare, read, apply in lanes); `swap` the hand-over;
//! [`background`] the rebuilds started on a process's own initiative.

use std::fmt;

use futures::future::{try_join_all, BoxFuture};
use sqlx::{PgConnection, PgPool};

use crate::engine::checkpoint::Checkpoint;
use crate::engine::{apply_to, partition_of, ApplyError, Projection, Target};

pub mod background;
mod swap;

pub use crate::engine::{BoxError, EventSource};
pub use background::{progress_logger, rebuild_logged, rebuild_outdated, spawn_rebuild, BATCH};

/// Transactions a rebuild applies side by side.
const LANES: u32 = 4;

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
    /// Reading the event bus's position (during a first build) failed.
    #[error("reading the event bus failed: {0}")]
    Bus(BoxError),
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

/// Creates an empty copy of the live `table` in `schema` (quoted): its columns, defaults,
/// constraints and indexes, and, for a partitioned table, its partitioning and an empty copy of
/// every partition under the same name and bounds.
async fn copy_table(
    connection: &mut PgConnection,
    schema: &str,
    table: &str,
) -> Result<(), sqlx::Error> {
    let live = format!("{}.{}", quoted(Target::LIVE_SCHEMA), quoted(table));
    let key: Option<String> = sqlx::query_scalar("SELECT pg_get_partkeydef(to_regclass($1))")
        .bind(&live)
        .fetch_one(&mut *connection)
        .await?;
    let copy = format!("{schema}.{}", quoted(table));
    let partitioned = key
        .map(|key| format!(" PARTITION BY {key}"))
        .unwrap_or_default();
    sqlx::query(&format!(
        "CREATE TABLE {copy} (LIKE {live} INCLUDING ALL){partitioned}"
    ))
    .execute(&mut *connection)
    .await?;
    for (partition, bound) in partitions(&mut *connection, &live).await? {
        sqlx::query(&format!(
            "CREATE TABLE {schema}.{} PARTITION OF {copy} {bound}",
            quoted(&partition)
        ))
        .execute(&mut *connection)
        .await?;
    }
    Ok(())
}

/// The partitions of the table `qualified` (quoted, schema-qualified), with their bounds as
/// written in `PARTITION OF` (`FOR VALUES FROM (…) TO (…)`, `DEFAULT`); none for a plain table.
async fn partitions(
    connection: &mut PgConnection,
    qualified: &str,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT c.relname::text, pg_get_expr(c.relpartbound, c.oid)
           FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
          WHERE i.inhparent = to_regclass($1)
          ORDER BY c.relname",
    )
    .bind(qualified)
    .fetch_all(connection)
    .await
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
    let _lock = exclusive(pool, projection.name()).await?;
    let built = run(projection, pool, source, batch, progress, None).await;
    record_failure(pool, projection.name(), built).await
}

/// The bus's position, as a first build notes it: the sequence of its latest message.
pub(crate) trait BusPosition: Send + Sync {
    /// The sequence of the latest message in the stream (0 when empty).
    fn last_sequence(&self) -> BoxFuture<'_, Result<u64, BoxError>>;
}

/// Builds a projection that was never built (it has no checkpoint row) from `source`, and
/// records where its consumers start on the bus: just after the last message `bus` held before
/// the build's final read of the store (see [`crate::engine::startup`]). `None` when the
/// projection turned out to be built already (by another process, before this one got the
/// lock).
///
/// # Errors
/// [`RebuildError`]; [`RebuildError::AlreadyRunning`] while another process builds it.
pub(crate) async fn build_first<P: Projection>(
    projection: &P,
    pool: &PgPool,
    source: &dyn EventSource,
    batch: i64,
    bus: &dyn BusPosition,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<Option<Rebuilt>, RebuildError> {
    let name = projection.name();
    let _lock = exclusive(pool, name).await?;
    if Checkpoint::load(pool, name).await?.is_some() {
        return Ok(None);
    }
    let built = run(projection, pool, source, batch, progress, Some(bus)).await;
    record_failure(pool, name, built).await.map(Some)
}

/// Takes the projection's rebuild lock: one rebuild per projection at a time, across
/// processes. The lock lives with the returned connection.
async fn exclusive(pool: &PgPool, name: &str) -> Result<sqlx::PgConnection, RebuildError> {
    let mut lock = pool.acquire().await?.detach();
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
        .bind(format!("projection-rebuild:{name}"))
        .fetch_one(&mut lock)
        .await?;
    if !locked {
        return Err(RebuildError::AlreadyRunning(name.to_owned()));
    }
    Ok(lock)
}

/// Records a failed rebuild in `projection.rebuilds` (the admin overview shows it).
async fn record_failure(
    pool: &PgPool,
    name: &str,
    result: Result<Rebuilt, RebuildError>,
) -> Result<Rebuilt, RebuildError> {
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
    bus: Option<&dyn BusPosition>,
) -> Result<Rebuilt, RebuildError> {
    let name = projection.name();
    let shadow = Target::rebuild(projection);
    let total = crate::status::stored_events(pool, projection.aggregate_types()).await?;
    prepare(projection, &shadow, pool, total).await?;

    let types = projection.aggregate_types();
    let mut after = (0, 0);
    let mut done = 0;
    let mut consumer_start = None;
    loop {
        // Every message on the bus up to this mark was published before the read below, so
        // its event is visible to that read or was read already. The mark taken before the
        // read that reaches the end of the store is where the consumers start.
        if let Some(bus) = bus {
            let last = bus.last_sequence().await.map_err(RebuildError::Bus)?;
            consumer_start = Some(last + 1);
        }
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
    swap::swap(projection, &shadow, pool, source, consumer_start).await?;
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
        copy_table(&mut tx, &schema, table).await?;
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
