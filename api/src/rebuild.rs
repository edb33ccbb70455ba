//! Rebuilds wired to the event store: the feed as the rebuild's source, rebuilds of outdated
//! projections at start-up, and rebuilds started from the admin API.

use std::time::{Duration, Instant};

use commands::feed::{self, FeedCursor};
use domain::event::RecordedEvent;
use futures::future::BoxFuture;
use projections::rebuild::{BoxError, EventSource, Progress, RebuildError, Rebuilt};
use projections::registry::Registered;
use sqlx::PgPool;
use tracing::{error, info, warn};

/// Events read from the store per rebuild step.
pub const BATCH: i64 = 5_000;

/// The event store's gap-free global feed, as a rebuild's source.
#[derive(Debug, Clone)]
pub struct FeedSource {
    pool: PgPool,
}

impl FeedSource {
    /// The feed of the store behind `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
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
            Ok(feed::read(&self.pool, cursor, limit).await?)
        })
    }

    fn read_stream<'a>(
        &'a self,
        aggregate_type: &'a str,
        aggregate_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<RecordedEvent>, BoxError>> {
        Box::pin(
            async move { Ok(feed::read_stream(&self.pool, aggregate_type, aggregate_id).await?) },
        )
    }
}

/// Rebuilds `projection`, logging progress every few seconds.
///
/// # Errors
/// [`RebuildError`].
pub async fn rebuild_logged(projection: Registered, pool: PgPool) -> Result<Rebuilt, RebuildError> {
    let source = FeedSource::new(pool.clone());
    let mut last_log = Instant::now();
    let mut progress = |p: Progress| {
        if last_log.elapsed() > Duration::from_secs(5) {
            info!(
                projection = projection.name(),
                rebuild.done = p.done,
                rebuild.total = p.total,
                "rebuilding"
            );
            last_log = Instant::now();
        }
    };
    info!(
        projection = projection.name(),
        version = projection.version(),
        "rebuild started"
    );
    let rebuilt = projection
        .rebuild(&pool, &source, BATCH, &mut progress)
        .await?;
    info!(
        projection = projection.name(),
        rebuild.events = rebuilt.events,
        version = rebuilt.version,
        "rebuild finished; new tables live"
    );
    Ok(rebuilt)
}

/// Starts a background rebuild; failures are logged (and recorded in `projection.rebuilds`).
pub fn spawn_rebuild(projection: Registered, pool: PgPool) {
    tokio::spawn(async move {
        match rebuild_logged(projection, pool).await {
            Ok(_) => {}
            Err(RebuildError::AlreadyRunning(name)) => {
                info!(projection = %name, "a rebuild is already running elsewhere")
            }
            Err(failure) => {
                error!(projection = projection.name(), error = %failure, "rebuild failed; the live tables are unchanged")
            }
        }
    });
}

/// At start-up: a projection whose declared version differs from the live one is rebuilt in the
/// background (queries keep reading the current tables meanwhile); a projection that never ran
/// records its version.
///
/// # Errors
/// When the database fails.
pub async fn rebuild_outdated(pool: &PgPool) -> Result<(), sqlx::Error> {
    for projection in Registered::ALL {
        match projection.live_version(pool).await? {
            None => {
                sqlx::query(
                    "INSERT INTO projection.checkpoints (projection, version) VALUES ($1, $2)
                     ON CONFLICT (projection) DO NOTHING",
                )
                .bind(projection.name())
                .bind(projection.version() as i32)
                .execute(pool)
                .await?;
            }
            Some(live) if live != projection.version() => {
                warn!(
                    projection = projection.name(),
                    live,
                    declared = projection.version(),
                    "projection version changed; rebuilding"
                );
                spawn_rebuild(projection, pool.clone());
            }
            Some(_) => {}
        }
    }
    Ok(())
}
