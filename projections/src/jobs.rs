//! The jobs read models: job detail and lists, attempts, the worker queue, usage per user, and
//! the dashboard statistics computed over them.

use std::future::Future;

use chrono::{DateTime, TimeDelta, Utc};
use domain::event::RecordedEvent;
use domain::identity::StreamId;
use domain::jobs::{JobEvent, JobKind, QueueReason};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::engine::{ApplyError, Projection};

/// Builds `read_models.jobs`, `job_attempts` and `job_queue`.
#[derive(Debug, Clone, Copy, Default)]
pub struct JobsProjection;

impl JobsProjection {
    /// The projection's stable name.
    pub const NAME: &'static str = "jobs";
}

impl Projection for JobsProjection {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn version(&self) -> u32 {
        // 2: usage is summed from `jobs` at query time (migration 0012 drops `job_usage`).
        2
    }

    fn aggregate_types(&self) -> &'static [&'static str] {
        &["TranslationJob"]
    }

    fn tables(&self) -> &'static [&'static str] {
        &["jobs", "job_attempts", "job_queue"]
    }

    async fn apply(
        &self,
        connection: &mut PgConnection,
        event: &RecordedEvent,
    ) -> Result<(), ApplyError> {
        let stream: StreamId = event
            .aggregate_id
            .parse()
            .map_err(|_| ApplyError::Inconsistent(format!("stream id {:?}", event.aggregate_id)))?;
        let payload: JobEvent = ApplyError::decode(event)?;
        let row = Row {
            tenant: &event.tenant_id,
            job: stream.id,
            version: event.sequence,
            at: payload.at(),
        };
        match payload {
            JobEvent::JobSubmitted {
                owner,
                kind,
                source_language,
                target_language,
                source,
                priority,
                options,
                parent_job_id,
                retry_policy,
                at,
            } => {
                sqlx::query(
                    "INSERT INTO jobs
                        (tenant_id, job_id, owner_id, kind, source_language, target_language,
                         priority, options, parent_job_id, source_document_id, status, chain,
                         attempt, max_attempts, submitted_at, updated_at, version)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'queued', 1, 0, $11,
                             $12, $12, $13)",
                )
                .bind(row.tenant)
                .bind(row.job)
                .bind(owner)
                .bind(kind.as_str())
                .bind(source_language.as_str())
                .bind(target_language.as_str())
                .bind(i16::from(priority.value()))
                .bind(sqlx::types::Json(options.as_map()))
                .bind(parent_job_id)
                .bind(source.document_id)
                .bind(retry_policy.max_attempts() as i32)
                .bind(at)
                .bind(row.version)
                .execute(&mut *connection)
                .await?;
            }
            JobEvent::JobQueued { reason, .. } => {
                let retried = matches!(reason, QueueReason::Retry | QueueReason::LeaseExpired);
                row.update(
                    connection,
                    "status = 'queued', worker = NULL, lease_expires_at = NULL,
                     retry_due_at = NULL, progress_done = NULL, progress_total = NULL,
                     finished_at = NULL, retries = retries + $5::int",
                    (i32::from(retried),),
                )
                .await?;
                sqlx::query(
                    "INSERT INTO job_queue
                        (tenant_id, job_id, kind, source_language, target_language, priority,
                         queued_at)
                     SELECT tenant_id, job_id, kind, source_language, target_language, priority, $3
                       FROM jobs WHERE tenant_id = $1 AND job_id = $2",
                )
                .bind(row.tenant)
                .bind(row.job)
                .bind(row.at)
                .execute(connection)
                .await?;
            }
            JobEvent::JobClaimed {
                lease_id,
                worker,
                attempt,
                lease_expires_at,
                ..
            } => {
                row.update(
                    &mut *connection,
                    "status = 'claimed', attempt = $5, worker = $6, lease_expires_at = $7,
                     progress_done = NULL, progress_total = NULL",
                    (attempt as i32, &worker, lease_expires_at),
                )
                .await?;
                row.dequeue(&mut *connection).await?;
                sqlx::query(
                    "INSERT INTO job_attempts
                        (tenant_id, job_id, chain, attempt, lease_id, worker, claimed_at)
                     SELECT tenant_id, job_id, chain, $3, $4, $5, $6
                       FROM jobs WHERE tenant_id = $1 AND job_id = $2",
                )
                .bind(row.tenant)
                .bind(row.job)
                .bind(attempt as i32)
                .bind(lease_id)
                .bind(&worker)
                .bind(row.at)
                .execute(connection)
                .await?;
            }
            JobEvent::LeaseExtended {
                lease_expires_at, ..
            } => {
                row.update(connection, "lease_expires_at = $5", (lease_expires_at,))
                    .await?;
            }
            JobEvent::ProgressReported { progress, .. } => {
                row.update(
                    connection,
                    "status = 'running', progress_done = $5, progress_total = $6",
                    (progress.done as i64, progress.total as i64),
                )
                .await?;
            }
            JobEvent::JobSucceeded {
                lease_id,
                result,
                metrics,
                ..
            } => {
                let characters = metrics.characters as i64;
                row.update(
                    &mut *connection,
                    "status = 'succeeded', worker = NULL, lease_expires_at = NULL,
                     result_document_id = $5, characters = $6, segments = $7, finished_at = $4",
                    (result.document_id, characters, metrics.segments as i64),
                )
                .await?;
                row.end_attempt(&mut *connection, lease_id, "succeeded", None)
                    .await?;
            }
            JobEvent::JobFailed {
                lease_id, failure, ..
            } => {
                // Terminal unless a retry or dead-lettering follows in the same command.
                row.update(
                    &mut *connection,
                    "status = 'failed', worker = NULL, lease_expires_at = NULL,
                     last_error_code = $5, last_error_message = $6, finished_at = $4",
                    (failure.code.as_str(), failure.message.as_str()),
                )
                .await?;
                let error = (
                    failure.code.as_str(),
                    failure.message.as_str(),
                    failure.retryable,
                );
                row.end_attempt(connection, lease_id, "failed", Some(error))
                    .await?;
            }
            JobEvent::LeaseExpired { lease_id, .. } => {
                let error = (
                    "lease_expired",
                    "the worker stopped sending heartbeats",
                    true,
                );
                row.update(
                    &mut *connection,
                    "worker = NULL, lease_expires_at = NULL, last_error_code = $5,
                     last_error_message = $6",
                    (error.0, error.1),
                )
                .await?;
                row.end_attempt(connection, lease_id, "lease_expired", Some(error))
                    .await?;
            }
            JobEvent::RetryScheduled { due_at, .. } => {
                row.update(
                    connection,
                    "status = 'retry_scheduled', retry_due_at = $5, finished_at = NULL",
                    (due_at,),
                )
                .await?;
            }
            JobEvent::JobCancelled { reason, .. } => {
                row.update(
                    &mut *connection,
                    "status = 'cancelled', worker = NULL, lease_expires_at = NULL,
                     retry_due_at = NULL, cancel_reason = $5, finished_at = $4",
                    (reason.as_str(),),
                )
                .await?;
                row.dequeue(&mut *connection).await?;
                sqlx::query(
                    "UPDATE job_attempts SET outcome = 'cancelled', ended_at = $3
                      WHERE tenant_id = $1 AND job_id = $2 AND outcome IS NULL",
                )
                .bind(row.tenant)
                .bind(row.job)
                .bind(row.at)
                .execute(connection)
                .await?;
            }
            JobEvent::JobDeadLettered { .. } => {
                row.update(
                    connection,
                    "status = 'dead_lettered', worker = NULL, lease_expires_at = NULL,
                     finished_at = $4",
                    (),
                )
                .await?;
            }
            JobEvent::JobResubmitted { chain, .. } => {
                row.update(
                    connection,
                    "chain = $5, attempt = 0, finished_at = NULL",
                    (chain as i32,),
                )
                .await?;
            }
        }
        Ok(())
    }
}

