//! The jobs projection: how each job event changes `jobs`, `job_attempts` and `job_queue`.

use chrono::{DateTime, Utc};
use domain::event::RecordedEvent;
use domain::identity::StreamId;
use domain::jobs::{JobEvent, QueueReason};
use sqlx::PgConnection;
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
                    (count(progress.done()), count(progress.total())),
                )
                .await?;
            }
            JobEvent::JobSucceeded {
                lease_id,
                result,
                metrics,
                ..
            } => {
                let characters = count(metrics.characters());
                row.update(
                    &mut *connection,
                    "status = 'succeeded', worker = NULL, lease_expires_at = NULL,
                     result_document_id = $5, characters = $6, segments = $7, finished_at = $4",
                    (result.document_id, characters, count(metrics.segments())),
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

/// A worker-reported count as stored: new reports are bounded by the domain; anything recorded
/// before the bound saturates rather than wrapping.
fn count(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}
