//! Applying a batch in one transaction: the read model, the guard and the lane's progress
//! commit together or not at all.
//!
//! Most batches hold no poison event, so the first attempt applies them without a savepoint per
//! event (a savepoint is a round trip). Only when an event fails deterministically is the batch
//! walked again with every event isolated, so the poison event parks its stream and the rest
//! applies.

use domain::event::RecordedEvent;
use sqlx::{PgConnection, PgPool};

use super::guard::{walk, Guard, Verdict};
use super::{ApplyError, LaneProgress, Projection, Target};

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