/// The job row one event changes.
struct Row<'a> {
    tenant: &'a str,
    job: Uuid,
    version: i64,
    at: DateTime<Utc>,
}

type PgQuery<'a> = sqlx::query::Query<'a, sqlx::Postgres, sqlx::postgres::PgArguments>;

/// Extra parameters of an update, bound from `$5` on: nothing, one value, or a tuple.
trait Binds: Sized {
    fn bind_to<'a>(self, query: PgQuery<'a>) -> PgQuery<'a>
    where
        Self: 'a;
}

/// Bindable as a query parameter, whatever the query's lifetime.
trait Param: for<'x> sqlx::Encode<'x, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send {}
impl<T: for<'x> sqlx::Encode<'x, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send> Param for T {}

impl Binds for () {
    fn bind_to<'a>(self, query: PgQuery<'a>) -> PgQuery<'a>
    where
        Self: 'a,
    {
        query
    }
}

macro_rules! binds {
    ($($name:ident),+) => {
        impl<$($name: Param),+> Binds for ($($name,)+) {
            #[allow(non_snake_case)]
            fn bind_to<'a>(self, query: PgQuery<'a>) -> PgQuery<'a>
            where
                Self: 'a,
            {
                let ($($name,)+) = self;
                query$(.bind($name))+
            }
        }
    };
}

