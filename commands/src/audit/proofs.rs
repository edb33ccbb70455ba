//! What auditors ask of the log: its checkpoints, and proofs from its stored hashes.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tlog_tiles::tlog::{self, Hash};
use uuid::Uuid;

use super::{to_hash, AuditError, StoredHashes};

/// A signed checkpoint as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredCheckpoint {
    /// The tree size it signs.
    pub size: u64,
    /// The tree's root hash at that size.
    pub root: Hash,
    /// The signed note (C2SP tlog-checkpoint text and signature lines).
    pub note: String,
    /// When it was made.
    pub created_at: DateTime<Utc>,
}

/// The latest checkpoint of `tenant`'s log, if any.
///
/// # Errors
/// When the database fails.
pub async fn latest_checkpoint(
    pool: &PgPool,
    tenant: &str,
) -> Result<Option<StoredCheckpoint>, AuditError> {
    let row: Option<(i64, Vec<u8>, String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT size, root, note, created_at FROM audit.checkpoints
          WHERE tenant_id = $1 ORDER BY size DESC LIMIT 1",
    )
    .bind(tenant)
    .fetch_optional(pool)
    .await?;
    row.map(|(size, root, note, created_at)| {
        Ok(StoredCheckpoint {
            size: size as u64,
            root: to_hash(&root)?,
            note,
            created_at,
        })
    })
    .transpose()
}

/// The sealed size of `tenant`'s log (0 when nothing is sealed).
///
/// # Errors
/// When the database fails.
pub async fn tree_size(pool: &PgPool, tenant: &str) -> Result<u64, AuditError> {
    let size: Option<i64> = sqlx::query_scalar("SELECT size FROM audit.trees WHERE tenant_id = $1")
        .bind(tenant)
        .fetch_optional(pool)
        .await?;
    Ok(size.unwrap_or(0) as u64)
}

/// Where the event `event_id` sits in `tenant`'s log, and its leaf hash; `None` until sealed
/// (or when it is another tenant's).
///
/// # Errors
/// When the database fails.
pub async fn leaf_of(
    pool: &PgPool,
    tenant: &str,
    event_id: Uuid,
) -> Result<Option<(u64, Hash)>, AuditError> {
    let row: Option<(i64, Vec<u8>)> = sqlx::query_as(
        "SELECT position, hash FROM audit.leaves WHERE tenant_id = $1 AND event_id = $2",
    )
    .bind(tenant)
    .bind(event_id)
    .fetch_optional(pool)
    .await?;
    row.map(|(position, hash)| Ok((position as u64, to_hash(&hash)?)))
        .transpose()
}

/// The proof that leaf `position` is in `tenant`'s tree of `size` leaves (RFC 6962 audit path).
///
/// # Errors
/// [`AuditError::Tree`] when `position >= size` or the tree is smaller than `size`.
pub async fn inclusion(
    pool: &PgPool,
    tenant: &str,
    position: u64,
    size: u64,
) -> Result<Vec<Hash>, AuditError> {
    let mut connection = pool.acquire().await?;
    StoredHashes::of(tenant)
        .compute(&mut connection, |hashes| {
            tlog::prove_record(size, position, hashes)
        })
        .await
}

/// The proof that `tenant`'s tree of `to` leaves extends its tree of `from` leaves (RFC 6962
/// consistency proof).
///
/// # Errors
/// [`AuditError::Tree`] unless `1 <= from <= to` and the tree has `to` leaves.
pub async fn consistency(
    pool: &PgPool,
    tenant: &str,
    from: u64,
    to: u64,
) -> Result<Vec<Hash>, AuditError> {
    let mut connection = pool.acquire().await?;
    StoredHashes::of(tenant)
        .compute(&mut connection, |hashes| tlog::prove_tree(to, from, hashes))
        .await
}
