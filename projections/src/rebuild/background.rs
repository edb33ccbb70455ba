//! Rebuilds a process starts on its own: at start-up when a projection's declared version
//! differs from its live tables', and on an operator's request. Progress is logged every few
//! seconds; failures are logged and recorded in `projection.rebuilds`, and never touch the live
//! tables.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::PgPool;
use tracing::{error, info, warn};

use super::{EventSource, Progress, RebuildError, Rebuilt};
use crate::registry::Registered;

/// Events read from the store per rebuild step.
pub const BATCH: i64 = 5_000;

/// A progress callback that logs `projection`'s progress at most every five seconds.
pub fn progress_logger(projection: &'static str) -> impl FnMut(Progress) + Send {
    let mut last_log = Instant::now();
    move |p: Progress| {
        if last_log.elapsed() > Duration::from_secs(5) {
            info!(
                projection,
                rebuild.done = p.done,
                rebuild.total = p.total,
                "rebuilding"
            );
            last_log = Instant::now();
        }
    }
}

/// Rebuilds `projection` from `source`, logging progress every few seconds.
///
/// # Errors
/// [`RebuildError`].
pub async fn rebuild_logged(
    projection: Registered,
    pool: &PgPool,
    source: &dyn EventSource,
) -> Result<Rebuilt, RebuildError> {
    info!(
        projection = projection.name(),
        version = projection.version(),
        "rebuild started"
    );
    let mut progress = progress_logger(projection.name());
    let rebuilt = projection
        .rebuild(pool, source, BATCH, &mut progress)
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
pub fn spawn_rebuild(projection: Registered, pool: PgPool, source: Arc<dyn EventSource>) {
    tokio::spawn(async move {
        match rebuild_logged(projection, &pool, &*source).await {
            Ok(_) => {}
            Err(RebuildError::AlreadyRunning(name)) => {
                info!(projection = %name, "a rebuild is already running elsewhere");
            }
            Err(failure) => {
                error!(projection = projection.name(), error = %failure, "rebuild failed; the live tables are unchanged");
            }
        }
    });
}

/// At start-up: a projection whose declared version differs from the live one is rebuilt in the
/// background (queries keep reading the current tables meanwhile). A projection never built has
/// no live version; its runner builds it before consuming (see [`crate::engine::startup`]).
///
/// # Errors
/// When the database fails.
pub async fn rebuild_outdated(
    pool: &PgPool,
    source: Arc<dyn EventSource>,
) -> Result<(), sqlx::Error> {
    for projection in Registered::ALL {
        match projection.live_version(pool).await? {
            Some(live) if live != projection.version() => {
                warn!(
                    projection = projection.name(),
                    live,
                    declared = projection.version(),
                    "projection version changed; rebuilding"
                );
                spawn_rebuild(projection, pool.clone(), source.clone());
            }
            Some(_) | None => {}
        }
    }
    Ok(())
}