binds!(A);
binds!(A, B);
binds!(A, B, C);

impl Row<'_> {
    /// `UPDATE jobs SET {set}, version, updated_at` for this job: `$1` tenant, `$2` job,
    /// `$3` version, `$4` the event's time, `$5…` the extra binds. A missing row is an
    /// inconsistency (the stream's first event creates it).
    async fn update(
        &self,
        connection: &mut PgConnection,
        set: &str,
        binds: impl Binds,
    ) -> Result<(), ApplyError> {
        let sql = format!(
            "UPDATE jobs SET {set}, version = $3, updated_at = $4
              WHERE tenant_id = $1 AND job_id = $2"
        );
        let query = sqlx::query(&sql)
            .bind(self.tenant)
            .bind(self.job)
            .bind(self.version)
            .bind(self.at);
        let updated = binds.bind_to(query).execute(connection).await?;
        if updated.rows_affected() != 1 {
            return Err(ApplyError::Inconsistent(format!(
                "event for unknown job {}",
                self.job
            )));
        }
        Ok(())
    }

    async fn dequeue(&self, connection: &mut PgConnection) -> Result<(), ApplyError> {
        sqlx::query("DELETE FROM job_queue WHERE tenant_id = $1 AND job_id = $2")
            .bind(self.tenant)
            .bind(self.job)
            .execute(connection)
            .await?;
        Ok(())
    }

    async fn end_attempt(
        &self,
        connection: &mut PgConnection,
        lease_id: Uuid,
        outcome: &str,
        error: Option<(&str, &str, bool)>,
    ) -> Result<(), ApplyError> {
        sqlx::query(
            "UPDATE job_attempts
                SET outcome = $4, ended_at = $5, error_code = $6, error_message = $7,
                    retryable = $8
              WHERE tenant_id = $1 AND job_id = $2 AND lease_id = $3",
        )
        .bind(self.tenant)
        .bind(self.job)
        .bind(lease_id)
        .bind(outcome)
        .bind(self.at)
        .bind(error.map(|e| e.0))
        .bind(error.map(|e| e.1))
        .bind(error.map(|e| e.2))
        .execute(connection)
        .await?;
        Ok(())
    }
}

/// One job as dashboards see it.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct JobView {
    /// The job's id.
    pub job_id: Uuid,
    /// The submitting user.
    pub owner_id: Uuid,
    /// `translation`, `validation`, `post_edit` or `illustration`.
    pub kind: String,
    /// The document's language.
    pub source_language: String,
    /// The language wanted.
    pub target_language: String,
    /// 0 to 9, claimed highest first.
    pub priority: i16,
    /// Settings for the worker.
    pub options: sqlx::types::Json<serde_json::Value>,
    /// The job this one validates or edits.
    pub parent_job_id: Option<Uuid>,
    /// The document worked on.
    pub source_document_id: Uuid,
    /// Lifecycle status.
    pub status: String,
    /// The chain of attempts (grows with each resubmission).
    pub chain: i32,
    /// Attempts made in the current chain.
    pub attempt: i32,
    /// Attempts allowed per chain.
    pub max_attempts: i32,
    /// Times the job went back to the queue after a failure or an expired lease.
    pub retries: i32,
    /// The lease holder while claimed or running.
    pub worker: Option<String>,
    /// When the current lease runs out.
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// When a scheduled retry is queued.
    pub retry_due_at: Option<DateTime<Utc>>,
    /// Units done in the current attempt.
    pub progress_done: Option<i64>,
    /// Units in total.
    pub progress_total: Option<i64>,
    /// The result, once succeeded.
    pub result_document_id: Option<Uuid>,
    /// Characters processed, once succeeded.
    pub characters: Option<i64>,
    /// Segments processed, once succeeded.
    pub segments: Option<i64>,
    /// The last failure's code.
    pub last_error_code: Option<String>,
    /// The last failure's message.
    pub last_error_message: Option<String>,
    /// Why it was cancelled.
    pub cancel_reason: Option<String>,
    /// When it was submitted.
    pub submitted_at: DateTime<Utc>,
    /// When it reached its terminal state.
    pub finished_at: Option<DateTime<Utc>>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// The stream version this row reflects.
    pub version: i64,
}

