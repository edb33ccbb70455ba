//! Job detail, job lists with filters and cursors, usage per user, and the ownership checks
//! reads and live updates authorize with.

use chrono::{DateTime, Utc};
use domain::jobs::JobKind;
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

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
