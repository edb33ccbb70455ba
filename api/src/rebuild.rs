//! The event store as the projection engine's source of history, and the rebuild entry points
//! of start-up and the admin API bound to it.
//!
//! `projections` cannot depend on the write side, so the adapter from `commands::feed` (the one
//! owner of event-store reads) to the engine's [`EventSource`] lives here, on the composition
//! side. The rebuilds themselves, and their bookkeeping, are the engine's
//! ([`projections::rebuild`]).

use std::sync::Arc;

use commands::feed::{self, FeedCursor, FeedError};
use domain::event::RecordedEvent;
use futures::future::BoxFuture;
use projections::engine::UnreadableHistory;
use projections::rebuild::{BoxError, EventSource, RebuildError, Rebuilt};
use projections::registry::Registered;
use sqlx::PgPool;

pub use projections::rebuild::BATCH;

/// The event store's gap-free global feed, as the engine's source of history.
#[derive(Debug, Clone)]
pub struct FeedSource {
    pool: PgPool,
}

impl FeedSource {
    /// The feed of the store behind `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// The same, shared, as runners and background rebuilds hold it.
    pub fn shared(pool: PgPool) -> Arc<dyn EventSource> {
        Arc::new(Self::new(pool))
    }
}

impl EventSource for FeedSource {
    fn read_after(
        &self,
        after: (u64, i64),
        limit: i64,
    ) -> BoxFuture<'_, Result<Vec<RecordedEvent>, BoxError>> {
        Box::pin(async move {
            let cursor = FeedCursor {
                transaction_id: after.0,
                global_position: after.1,
            };
            feed::read(&self.pool, cursor, limit)
                .await
                .map_err(classified)
        })
    }

    fn read_stream<'a>(
        &'a self,
        aggregate_type: &'a str,
        aggregate_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<RecordedEvent>, BoxError>> {
        Box::pin(async move {
            feed::read_stream(&self.pool, aggregate_type, aggregate_id)
                .await
                .map_err(classified)
        })
    }
}

/// A feed failure as the engine needs it: a row that does not decode fails the same way on
/// every attempt, so it is marked [`UnreadableHistory`] and the engine parks the stream instead
/// of retrying forever; a database failure is worth retrying.
fn classified(error: FeedError) -> BoxError {
    match error {
        FeedError::Corrupt { .. } => UnreadableHistory::boxed(error),
        FeedError::Database(_) => Box::new(error),
    }
}

/// Rebuilds `projection` from the store, logging progress every few seconds.
///
/// # Errors
/// [`RebuildError`].
pub async fn rebuild_logged(projection: Registered, pool: PgPool) -> Result<Rebuilt, RebuildError> {
    projections::rebuild::rebuild_logged(projection, &pool, &FeedSource::new(pool.clone())).await
}

/// Starts a background rebuild from the store; failures are logged (and recorded).
pub fn spawn_rebuild(projection: Registered, pool: PgPool) {
    projections::rebuild::spawn_rebuild(projection, pool.clone(), FeedSource::shared(pool));
}

/// At start-up, rebuilds from the store every projection whose version changed (see
/// [`projections::rebuild::rebuild_outdated`]).
///
/// # Errors
/// When the database fails.
pub async fn rebuild_outdated(pool: &PgPool) -> Result<(), sqlx::Error> {
    projections::rebuild::rebuild_outdated(pool, FeedSource::shared(pool.clone())).await
}
