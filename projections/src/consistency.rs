//! Read-your-writes: a query given a consistency token answers only once the projection has
//! applied that write, or says plainly that it is behind.

use std::time::Duration;

use domain::event::ConsistencyToken;
use sqlx::PgPool;
use tokio::time::Instant;

/// Why a query could not be answered with the token's guarantee.
#[derive(Debug, thiserror::Error)]
pub enum ConsistencyError {
    /// The projection had not applied the write when the wait ran out.
    #[error("the {projection} projection has applied version {applied} of the stream, the token requires {required}")]
    Behind {
        /// The projection waited on.
        projection: &'static str,
        /// The stream version it has applied.
        applied: u64,
        /// The version the token requires.
        required: u64,
    },
    /// The database failed.
    #[error("reading projection positions failed")]
    Database(#[from] sqlx::Error),
}

/// The stream version `projection` has applied for the token's stream.
///
/// # Errors
/// When the database fails.
pub async fn applied_version(
    pool: &PgPool,
    projection: &str,
    token: &ConsistencyToken,
) -> Result<u64, sqlx::Error> {
    let last: Option<i64> = sqlx::query_scalar(
        "SELECT last_sequence FROM projection.stream_positions
          WHERE projection = $1 AND aggregate_type = $2 AND aggregate_id = $3",
    )
    .bind(projection)
    .bind(&token.aggregate_type)
    .bind(&token.aggregate_id)
    .fetch_optional(pool)
    .await?;
    Ok(last.unwrap_or(0).max(0) as u64)
}

/// Waits until `projection` has applied the token's write, for at most `timeout`.
///
/// # Errors
/// [`ConsistencyError::Behind`] when the wait runs out.
pub async fn wait_for(
    pool: &PgPool,
    projection: &'static str,
    token: &ConsistencyToken,
    timeout: Duration,
) -> Result<(), ConsistencyError> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(2);
    loop {
        let applied = applied_version(pool, projection, token).await?;
        if applied >= token.version {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(ConsistencyError::Behind {
                projection,
                applied,
                required: token.version,
            });
        }
        tokio::time::sleep(pause.min(deadline - Instant::now())).await;
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}