/// One attempt at a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct AttemptView {
    /// The chain it belongs to.
    pub chain: i32,
    /// 1-based within the chain.
    pub attempt: i32,
    /// The principal that claimed it.
    pub worker: String,
    /// When it was claimed.
    pub claimed_at: DateTime<Utc>,
    /// When it ended.
    pub ended_at: Option<DateTime<Utc>>,
    /// `succeeded`, `failed`, `lease_expired`, `cancelled`; absent while it runs.
    pub outcome: Option<String>,
    /// The failure's code.
    pub error_code: Option<String>,
    /// The failure's message.
    pub error_message: Option<String>,
    /// Whether the worker said a retry may help.
    pub retryable: Option<bool>,
}

/// A job with its attempts and children.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobDetail {
    /// The job.
    pub job: JobView,
    /// Every attempt, oldest first.
    pub attempts: Vec<AttemptView>,
    /// Validation and post-edit jobs submitted on this job's result.
    pub children: Vec<Uuid>,
}

const SELECT_JOB: &str = "SELECT job_id, owner_id, kind, source_language, target_language,
        priority, options, parent_job_id, source_document_id, status, chain, attempt,
        max_attempts, retries, worker, lease_expires_at, retry_due_at, progress_done,
        progress_total, result_document_id, characters, segments, last_error_code,
        last_error_message, cancel_reason, submitted_at, finished_at, updated_at, version
   FROM read_models.jobs";

/// One job of a tenant, with its attempts and children.
///
/// # Errors
/// When the database fails.
pub async fn get(
    pool: &PgPool,
    tenant_id: &str,
    job_id: Uuid,
) -> Result<Option<JobDetail>, sqlx::Error> {
    let job: Option<JobView> = sqlx::query_as(&format!(
        "{SELECT_JOB} WHERE tenant_id = $1 AND job_id = $2"
    ))
    .bind(tenant_id)
    .bind(job_id)
    .fetch_optional(pool)
    .await?;
    let Some(job) = job else {
        return Ok(None);
    };
    let attempts = sqlx::query_as(
        "SELECT chain, attempt, worker, claimed_at, ended_at, outcome, error_code,
                error_message, retryable
           FROM read_models.job_attempts
          WHERE tenant_id = $1 AND job_id = $2
          ORDER BY chain, attempt",
    )
    .bind(tenant_id)
    .bind(job_id)
    .fetch_all(pool)
    .await?;
    let children = sqlx::query_scalar(
        "SELECT job_id FROM read_models.jobs WHERE tenant_id = $1 AND parent_job_id = $2
          ORDER BY submitted_at, job_id",
    )
    .bind(tenant_id)
    .bind(job_id)
    .fetch_all(pool)
    .await?;
    Ok(Some(JobDetail {
        job,
        attempts,
        children,
    }))
}

/// What a job list is narrowed to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobFilter {
    /// Only this status.
    pub status: Option<String>,
    /// Only this kind.
    pub kind: Option<String>,
    /// Only this owner's jobs.
    pub owner: Option<Uuid>,
    /// Only this source language.
    pub source_language: Option<String>,
    /// Only this target language.
    pub target_language: Option<String>,
    /// Submitted at or after.
    pub submitted_from: Option<DateTime<Utc>>,
    /// Submitted before.
    pub submitted_to: Option<DateTime<Utc>>,
}

