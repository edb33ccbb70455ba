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
//! retriable, never skipped. If the store cannot be read for that stream in a way that will
//! repeat (a row this build cannot decode, see [`super::source::UnreadableHistory`]), the stream
//! is parked the same way with an error starting `store:`, instead of being retried forever.
//!
//! The same fill serves every path that reads a stream's missing events from the store: a gap
//! held back here, a partition catching up after JetStream forgot messages it never read (see
//! [`super::catchup`]; no event of the stream is waiting then), and a retry of a parked stream.

use domain::event::RecordedEvent;
use sqlx::PgPool;
use tracing::{info, warn};

use super::guard::{Guard, Verdict};
use super::parking::park;
use super::source::error_chain;
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
    /// The stream is parked: the store lacks its missing events too, cannot be read for them,
    /// or one of them is poison.
    Parked,
}

/// Fills one stream (`(aggregate type, aggregate id)`) of `projection` from `source`: applies,
/// in one transaction and through the guard, every stored event that continues what the
/// projection applied, and parks the stream when a gap before `waiting` (held-back events of
/// that stream, in sequence order; possibly none) remains. A parked stream is left as it is.
///
/// # Errors
/// On transient failures (database, store); nothing is committed then. Also when the store
/// cannot be read for this stream for good ([`ApplyError::is_transient`] is false) and no event
/// is waiting, so there is nothing to park: the caller reports it, and the stream shows as
/// behind in the projection's status.
pub async fn fill_from_store<P: Projection>(
    projection: &P,
    pool: &PgPool,
    source: &dyn EventSource,
    lane: u32,
    stream: (&str, &str),
    waiting: &[&RecordedEvent],
) -> Result<GapFill, ApplyError> {
    let (aggregate_type, aggregate_id) = stream;
    let (stored, unreadable) = match source.read_stream(aggregate_type, aggregate_id).await {
        Ok(stored) => (stored, None),
        Err(error) => {
            let error = ApplyError::Store(error);
            if error.is_transient() || waiting.is_empty() {
                return Err(error);
            }
            (Vec::new(), Some(error_chain(&error)))
        }
    };
    let target = Target::live(projection);
    let name = target.name.as_str();
    let mut tx = pool.begin().await?;
    target.enter(&mut tx, projection.name()).await?;
    let guard = Guard::load_streams(&mut tx, name, vec![stream]).await?;
    let last = guard.last_of(stream);
    let mut parked = guard.is_parked_stream(stream);
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
            let missing = format!(
                "sequences {}..={} of this stream",
                through + 1,
                next.sequence - 1
            );
            let reason = match &unreadable {
                Some(error) => {
                    format!("store: {missing} cannot be read from the event store: {error}")
                }
                None => format!("gap: {missing} are in neither JetStream nor the event store"),
            };
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
        info!(
            projection = name,
            stream = aggregate_id,
            events = progress.applied,
            through,
            "filled from the event store what JetStream no longer holds"
        );
    }
    Ok(outcome)
}
