//! How the engine reads the event store, without depending on the write side.
//!
//! The event store is the history; JetStream only buffers its recent part. Whenever the engine
//! needs what the bus no longer has (a projection's first build, a rebuild, a gap, a partition
//! that fell behind the bus's retention), it reads through an [`EventSource`]. The
//! implementation over the store's gap-free global feed lives on the composition side (the `api`
//! crate adapts `commands::feed`), so this crate never reads the `events` table by position
//! itself.
//!
//! A source's failures come in two kinds, and the engine must tell them apart: a database that
//! is briefly unreachable is worth waiting for, but a stored row this build cannot decode fails
//! the same way on every attempt, and retrying it would hold a stream back forever in silence.
//! The engine cannot name the write side's error types, so the composition side wraps every
//! failure that will repeat in [`UnreadableHistory`]; the engine parks the stream it was
//! reading, with the failure as the reason, instead of retrying.

use domain::event::RecordedEvent;
use futures::future::BoxFuture;

/// Any error of an event source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Where the engine reads history. Implemented over the event store's global feed, whose order
/// keeps every stream's sequence order.
///
/// Failures that repeat on every attempt (a stored row that does not decode) are returned
/// wrapped in [`UnreadableHistory`]; any other error is taken as transient.
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

/// A failure of an [`EventSource`] that retrying cannot cure: the store holds something this
/// build cannot read (a row that does not decode). The source wraps the underlying error in it
/// so that the engine parks the affected stream with a reason instead of retrying forever.
#[derive(Debug, thiserror::Error)]
#[error("the event store holds history this build cannot read")]
pub struct UnreadableHistory(#[source] pub BoxError);

impl UnreadableHistory {
    /// `error`, marked as repeating on every attempt, ready to return from an [`EventSource`].
    pub fn boxed(error: impl Into<BoxError>) -> BoxError {
        Box::new(Self(error.into()))
    }

    /// Whether `error`, or anything in its chain of causes, is an [`UnreadableHistory`].
    pub fn is_in(error: &(dyn std::error::Error + 'static)) -> bool {
        let mut current = Some(error);
        while let Some(error) = current {
            if error.is::<Self>() {
                return true;
            }
            current = error.source();
        }
        false
    }
}

/// `error` and its causes on one line, as a parked stream's reason shows them.
pub(crate) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut reason = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        reason.push_str(": ");
        reason.push_str(&cause.to_string());
        source = cause.source();
    }
    reason
}
