//! The worker queue: which queued job a worker is offered next.

use std::future::Future;

use sqlx::PgPool;
use uuid::Uuid;

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