/// Where a page of jobs starts: after this (submission time, id), newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobCursor {
    /// The last job's submission time.
    pub submitted_at: DateTime<Utc>,
    /// The last job's id.
    pub job_id: Uuid,
}

impl std::fmt::Display for JobCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}_{}",
            self.submitted_at.timestamp_micros(),
            self.job_id
        )
    }
}

impl std::str::FromStr for JobCursor {
    type Err = ();

    fn from_str(raw: &str) -> Result<Self, ()> {
        let (micros, id) = raw.split_once('_').ok_or(())?;
        Ok(Self {
            submitted_at: DateTime::from_timestamp_micros(micros.parse().map_err(|_| ())?)
                .ok_or(())?,
            job_id: id.parse().map_err(|_| ())?,
        })
    }
}

/// A page of a tenant's jobs, newest first, and the cursor of the next page if there is one.
///
/// # Errors
/// When the database fails.
pub async fn list(
    pool: &PgPool,
    tenant_id: &str,
    filter: &JobFilter,
    after: Option<JobCursor>,
    limit: i64,
) -> Result<(Vec<JobView>, Option<JobCursor>), sqlx::Error> {
    let mut jobs: Vec<JobView> = sqlx::query_as(&format!(
        "{SELECT_JOB}
          WHERE tenant_id = $1
            AND ($2::text IS NULL OR status = $2)
            AND ($3::text IS NULL OR kind = $3)
            AND ($4::uuid IS NULL OR owner_id = $4)
            AND ($5::text IS NULL OR source_language = $5)
            AND ($6::text IS NULL OR target_language = $6)
            AND ($7::timestamptz IS NULL OR submitted_at >= $7)
            AND ($8::timestamptz IS NULL OR submitted_at < $8)
            AND (submitted_at, job_id) < (coalesce($9, 'infinity'), coalesce($10, $12))
          ORDER BY submitted_at DESC, job_id DESC
          LIMIT $11"
    ))
    .bind(tenant_id)
    .bind(&filter.status)
    .bind(&filter.kind)
    .bind(filter.owner)
    .bind(&filter.source_language)
    .bind(&filter.target_language)
    .bind(filter.submitted_from)
    .bind(filter.submitted_to)
    .bind(after.map(|cursor| cursor.submitted_at))
    .bind(after.map(|cursor| cursor.job_id))
    .bind(limit + 1)
    // The first page starts before the largest possible key: one range condition, so every
    // page is an index range scan rather than a walk from the newest job.
    .bind(Uuid::max())
    // Planned with the filters at hand (not prepared): a generic plan must keep every
    // `$n IS NULL OR ...` branch, so it could not pick the owner index for one owner's page,
    // and it stays fixed to the statistics of the moment it was built.
    .persistent(false)
    .fetch_all(pool)
    .await?;
    let next = if jobs.len() as i64 > limit {
        jobs.truncate(limit as usize);
        jobs.last().map(|job| JobCursor {
            submitted_at: job.submitted_at,
            job_id: job.job_id,
        })
    } else {
        None
    };
    Ok((jobs, next))
}

/// Which queued jobs a worker takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueFilter {
    /// Job kinds the worker handles.
    pub kinds: Vec<String>,
    /// Source languages it handles; any when empty.
    pub source_languages: Vec<String>,
    /// Target languages it handles; any when empty.
    pub target_languages: Vec<String>,
}

/// What a claim attempt on one queued job came to.
#[derive(Debug)]
pub enum ClaimAttempt<T> {
    /// The job is the caller's now.
    Claimed(T),
    /// Someone else was faster, or the row was stale: try the next one.
    Taken,
}

