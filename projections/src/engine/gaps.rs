//! Gaps JetStream cannot fill are filled from the event store.
//!
//! A gap (an event arrives whose predecessor in its stream was never applied) is normally
//! short-lived: the predecessor is a message redelivered later, so the runner holds the event back
//! and JetStream redelivers it after a moment. But JetStream's retention is bounded. When the
//! predecessor expired before this projection read it (a projection that was stopped for longer
//! than the retention, consumers recreated over a trimmed stream), no redelivery will ever bring
//! it, and holding back would retry forever in silence.
//!
//! The bus cannot say which of its messages would carry a stream's missing sequence, so "older
//! than the stream's first message" is not something the runner can check directly. The robust
//! criterion is duration: a gap still open after [`GAP_FILL_AFTER_DELIVERIES`] deliveries is
//! filled from the store, which holds every event. Filling an ordinary short-lived gap early
//! costs one stream read and is still correct: the store's events pass the same guard, and the
//! bus's copies become duplicates. If the store lacks the missing events too (the bus carries
//! events the store never had), the stream is parked with an error starting `gap:`: visible,
//! retriable, never skipped.

use domain::event::RecordedEvent;
use sqlx::PgPool;
use tracing::{info, warn};

use super::guard::{Guard, Verdict};
use super::parking::park;
use super::{apply_events, ApplyError, EventSource, LaneProgress, Projection, Target};

/// Deliveries of a held-back event after which its stream's gap is filled from the store. With
/// the runner's gap retry of a tenth of a second, a gap outliving ordinary redelivery (half a
/// second) is filled.
pub const GAP_FILL_AFTER_DELIVERIES: i64 = 5;

/// What a fill came to for one stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GapFill {
    /// The stream is applied through this sequence now.
    Through(i64),
    /// The stream is parked: the store lacks its missing events too, or one of them is poison.
    Parked,
}

/// Fills the gap of one stream of `projection` from `source`: applies, in one transaction and
/// through the guard, every stored event that continues what the projection applied, and parks
/// the stream when the gap before `waiting` (held-back events of that stream, in sequence order)
/// remains.
///
/// # Errors
/// On transient failures (database, store); nothing is committed then.
pub async fn fill_from_store<P: Projection>(
    projection: &P,
    pool: &PgPool,
    source: &dyn EventSource,
    lane: u32,
    waiting: &[&RecordedEvent],
) -> Result<GapFill, ApplyError> {
    let Some(&first) = waiting.first() else {
        return Ok(GapFill::Through(0));
    };
    let stored = source
        .read_stream(&first.aggregate_type, &first.aggregate_id)
        .await
        .map_err(ApplyError::Store)?;
    let target = Target::live(projection);
    let name = target.name.as_str();
    let mut tx = pool.begin().await?;
    target.enter(&mut tx, projection.name()).await?;
    let guard = Guard::load(&mut tx, name, &[first]).await?;
    let last = guard.next(first) - 1;
    let mut parked = guard.is_parked(first);
    // The stored events that continue the guard without a hole.
    let run: Vec<&RecordedEvent> = stored
        .iter()
        .filter(|event| event.sequence > last)
        .zip(last + 1..)
        .take_while(|(event, expected)| event.sequence == *expected)
        .map(|(event, _)| event)
        .collect();
    let mut through = last;
    let mut progress = LaneProgress::default();
    if !parked && !run.is_empty() {
        let verdicts = apply_events(projection, name, &mut tx, &run).await?;
        for (event, verdict) in run.iter().zip(verdicts) {
            match verdict {
                Verdict::Applied => {
                    through = event.sequence;
                    progress.applied += 1;
                    progress.last_global_position =
                        progress.last_global_position.max(event.global_position);
                }
                Verdict::Parked => parked = true,
                Verdict::Duplicate | Verdict::Gap => {}
            }
        }
    }
    let ahead: Vec<&RecordedEvent> = waiting
        .iter()
        .copied()
        .filter(|event| event.sequence > through)
        .collect();
    let outcome = match ahead.first() {
        // Waiting behind a parked event of the stream.
        Some(_) if parked => {
            for event in &ahead {
                park(&mut tx, name, event, None).await?;
            }
            GapFill::Parked
        }
        Some(next) if next.sequence > through + 1 => {
            let reason = format!(
                "gap: sequences {}..={} of this stream are in neither JetStream nor the event store",
                through + 1,
                next.sequence - 1
            );
            warn!(projection = name, stream = %next.aggregate_id, sequence = next.sequence,
                reason, "parking a stream whose gap the event store cannot fill");
            park(&mut tx, name, next, Some(&reason)).await?;
            for event in &ahead[1..] {
                park(&mut tx, name, event, None).await?;
            }
            GapFill::Parked
        }
        _ if parked => GapFill::Parked,
        _ => GapFill::Through(through),
    };
    if progress.applied > 0 {
        progress.record(&mut tx, name, lane).await?;
    }
    tx.commit().await?;
    if progress.applied > 0 {
        info!(projection = name, stream = %first.aggregate_id, events = progress.applied,
            through, "filled a gap JetStream no longer holds from the event store");
    }
    Ok(outcome)
}
