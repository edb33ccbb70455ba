//! Job streams the process manager parks: one whose stored history does not decode, or whose
//! timer's command fails for good. A parked job neither blocks the other jobs' timers nor is
//! retried in a loop; it is listed with its reason (`backend scheduler parked`, `/metrics`,
//! `/health/projections`) until a later event of the job or [`retry`] derives its timer again.
//!
//! A timer whose command failed for good is held (due again only after [`HELD_FOR`]) rather
//! than cleared: an error misjudged as permanent still heals by itself, and a retry makes exactly
//! that timer due at once.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use tracing::warn;
use uuid::Uuid;

use super::scheduler::{derive_timer, SchedulerError};

/// A parked job stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct ParkedJob {
    /// The job's stream id, `{tenant}:{uuid}`.
    pub aggregate_id: String,
    /// Its tenant.
    pub tenant_id: String,
    /// The stored event that does not decode, when that is the reason.
    pub event_id: Option<Uuid>,
    /// Why it is parked.
    pub error: String,
    /// How often it failed.
    pub attempts: i32,
    /// When it first failed.
    pub first_failed_at: DateTime<Utc>,
    /// When it last failed.
    pub last_failed_at: DateTime<Utc>,
}

/// Parks `aggregate_id` with `error` (again: one more attempt, the latest reason).
pub(super) async fn park(
    pool: &PgPool,
    aggregate_id: &str,
    event_id: Option<Uuid>,
    error: &str,
) -> Result<(), sqlx::Error> {
    warn!(job.stream = %aggregate_id, error = %error, "parking a job the scheduler cannot handle");
    let tenant = aggregate_id
        .split_once(':')
        .map_or("", |(tenant, _)| tenant);
    sqlx::query(
        "INSERT INTO scheduler.parked (aggregate_id, tenant_id, event_id, error)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (aggregate_id) DO UPDATE
            SET event_id = coalesce(excluded.event_id, parked.event_id), error = excluded.error,
                attempts = parked.attempts + 1, last_failed_at = clock_timestamp()",
    )
    .bind(aggregate_id)
    .bind(tenant)
    .bind(event_id)
    .bind(error)
    .execute(pool)
    .await?;
    Ok(())
}

/// How long a timer whose command failed for good waits before it is fired again.
pub const HELD_FOR: Duration = Duration::from_secs(600);

/// Parks the job of the taken timer of version `version` because firing it failed for good,
/// and holds the timer for [`HELD_FOR`], in one statement: a timer re-derived meanwhile (the job
/// moved on) is neither held nor parked.
pub(super) async fn park_held(
    pool: &PgPool,
    aggregate_id: &str,
    version: i64,
    error: &str,
) -> Result<(), sqlx::Error> {
    warn!(job.stream = %aggregate_id, error = %error, "parking a job whose timer fails for good");
    sqlx::query(
        "WITH held AS (
            UPDATE scheduler.job_timers SET due_at = clock_timestamp() + $3::interval
             WHERE aggregate_id = $1 AND version = $2 AND kind IS NOT NULL
            RETURNING aggregate_id, tenant_id)
         INSERT INTO scheduler.parked (aggregate_id, tenant_id, error)
         SELECT aggregate_id, tenant_id, $4 FROM held
         ON CONFLICT (aggregate_id) DO UPDATE
            SET error = excluded.error, attempts = parked.attempts + 1,
                last_failed_at = clock_timestamp()",
    )
    .bind(aggregate_id)
    .bind(version)
    .bind(HELD_FOR)
    .bind(error)
    .execute(pool)
    .await?;
    Ok(())
}

/// The parked job streams whose id starts with `scope` (`""` for every tenant), oldest first.
///
/// # Errors
/// When the database fails.
pub async fn list(pool: &PgPool, scope: &str) -> Result<Vec<ParkedJob>, sqlx::Error> {
    sqlx::query_as(
        "SELECT aggregate_id, tenant_id, event_id, error, attempts, first_failed_at, last_failed_at
           FROM scheduler.parked WHERE starts_with(aggregate_id, $1)
          ORDER BY first_failed_at, aggregate_id",
    )
    .bind(scope)
    .fetch_all(pool)
    .await
}

/// How many job streams are parked.
///
/// # Errors
/// When the database fails.
pub async fn count(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM scheduler.parked")
        .fetch_one(pool)
        .await
}

/// Retries a parked job with the current code: derives its timer from the stored history again
/// and makes its timer, if any, due at once. Returns whether the job is free now (`false`: it parked
/// again, with the new reason).
///
/// # Errors
/// On transient failures; the job stays parked then.
pub async fn retry(pool: &PgPool, aggregate_id: &str) -> Result<bool, SchedulerError> {
    if let Err(error) = derive_timer(pool, aggregate_id).await {
        if !error.parks() {
            return Err(error);
        }
        park(pool, aggregate_id, error.event_id(), &error.chain()).await?;
        return Ok(false);
    }
    sqlx::query(
        "WITH unparked AS (DELETE FROM scheduler.parked WHERE aggregate_id = $1)
         UPDATE scheduler.job_timers SET due_at = clock_timestamp()
          WHERE aggregate_id = $1 AND kind IS NOT NULL",
    )
    .bind(aggregate_id)
    .execute(pool)
    .await?;
    Ok(true)
}
