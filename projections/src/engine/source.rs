//! How the engine reads the event store, without depending on the write side.
//!
//! The event store is the history; JetStream only buffers its recent part. Whenever the engine
//! needs what the bus no longer has (a projection's first build, a rebuild, a gap), it reads
//! through an [`EventSource`]. The implementation over the store's gap-free global feed lives on
//! the composition side (the `api` crate adapts `commands::feed`), so this crate never reads the
//! `events` table by position itself.

use domain::event::RecordedEvent;
use futures::future::BoxFuture;

/// Any error of an event source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Where the engine reads history. Implemented over the event store's global feed, whose order
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
