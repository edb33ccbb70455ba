//! Idempotency keys: what a key already produced, read back for retries.
//!
//! Keys are written by the event store itself, in the appending transaction (see the
//! `0005_idempotency_keys` migration); this module only reads them and forgets expired ones.

use std::time::Duration;

use sqlx::PgPool;

use crate::metadata::{CommandContext, IdempotencyClaim};

/// The constraint the event store raises when a key is already taken.
pub const CONSTRAINT: &str = "idempotency_keys_pkey";

/// What an earlier request with the same key produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// Hash of the earlier request.
    pub request_hash: String,
    /// The stream it wrote.
    pub aggregate_id: String,
    /// The stream's version after it.
    pub version: u64,
}

/// Looks up the key of `claim` for the context's principal, ignoring (and deleting) a record
/// older than `ttl`.
///
/// # Errors
/// When the database fails.
pub async fn lookup(
    pool: &PgPool,
    context: &CommandContext,
    claim: &IdempotencyClaim,
    ttl: Duration,
) -> Result<Option<Recorded>, sqlx::Error> {
    // One round trip: the DELETE forgets an expired record, and the SELECT (which sees the
    // table as it was before the DELETE) ignores it too.
    let row: Option<(String, String, i64)> = sqlx::query_as(
        "WITH cutoff AS (SELECT clock_timestamp() - make_interval(secs => $4) AS at),
         expired AS (
             DELETE FROM idempotency_keys USING cutoff
              WHERE tenant_id = $1 AND actor = $2 AND key = $3 AND created_at < cutoff.at
         )
         SELECT request_hash, aggregate_id, version FROM idempotency_keys, cutoff
          WHERE tenant_id = $1 AND actor = $2 AND key = $3 AND created_at >= cutoff.at",
    )
    .bind(context.tenant.as_str())
    .bind(&context.actor)
    .bind(&claim.key)
    .bind(ttl.as_secs_f64())
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(request_hash, aggregate_id, version)| Recorded {
        request_hash,
        aggregate_id,
        version: version.max(0) as u64,
    }))
}
