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
/// No row is locked while `try_claim` runs: a lock would hold a transaction open across the
/// commands (the relay's horizon would wait on it, and each claim would hold a connection while
/// its commands need others). What makes a claim exclusive is the job aggregate, which accepts
/// exactly one claim of a queued job: a worker that loses the race for a candidate (or meets a
/// stale queue row) gets [`ClaimAttempt::Taken`] and tries the next.
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
    let candidates: Vec<(Uuid, i16)> = sqlx::query_as(
        "SELECT job_id, priority::smallint FROM read_models.job_queue
          WHERE tenant_id = $1 AND kind = ANY($2)
            AND (cardinality($3::text[]) = 0 OR source_language = ANY($3))
            AND (cardinality($4::text[]) = 0 OR target_language = ANY($4))
          ORDER BY priority DESC, queued_at, job_id
          LIMIT $5",
    )
    .bind(tenant_id)
    .bind(&filter.kinds)
    .bind(&filter.source_languages)
    .bind(&filter.target_languages)
    .bind(CANDIDATES)
    .fetch_all(pool)
    .await?;
    for job_id in spread(&candidates) {
        if let ClaimAttempt::Claimed(value) = try_claim(job_id).await? {
            return Ok(Some(value));
        }
    }
    Ok(None)
}

/// The candidates in the order to try them: the ones of the highest priority first, starting at
/// a random one of them (so concurrent workers mostly try different jobs instead of all racing
/// for the oldest), then the rest in queue order.
fn spread(candidates: &[(Uuid, i16)]) -> Vec<Uuid> {
    let top = candidates.first().map(|(_, priority)| *priority);
    let equal = candidates
        .iter()
        .take_while(|(_, priority)| Some(*priority) == top)
        .count();
    let start = if equal > 1 {
        (Uuid::new_v4().as_u128() % equal as u128) as usize
    } else {
        0
    };
    let (head, tail) = candidates.split_at(equal);
    head[start..]
        .iter()
        .chain(&head[..start])
        .chain(tail)
        .map(|(job, _)| *job)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_highest_priority_comes_first_whatever_the_start() {
        let job = |n: u128| Uuid::from_u128(n);
        let candidates = [(job(1), 9), (job(2), 9), (job(3), 9), (job(4), 5), (job(5), 1)];
        for _ in 0..50 {
            let order = spread(&candidates);
            assert_eq!(order.len(), 5);
            let mut head = order[..3].to_vec();
            head.sort();
            assert_eq!(head, [job(1), job(2), job(3)]);
            assert_eq!(order[3..], [job(4), job(5)]);
        }
        assert!(spread(&[]).is_empty());
    }
}
