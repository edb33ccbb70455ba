//! Parking: a poison event stops its own stream, never the projection.
//!
//! An event whose apply fails deterministically (it cannot be decoded, or contradicts the read
//! model) is kept in `projection.parked` with the error, and every later event of its stream
//! waits there behind it, in order, acknowledged on the bus. Other streams keep flowing. Nothing
//! is skipped: the parked events are exposed (lag, readiness, the admin API) and a retry with
//! fixed code applies them in sequence order. A gap neither JetStream nor the event store can
//! fill parks its stream the same way, with an error starting `gap:` (or `store:` when the
//! store could not be read for it).
//!
//! A retry given the event store ([`retry_parked_from_store`]) reads the stream there first.
//! The parked rows are copies of what the bus delivered, and a stream parked for a gap is
//! parked precisely because its missing events are among none of them: retrying from the
//! parked rows alone could never apply anything. The store is the history, so its copy of a
//! sequence wins over a parked one, and parked rows past the store's head (events the bus
//! carried that the store lacks) still wait their turn.

use std::collections::BTreeMap;

use domain::event::RecordedEvent;
use sqlx::{PgConnection, PgPool};

use super::guard::{apply_isolated, Applied, Guard};
use super::source::error_chain;
use super::{ApplyError, EventSource, LaneProgress, Projection, Target};

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
    /// Events now applied (parked ones, and with the store those it supplied).
    pub applied: usize,
    /// Events still parked (the first failed again, or a gap remains).
    pub still_parked: usize,
}

/// Retries a parked stream of `projection` from its parked events alone: applies them in
/// sequence order until one fails again (it stays parked with the new error) or a gap remains.
/// A stream parked for a gap needs [`retry_parked_from_store`].
///
/// # Errors
/// On transient failures; nothing is committed then.
pub async fn retry_parked<P: Projection>(
    projection: &P,
    pool: &PgPool,
    aggregate_type: &str,
    aggregate_id: &str,
) -> Result<RetryOutcome, ApplyError> {
    retry(projection, pool, None, (aggregate_type, aggregate_id)).await
}

/// Retries a parked stream of `projection`, reading it from `source` first: applies, in
/// sequence order, the stored events that continue what was applied (the store's copy winning
/// over a parked one) and then any parked events past the store's head, until one fails again
/// (it heads the parked rows with the new error) or a gap remains (the stream stays parked with
/// the reason `gap:`). After the events a gap waited for reached the store, this applies them.
///
/// # Errors
/// On transient failures (database, store); nothing is committed then.
pub async fn retry_parked_from_store<P: Projection>(
    projection: &P,
    pool: &PgPool,
    source: &dyn EventSource,
    aggregate_type: &str,
    aggregate_id: &str,
) -> Result<RetryOutcome, ApplyError> {
    retry(
        projection,
        pool,
        Some(source),
        (aggregate_type, aggregate_id),
    )
    .await
}

