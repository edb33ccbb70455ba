//! One active instance of a background worker across every process (the relay, the audit
//! sealer): leadership is a Postgres session advisory lock, held on a connection taken out of
//! the pool for the term. Losing that connection loses the lock, and with it leadership.

use std::time::Duration;

use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::relay::{sleep_or_cancel, Backoff};

/// Tries to lead as `name`. The returned connection holds the lock; dropping it releases it.
async fn elect(pool: &PgPool, name: &str) -> Result<Option<PgConnection>, sqlx::Error> {
    let mut connection = pool.acquire().await?.detach();
    let elected: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
        .bind(name)
        .fetch_one(&mut connection)
        .await?;
    Ok(elected.then_some(connection))
}

/// Waits until this process leads as `name` and returns the connection that holds the lock, or
/// `None` once `shutdown` is cancelled. While another instance leads it looks again after
/// `idle`; after a failed election it backs off with `backoff` (which the term shares). The
/// caller leads until its work stops or the connection is lost, then asks for the next term.
pub(crate) async fn next_term(
    pool: &PgPool,
    name: &str,
    idle: Duration,
    backoff: &mut Backoff,
    shutdown: &CancellationToken,
) -> Option<PgConnection> {
    while !shutdown.is_cancelled() {
        match elect(pool, name).await {
            Ok(Some(leadership)) => {
                info!(name, "elected");
                return Some(leadership);
            }
            Ok(None) => sleep_or_cancel(idle, shutdown).await,
            Err(error) => {
                warn!(name, error = %error, "election failed");
                sleep_or_cancel(backoff.next_wait(), shutdown).await;
            }
        }
    }
    None
}