/// Offers the worker queue's jobs, in claim order (highest priority, then oldest), to
/// `try_claim` until one is claimed.
///
/// Each offered row is locked (`FOR UPDATE SKIP LOCKED`) while `try_claim` runs, so concurrent
/// workers are offered different jobs instead of all racing for the first. The lock only
/// spreads the load: what makes a claim exclusive is the job aggregate, which accepts exactly
/// one claim of a queued job (a stale queue row is refused there, and `try_claim` reports
/// [`ClaimAttempt::Taken`]).
///
/// # Errors
/// When the database or `try_claim` fails.
pub async fn claim_next<T, E, F, Fut>(
    pool: &PgPool,
    tenant_id: &str,
    filter: &QueueFilter,
    mut try_claim: F,
) -> Result<Option<T>, E>
where
    E: From<sqlx::Error>,
    F: FnMut(Uuid) -> Fut,
    Fut: Future<Output = Result<ClaimAttempt<T>, E>>,
{
    const CANDIDATES: i64 = 8;
    let mut tx = pool.begin().await?;
    let candidates: Vec<Uuid> = sqlx::query_scalar(
        "SELECT job_id FROM read_models.job_queue
          WHERE tenant_id = $1 AND kind = ANY($2)
            AND (cardinality($3::text[]) = 0 OR source_language = ANY($3))
            AND (cardinality($4::text[]) = 0 OR target_language = ANY($4))
          ORDER BY priority DESC, queued_at, job_id
          LIMIT $5
          FOR UPDATE SKIP LOCKED",
    )
    .bind(tenant_id)
    .bind(&filter.kinds)
    .bind(&filter.source_languages)
    .bind(&filter.target_languages)
    .bind(CANDIDATES)
    .fetch_all(&mut *tx)
    .await?;
    let mut claimed = None;
    for job_id in candidates {
        if let ClaimAttempt::Claimed(value) = try_claim(job_id).await? {
            claimed = Some(value);
            break;
        }
    }
    tx.commit().await?;
    Ok(claimed)
}

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

/// What one user has used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct UsageView {
    /// The user.
    pub user_id: Uuid,
    /// Jobs submitted.
    pub jobs_submitted: i64,
    /// Jobs that succeeded.
    pub jobs_succeeded: i64,
    /// Characters processed by succeeded jobs of any kind.
    pub characters_processed: i64,
    /// Characters processed by succeeded translation jobs.
    pub characters_translated: i64,
}

/// A user's usage; `None` when the account never submitted a job.
///
/// # Errors
/// When the database fails.
pub async fn usage(
    pool: &PgPool,
    tenant_id: &str,
    user_id: Uuid,
) -> Result<Option<UsageView>, sqlx::Error> {
    let usage = sqlx::query_as(
        "SELECT owner_id AS user_id, count(*) AS jobs_submitted,
                count(*) FILTER (WHERE status = 'succeeded') AS jobs_succeeded,
                coalesce(sum(characters) FILTER (WHERE status = 'succeeded'), 0)::bigint
                    AS characters_processed,
                coalesce(sum(characters) FILTER (WHERE status = 'succeeded' AND kind = $3), 0)::bigint
                    AS characters_translated
           FROM read_models.jobs WHERE tenant_id = $1 AND owner_id = $2
          GROUP BY owner_id",
    )
    .bind(tenant_id)
    .bind(user_id)
    .bind(JobKind::Translation.as_str())
    .fetch_optional(pool)
    .await
    .map(|usage: Option<UsageView>| usage)?;
    Ok(usage)
}

/// The owner of a job, if the job exists in the tenant (for authorizing reads and live updates).
///
/// # Errors
/// When the database fails.
pub async fn owner(
    pool: &PgPool,
    tenant_id: &str,
    job_id: Uuid,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT owner_id FROM read_models.jobs WHERE tenant_id = $1 AND job_id = $2")
        .bind(tenant_id)
        .bind(job_id)
        .fetch_optional(pool)
        .await
}

/// Whether `document_id` is the result of a job that `owner_id` submitted (its owner may
/// download it, although a worker uploaded it).
///
/// # Errors
/// When the database fails.
pub async fn is_result_of_owned_job(
    pool: &PgPool,
    tenant_id: &str,
    owner_id: Uuid,
    document_id: Uuid,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM read_models.jobs
                         WHERE tenant_id = $1 AND owner_id = $2 AND result_document_id = $3)",
    )
    .bind(tenant_id)
    .bind(owner_id)
    .bind(document_id)
    .fetch_one(pool)
    .await
}
