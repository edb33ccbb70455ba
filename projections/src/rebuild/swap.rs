//! The atomic hand-over from the live tables to the rebuilt ones.
//!
//! One transaction takes the projection's swap lock exclusively (live batches hold it shared),
//! applies to the copy whatever the live projection applied meanwhile, moves the copy's tables
//! into `read_models`, hands the copy's guard, parked rows and progress to the live name, and
//! records the new version as live. Queries blocked for those milliseconds then read the new
//! tables.

use domain::event::RecordedEvent;
use sqlx::{Acquire, PgConnection, PgPool};

use super::{partitions, quoted, EventSource, RebuildError};
use crate::engine::checkpoint::Checkpoint;
use crate::engine::{apply_events, LaneProgress, Projection, Target, Verdict};

/// The atomic hand-over from the live tables to the rebuilt ones.
pub(super) async fn swap<P: Projection>(
    projection: &P,
    shadow: &Target,
    pool: &PgPool,
    source: &dyn EventSource,
    consumer_start: Option<u64>,
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
        // A partitioned table's partitions move with it: each is a table of its own.
        let live_table = format!("{live}.{}", quoted(table));
        let rebuilt_table = format!("{rebuilt}.{}", quoted(table));
        let old_partitions = partitions(&mut tx, &live_table).await?;
        let new_partitions = partitions(&mut tx, &rebuilt_table).await?;
        let moves = std::iter::once(String::from(*table))
            .chain(old_partitions.into_iter().map(|(partition, _)| partition))
            .map(|name| (live.clone(), name, retired.clone()))
            .chain(
                std::iter::once(String::from(*table))
                    .chain(new_partitions.into_iter().map(|(partition, _)| partition))
                    .map(|name| (rebuilt.clone(), name, live.clone())),
            );
        for (from, name, to) in moves {
            sqlx::query(&format!(
                "ALTER TABLE {from}.{} SET SCHEMA {to}",
                quoted(&name)
            ))
            .execute(&mut *tx)
            .await?;
        }
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
    Checkpoint::record_live(&mut tx, name, projection.version(), consumer_start).await?;
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
