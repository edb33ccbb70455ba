//! Parking: a poison event stops its own stream, never the projection.
//!
//! An event whose apply fails deterministically (it cannot be decoded, or contradicts the read
//! model) is kept in `projection.parked` with the error, and every later event of its stream
//! waits there behind it, in order, acknowledged on the bus. Other streams keep flowing. Nothing
//! is skipped: the parked events are exposed (lag, readiness, the admin API) and a retry with
//! fixed code applies them in sequence order. A gap neither JetStream nor the event store can
//! fill parks its stream the same way, with an error starting `gap:`.

use domain::event::RecordedEvent;
use sqlx::{PgConnection, PgPool};

use super::guard::{apply_isolated, Applied, Guard};
use super::{ApplyError, LaneProgress, Projection, Target};

/// Keeps `event` in the parked table: with the error when it parks its stream, without when it
/// waits behind an earlier parked event.
pub(super) async fn park(
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
