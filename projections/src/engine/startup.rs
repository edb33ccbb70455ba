//! What a runner settles before it consumes: a projection is built from the event store first.
//!
//! JetStream retains a bounded window of history (30 days by default); the event store holds all
//! of it. A projection seen for the first time (it has no checkpoint row) must therefore not
//! start from whatever JetStream still retains: streams whose first events expired would look
//! like gaps forever. Instead, before any partition consumes, the runner builds the projection
//! from the event store through the rebuild path (shadow tables, then an atomic swap that
//! writes the checkpoint row), and its consumers then start on the bus just after the point the
//! build reached.
//!
//! That point is found without mapping store positions to bus positions. Before each read of
//! the store, the build notes `S`, the JetStream stream's last sequence; the `S` noted before
//! the read that reached the end of the store is kept, and consumers start at `S + 1`. Nothing
//! is lost: a message at or before `S` was published before that final read began, so the relay
//! had already read its event from the gap-free feed, which means the event had committed below
//! the feed's horizon and the final read (or an earlier one) returned it. Nothing is applied
//! twice: an event both read by the build and published after `S` (published during the final
//! read, or later because the relay lags behind the store) meets the guard the build left, and
//! is dropped as a duplicate.
//!
//! The build runs under the rebuild's advisory lock, so of several processes starting at once
//! one builds and the others wait for the checkpoint row, then consume from the same start.

use std::time::Duration;

use async_nats::jetstream;
use futures::future::BoxFuture;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::checkpoint::Checkpoint;
use super::{BoxError, EventSource, Projection};
use crate::rebuild::{build_first, progress_logger, BusPosition, RebuildError, BATCH};

/// Returns the projection's checkpoint once it has one, building the projection from the store
/// first if it never was built; `None` if `shutdown` came first.
pub(super) async fn settle<P: Projection>(
    projection: &P,
    pool: &PgPool,
    source: &dyn EventSource,
    jetstream: &jetstream::Context,
    stream: &str,
    shutdown: &CancellationToken,
) -> Option<Checkpoint> {
    let name = projection.name();
    let mut wait = Duration::from_millis(100);
    loop {
        if shutdown.is_cancelled() {
            return None;
        }
        let failure: Option<String> = match Checkpoint::load(pool, name).await {
            Ok(Some(checkpoint)) => return Some(checkpoint),
            Ok(None) => {
                let built = tokio::select! {
                    built = build(projection, pool, source, jetstream, stream) => built,
                    () = shutdown.cancelled() => return None,
                };
                match built {
                    Ok(()) => continue,
                    // Another process builds it; its checkpoint row will appear.
                    Err(RebuildError::AlreadyRunning(_)) => {
                        wait = Duration::from_millis(200);
                        None
                    }
                    Err(error) => Some(error.to_string()),
                }
            }
            Err(error) => Some(error.to_string()),
        };
        if let Some(error) = failure {
            warn!(
                projection = name,
                error, "building the projection from the event store failed; retrying"
            );
            wait = (wait * 2).min(Duration::from_secs(5));
        }
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = shutdown.cancelled() => return None,
        }
    }
}

/// Builds the projection from the store, noting the bus's position as it goes.
async fn build<P: Projection>(
    projection: &P,
    pool: &PgPool,
    source: &dyn EventSource,
    jetstream: &jetstream::Context,
    stream: &str,
) -> Result<(), RebuildError> {
    let bus = Bus { jetstream, stream };
    let mut progress = progress_logger(projection.name());
    build_first(projection, pool, source, BATCH, &bus, &mut progress).await?;
    Ok(())
}

/// The JetStream stream the projection consumes, as a first build notes its position.
struct Bus<'a> {
    jetstream: &'a jetstream::Context,
    stream: &'a str,
}

impl BusPosition for Bus<'_> {
    fn last_sequence(&self) -> BoxFuture<'_, Result<u64, BoxError>> {
        Box::pin(async move {
            // Looking the stream up fetches its state, the last sequence included.
            let stream = self.jetstream.get_stream(self.stream).await?;
            Ok(stream.cached_info().state.last_sequence)
        })
    }
}