async fn retry<P: Projection>(
    projection: &P,
    pool: &PgPool,
    source: Option<&dyn EventSource>,
    stream: (&str, &str),
) -> Result<RetryOutcome, ApplyError> {
    let (aggregate_type, aggregate_id) = stream;
    // Read before the transaction: a slow store read must not hold the parked rows' locks.
    let (stored, unreadable) = match source {
        None => (Vec::new(), None),
        Some(source) => match source.read_stream(aggregate_type, aggregate_id).await {
            Ok(stored) => (stored, None),
            Err(error) => {
                let error = ApplyError::Store(error);
                if error.is_transient() {
                    return Err(error);
                }
                (Vec::new(), Some(error_chain(&error)))
            }
        },
    };
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
    if rows.is_empty() {
        // Nothing parked: catching the stream up is the runner's business, not a retry's.
        tx.commit().await?;
        return Ok(RetryOutcome::default());
    }
    let parked = rows
        .into_iter()
        .map(|(_, stored)| serde_json::from_value::<RecordedEvent>(stored))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApplyError::Inconsistent(e.to_string()))?;
    let mut guard = Guard::load_streams(&mut tx, name, vec![stream]).await?;
    let last = guard.last_of(stream);
    // The store is the history: its copy of a sequence replaces the bus's parked copy.
    let candidates: BTreeMap<i64, &RecordedEvent> = parked
        .iter()
        .chain(&stored)
        .filter(|event| event.sequence > last)
        .map(|event| (event.sequence, event))
        .collect();
    let mut through = last;
    let mut failure = None;
    let mut progress = LaneProgress::default();
    for (&sequence, &event) in &candidates {
        if sequence != through + 1 {
            break;
        }
        match apply_isolated(projection, &mut tx, event).await? {
            Applied::Yes => {
                guard.applied(event);
                through = sequence;
                progress.applied += 1;
                progress.last_global_position =
                    progress.last_global_position.max(event.global_position);
            }
            Applied::No(error) => {
                failure = Some((event, error));
                break;
            }
        }
    }
    sqlx::query(
        "DELETE FROM projection.parked
          WHERE projection = $1 AND aggregate_type = $2 AND aggregate_id = $3 AND sequence <= $4",
    )
    .bind(name)
    .bind(aggregate_type)
    .bind(aggregate_id)
    .bind(through)
    .execute(&mut *tx)
    .await?;
    let head = parked
        .iter()
        .map(|event| event.sequence)
        .find(|sequence| *sequence > through);
    match (failure, head) {
        (Some((event, error)), _) => {
            record_failure(&mut tx, name, event, &error).await?;
        }
        (None, Some(head)) => {
            let missing = format!("sequences {}..={} of this stream", through + 1, head - 1);
            let reason = match (&unreadable, source) {
                (Some(error), _) => {
                    format!("store: {missing} cannot be read from the event store: {error}")
                }
                (None, Some(_)) => {
                    format!("gap: {missing} are in neither JetStream nor the event store")
                }
                (None, None) => format!(
                    "gap: {missing} are not among the parked events; a retry reading the event \
                     store may fill them"
                ),
            };
            let event = parked
                .iter()
                .find(|event| event.sequence == head)
                .ok_or_else(|| ApplyError::Inconsistent("parked head vanished".into()))?;
            record_failure(&mut tx, name, event, &reason).await?;
        }
        (None, None) => {}
    }
    let still_parked: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM projection.parked
          WHERE projection = $1 AND aggregate_type = $2 AND aggregate_id = $3",
    )
    .bind(name)
    .bind(aggregate_type)
    .bind(aggregate_id)
    .fetch_one(&mut *tx)
    .await?;
    guard.save(&mut tx, name).await?;
    progress.record(&mut tx, name, 0).await?;
    tx.commit().await?;
    Ok(RetryOutcome {
        applied: progress.applied as usize,
        still_parked: still_parked.max(0) as usize,
    })
}

/// Makes `event` the head of its parked stream with `error` (a failed attempt counted), and
/// the stream's later parked events plain waiters behind it.
async fn record_failure(
    connection: &mut PgConnection,
    projection: &str,
    event: &RecordedEvent,
    error: &str,
) -> Result<(), ApplyError> {
    let stored =
        serde_json::to_value(event).map_err(|e| ApplyError::Inconsistent(e.to_string()))?;
    sqlx::query(
        "WITH head AS (
             INSERT INTO projection.parked
                    (projection, aggregate_type, aggregate_id, sequence, event, error)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (projection, aggregate_type, aggregate_id, sequence) DO UPDATE
                SET event = EXCLUDED.event, error = EXCLUDED.error,
                    attempts = projection.parked.attempts + 1, last_failed_at = clock_timestamp())
         UPDATE projection.parked SET error = NULL
          WHERE projection = $1 AND aggregate_type = $2 AND aggregate_id = $3 AND sequence > $4",
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
