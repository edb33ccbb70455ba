//! Dashboard statistics computed over the jobs read model: jobs by status, throughput per
//! minute and hour, duration percentiles per kind, failure and retry rates.

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use sqlx::PgPool;

/// Jobs finished in one time bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Bucket {
    /// Start of the bucket.
    pub start: DateTime<Utc>,
    /// Jobs that succeeded in it.
    pub succeeded: i64,
}

/// Durations of succeeded jobs of one kind, submission to success.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct KindDurations {
    /// The kind.
    pub kind: String,
    /// Succeeded jobs measured.
    pub succeeded: i64,
    /// Median, milliseconds.
    pub p50_ms: i64,
    /// 95th percentile, milliseconds.
    pub p95_ms: i64,
}

/// Dashboard statistics of one tenant at one moment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobStats {
    /// The moment the windows end at.
    pub at: DateTime<Utc>,
    /// Jobs per status.
    pub by_status: Vec<(String, i64)>,
    /// Jobs that succeeded per minute over the last hour (empty minutes left out).
    pub per_minute: Vec<Bucket>,
    /// Jobs that succeeded per hour over the last day (empty hours left out).
    pub per_hour: Vec<Bucket>,
    /// Duration percentiles per kind.
    pub durations: Vec<KindDurations>,
    /// Jobs ever submitted.
    pub jobs: i64,
    /// Attempts that have ended.
    pub attempts_ended: i64,
    /// Attempts that ended in a failure or an expired lease.
    pub attempts_failed: i64,
    /// Times a job went back to the queue after a failure or an expired lease.
    pub retries: i64,
    /// `attempts_failed / attempts_ended` (0 when none ended).
    pub failure_rate: f64,
    /// `retries / jobs` (0 without jobs).
    pub retry_rate: f64,
}

/// The dashboard statistics of a tenant, with time windows ending at `at`.
///
/// # Errors
/// When the database fails.
pub async fn stats(
    pool: &PgPool,
    tenant_id: &str,
    at: DateTime<Utc>,
) -> Result<JobStats, sqlx::Error> {
    let by_status: Vec<(String, i64)> = sqlx::query_as(
        "SELECT status, count(*) FROM read_models.jobs WHERE tenant_id = $1
          GROUP BY status ORDER BY status",
    )
    .bind(tenant_id)
    .fetch_all(pool)
    .await?;
    let buckets = |unit: &'static str, window: TimeDelta| {
        sqlx::query_as::<_, Bucket>(
            "SELECT date_trunc($2, finished_at) AS start, count(*) AS succeeded
               FROM read_models.jobs
              WHERE tenant_id = $1 AND status = 'succeeded'
                AND finished_at > $3 AND finished_at <= $4
              GROUP BY 1 ORDER BY 1",
        )
        .bind(tenant_id)
        .bind(unit)
        .bind(at - window)
        .bind(at)
        .fetch_all(pool)
    };
    let per_minute = buckets("minute", TimeDelta::hours(1)).await?;
    let per_hour = buckets("hour", TimeDelta::days(1)).await?;
    let durations = sqlx::query_as(
        "SELECT kind, count(*) AS succeeded,
                round(percentile_cont(0.5) WITHIN GROUP (ORDER BY
                    extract(epoch FROM finished_at - submitted_at) * 1000))::bigint AS p50_ms,
                round(percentile_cont(0.95) WITHIN GROUP (ORDER BY
                    extract(epoch FROM finished_at - submitted_at) * 1000))::bigint AS p95_ms
           FROM read_models.jobs
          WHERE tenant_id = $1 AND status = 'succeeded'
          GROUP BY kind ORDER BY kind",
    )
    .bind(tenant_id)
    .fetch_all(pool)
    .await?;
    let (jobs, retries): (i64, i64) = sqlx::query_as(
        "SELECT count(*), coalesce(sum(retries), 0)::bigint FROM read_models.jobs
          WHERE tenant_id = $1",
    )
    .bind(tenant_id)
    .fetch_one(pool)
    .await?;
    let (attempts_ended, attempts_failed): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE outcome IS NOT NULL),
                count(*) FILTER (WHERE outcome IN ('failed', 'lease_expired'))
           FROM read_models.job_attempts WHERE tenant_id = $1",
    )
    .bind(tenant_id)
    .fetch_one(pool)
    .await?;
    let ratio = |part: i64, whole: i64| {
        if whole == 0 {
            0.0
        } else {
            part as f64 / whole as f64
        }
    };
    Ok(JobStats {
        at,
        by_status,
        per_minute,
        per_hour,
        durations,
        jobs,
        attempts_ended,
        attempts_failed,
        retries,
        failure_rate: ratio(attempts_failed, attempts_ended),
        retry_rate: ratio(retries, jobs),
    })
}
