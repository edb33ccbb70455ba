//! `audit verify`: the log checked against the event store. Every leaf is recomputed from the
//! stored events, the tree is rebuilt from those leaves alone (never from the stored hashes), and
//! every stored checkpoint's root and signature are checked against it; when the events agree
//! with the leaves, the stored tree (which proofs are served from) must have the same root. The
//! first position that disagrees is named, with how.

use std::fmt;

use futures::StreamExt;

use domain::event::RecordedEvent;
use signed_note::{Note, StandardVerifier, VerifierList};
use sqlx::{PgConnection, PgPool};
use tlog_tiles::checkpoint::Checkpoint;
use tlog_tiles::tlog::{self, Hash};
use uuid::Uuid;

use super::frontier::Frontier;
use super::{leaf_data, leaf_hash, to_hash, AuditError, LeafEvent, StoredHashes};
use crate::feed::history::{self, HistoryFilter};
use crate::feed::FeedCursor;

/// Events read per round trip.
const CHUNK: i64 = 10_000;

/// Chunks read and hashed side by side, ahead of the one the tree takes next.
const READ_AHEAD: usize = 3;

/// How the log and the store disagree, at the first position where they do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// The event sealed there is in the store, but not as it was sealed.
    Modified { position: u64, event_id: Uuid },
    /// The event sealed there is no longer in the store.
    Missing { position: u64, event_id: Uuid },
    /// The store has an event there that was never sealed at that position.
    Inserted { position: u64, event_id: Uuid },
    /// The events are there, in another order.
    Reordered { position: u64, event_id: Uuid },
    /// The store ends before the sealed log does (or goes on with events never sealed).
    Truncated { position: u64, sealed: u64 },
    /// The log ends before an event the sealer has already passed: the log was cut back.
    Unsealed { position: u64, event_id: Uuid },
    /// The log has no leaf at this position, though it has later ones.
    LeafGap { position: u64 },
    /// The events agree with the leaves, but the stored tree (which proofs are served from)
    /// has another root at this size.
    StoredTree { size: u64 },
    /// A checkpoint does not sign the tree the store's events make.
    CheckpointRoot { size: u64 },
    /// A checkpoint's signature does not verify with the configured key.
    CheckpointSignature { size: u64 },
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Modified { position, event_id } => write!(
                f,
                "modified at position {position}: event {event_id} differs from what was sealed"
            ),
            Self::Missing { position, event_id } => write!(
                f,
                "missing at position {position}: sealed event {event_id} is not in the store"
            ),
            Self::Inserted { position, event_id } => write!(
                f,
                "inserted at position {position}: event {event_id} was never sealed there"
            ),
            Self::Reordered { position, event_id } => write!(
                f,
                "reordered at position {position}: event {event_id} was sealed elsewhere"
            ),
            Self::Truncated { position, sealed } => write!(
                f,
                "truncated at position {position}: {sealed} events were sealed, the store ends here"
            ),
            Self::Unsealed { position, event_id } => write!(
                f,
                "unsealed at position {position}: the sealer passed event {event_id} but the log \
                 ends before it (the log was cut back)"
            ),
            Self::LeafGap { position } => write!(
                f,
                "leaf gap at position {position}: the log has no leaf there but has later ones"
            ),
            Self::StoredTree { size } => write!(
                f,
                "stored tree at size {size}: its root is not the root of the stored events, so \
                 proofs served from it would not verify"
            ),
            Self::CheckpointRoot { size } => write!(
                f,
                "checkpoint at size {size}: its root is not the root of the stored events"
            ),
            Self::CheckpointSignature { size } => write!(
                f,
                "checkpoint at size {size}: its signature does not verify with the configured key"
            ),
        }
    }
}

/// What verifying one tenant's log found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// The tenant.
    pub tenant: String,
    /// Leaves sealed.
    pub sealed: u64,
    /// Events in the store (sealed or not yet).
    pub stored: u64,
    /// Checkpoints checked.
    pub checkpoints: u64,
    /// The first disagreement of the leaves, and every checkpoint that fails.
    pub findings: Vec<Finding>,
}

/// Verifies `tenant`'s log against the store; checkpoints are checked with `verifier_key` (a
/// signed-note verifier key) when given. The history verified is the one settled when it starts.
/// Memory stays small: a few chunks of events at a time, a cut per [`CHUNK`] events, a size and
/// a root per checkpoint, and the tree rebuilt as a [`Frontier`] (O(log n)). The stored tree is
/// checked by its root at the sealed size (its largest complete subtrees), not hash by hash.
///
/// # Errors
/// When the database fails or a stored row does not decode.
pub async fn verify(
    pool: &PgPool,
    tenant: &str,
    verifier_key: Option<&str>,
) -> Result<Verification, AuditError> {
    // Checkpoints first: one published while the store is read covers no more than was read.
    let checkpoints = signed_roots(pool, tenant, verifier_key).await?;
    // Where the sealer has been, then the log as it stands (in this order: a batch sealed in
    // between adds leaves, never a passed event without its leaf). Leaves sealed while the
    // store is read are not looked at.
    let passed = sealer_cursor(pool).await?;
    let sealed: i64 = sqlx::query_scalar(
        "SELECT coalesce(max(position) + 1, 0) FROM audit.leaves WHERE tenant_id = $1",
    )
    .bind(tenant)
    .fetch_one(pool)
    .await?;
    let sealed = sealed as u64;

    let mut tree = Frontier::default();
    let mut rebuilt_at_sealed = None;
    let mut next_checkpoint = checkpoints.iter().peekable();
    let mut findings: Vec<Finding> = checkpoints
        .iter()
        .filter(|signed| !signed.signature_ok)
        .map(|signed| Finding::CheckpointSignature { size: signed.size })
        .collect();
    let mut leaf_finding = None;
    // The first position where the store's event is not the sealed one: (position, the store's
    // event, the sealed event), classified once the whole store has been read.
    let mut differs: Option<(u64, Uuid, Uuid)> = None;
    let mut position = 0u64;
    // The store as it is settled now, in chunks read and hashed side by side; the tree takes
    // them in order.
    let mut chunks = futures::stream::iter(chunk_ranges(pool, tenant).await?)
        .map(|range| tokio::spawn(chunk(pool.clone(), tenant.to_owned(), range, sealed)))
        .buffered(READ_AHEAD);
    while let Some(read) = chunks.next().await {
        let (range, events, leaves) =
            read.map_err(|e| AuditError::Inconsistent(format!("reading the store: {e}")))??;
        // A chunk holds exactly the events the cut counted, unless the store was changed while
        // it was read (its triggers bypassed): then every later position would be off.
        if range.position != position || events.last().map(|e| e.cursor) != Some(range.until) {
            return Err(AuditError::Inconsistent(format!(
                "the store changed while it was read, near position {position}: verify again"
            )));
        }
        let mut leaves = leaves.into_iter().peekable();
        for event in &events {
            let hash = event.hash;
            tree.push(hash);
            if tree.len() == sealed {
                rebuilt_at_sealed = Some(tree.root());
            }
            while let Some(signed) = next_checkpoint.next_if(|signed| signed.size <= tree.len()) {
                if tree.root() != signed.root {
                    findings.push(Finding::CheckpointRoot { size: signed.size });
                }
            }
            if leaf_finding.is_none() && differs.is_none() {
                let leaf = if position < sealed {
                    match leaves.next_if(|(at, _, _)| *at as u64 == position) {
                        Some((_, id, hash)) => Some((id, to_hash(&hash)?)),
                        None => {
                            leaf_finding = Some(Finding::LeafGap { position });
                            None
                        }
                    }
                } else {
                    None
                };
                match leaf {
                    Some((sealed_id, sealed_hash))
                        if sealed_id == event.event_id && sealed_hash != hash =>
                    {
                        leaf_finding = Some(Finding::Modified {
                            position,
                            event_id: event.event_id,
                        });
                    }
                    Some((sealed_id, _)) if sealed_id == event.event_id => {}
                    Some((sealed_id, _)) => differs = Some((position, event.event_id, sealed_id)),
                    None if leaf_finding.is_none() && event.cursor <= passed => {
                        leaf_finding = Some(Finding::Unsealed {
                            position,
                            event_id: event.event_id,
                        });
                    }
                    None => {}
                }
            }
            position += 1;
        }
    }
    // Checkpoints larger than the store: their roots cannot be the store's.
    findings.extend(next_checkpoint.map(|signed| Finding::CheckpointRoot { size: signed.size }));

    let classify = Classify {
        pool,
        tenant,
        sealed,
    };
    if let Some((at, stored_id, sealed_id)) = differs {
        leaf_finding = Some(if !classify.is_sealed(stored_id).await? {
            if classify.gone_from(at).await? {
                Finding::Truncated {
                    position: at,
                    sealed,
                }
            } else {
                Finding::Inserted {
                    position: at,
                    event_id: stored_id,
                }
            }
        } else if !classify.is_stored(sealed_id).await? {
            Finding::Missing {
                position: at,
                event_id: sealed_id,
            }
        } else {
            Finding::Reordered {
                position: at,
                event_id: sealed_id,
            }
        });
    } else if leaf_finding.is_none() && position < sealed {
        let leaf = leaves_between(&mut *pool.acquire().await?, tenant, position, position + 1)
            .await?
            .pop();
        leaf_finding = Some(if let Some((_, event_id, _)) = leaf {
            if classify.is_stored(event_id).await? {
                Finding::Reordered { position, event_id }
            } else if classify.gone_from(position).await? {
                Finding::Truncated { position, sealed }
            } else {
                Finding::Missing { position, event_id }
            }
        } else {
            Finding::LeafGap { position }
        });
    }
    // The events agree with the leaves: the stored tree, which proofs are served from, must
    // have the same root.
    if leaf_finding.is_none() && sealed > 0 {
        let mut connection = pool.acquire().await?;
        let stored = StoredHashes::of(tenant)
            .compute(&mut connection, |hashes| tlog::tree_hash(sealed, hashes))
            .await;
        match stored {
            Ok(root) if Some(root) == rebuilt_at_sealed => {}
            Ok(_) | Err(AuditError::Tree(_)) => {
                findings.push(Finding::StoredTree { size: sealed });
            }
            Err(error) => return Err(error),
        }
    }
    findings.splice(0..0, leaf_finding);
    Ok(Verification {
        tenant: tenant.to_owned(),
        sealed,
        stored: position,
        checkpoints: checkpoints.len() as u64,
        findings,
    })
}

/// A stored checkpoint: its size and the root it signs (signature already checked).
struct SignedRoot {
    size: u64,
    root: Hash,
    signature_ok: bool,
}

/// The tenant's checkpoints by size, each signature checked (a failure is a finding, not an
/// error: the checkpoint's root is still compared).
async fn signed_roots(
    pool: &PgPool,
    tenant: &str,
    verifier_key: Option<&str>,
) -> Result<Vec<SignedRoot>, AuditError> {
    let rows: Vec<(i64, String)> = sqlx::query_as(
        "SELECT size, note FROM audit.checkpoints WHERE tenant_id = $1 ORDER BY size",
    )
    .bind(tenant)
    .fetch_all(pool)
    .await?;
    let verifiers = verifier_key
        .map(|key| {
            StandardVerifier::new(key)
                .map(|verifier| VerifierList::new(vec![Box::new(verifier)]))
                .map_err(|e| AuditError::Inconsistent(format!("verifier key: {e}")))
        })
        .transpose()?;
    rows.into_iter()
        .map(|(size, text)| {
            let note = Note::from_bytes(text.as_bytes())
                .map_err(|e| AuditError::Inconsistent(format!("checkpoint {size}: {e}")))?;
            let signed = Checkpoint::from_bytes(note.text())
                .map_err(|e| AuditError::Inconsistent(format!("checkpoint {size}: {e}")))?;
            Ok(SignedRoot {
                size: size as u64,
                root: *signed.hash(),
                signature_ok: verifiers
                    .as_ref()
                    .is_none_or(|verifiers| note.verify(verifiers).is_ok()),
            })
        })
        .collect()
}
/// Where the sealer has been in the feed: every event it passed must be a leaf.
async fn sealer_cursor(pool: &PgPool) -> Result<FeedCursor, AuditError> {
    let passed: Option<(String, i64)> =
        sqlx::query_as("SELECT transaction_id::text, global_position FROM audit.sealer")
            .fetch_optional(pool)
            .await?;
    let Some((transaction_id, global_position)) = passed else {
        return Ok(FeedCursor::default());
    };
    let transaction_id = transaction_id
        .parse()
        .map_err(|e| AuditError::Inconsistent(format!("sealer cursor: {e}")))?;
    Ok(FeedCursor {
        transaction_id,
        global_position,
    })
}

/// A stored event as verification needs it: its leaf hash recomputed.
struct Hashed {
    event_id: Uuid,
    cursor: FeedCursor,
    hash: Hash,
}

/// A chunk's range, its events (hashed), and the leaves sealed at their positions.
type Chunk = (ChunkRange, Vec<Hashed>, Vec<(i64, Uuid, Vec<u8>)>);

/// One chunk of the store: the events after `after` up to `until`, the first at `position`.
#[derive(Debug, Clone, Copy)]
struct ChunkRange {
    after: FeedCursor,
    until: FeedCursor,
    position: u64,
}

/// The tenant's history as it is settled now, cut into chunks of [`CHUNK`] events that can
/// be read independently: every [`CHUNK`]th event's place in the feed, found by one index-only
/// scan (exempt from the statement timeout: it reads the whole history). Nothing can join the
/// settled history (its transactions have all ended), so the chunks stay exact while they are
/// read.
async fn chunk_ranges(pool: &PgPool, tenant: &str) -> Result<Vec<ChunkRange>, AuditError> {
    let Some(end) = history::settled_end(pool, tenant).await? else {
        return Ok(Vec::new());
    };
    let mut tx = pool.begin().await?;
    sqlx::query("SET LOCAL statement_timeout = 0")
        .execute(&mut *tx)
        .await?;
    let cuts: Vec<(String, i64)> = sqlx::query_as(
        "SELECT transaction_text, global_position
           FROM (SELECT transaction_id::text AS transaction_text, global_position,
                        row_number() OVER (ORDER BY transaction_id, global_position) AS n
                   FROM events
                  WHERE tenant_id = $1
                    AND (transaction_id, global_position) <= ($2::text::xid8, $3)) AS feed
          WHERE n % $4 = 0
          ORDER BY n",
    )
    .bind(tenant)
    .bind(end.transaction_id.to_string())
    .bind(end.global_position)
    .bind(CHUNK)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    let mut ranges = Vec::with_capacity(cuts.len() + 1);
    let mut after = FeedCursor::default();
    for (transaction, global_position) in cuts {
        let until = FeedCursor {
            transaction_id: transaction
                .parse()
                .map_err(|e| AuditError::Inconsistent(format!("a transaction id: {e}")))?,
            global_position,
        };
        ranges.push(ChunkRange {
            after,
            until,
            position: ranges.len() as u64 * CHUNK as u64,
        });
        after = until;
    }
    if after != end {
        ranges.push(ChunkRange {
            after,
            until: end,
            position: ranges.len() as u64 * CHUNK as u64,
        });
    }
    Ok(ranges)
}

/// The events of `range` with their leaf hashes recomputed (on a blocking thread), and the
/// leaves sealed at the positions they take, read one after the other on one connection (the
/// chunks in flight never wait on each other for connections).
async fn chunk(
    pool: PgPool,
    tenant: String,
    range: ChunkRange,
    sealed: u64,
) -> Result<Chunk, AuditError> {
    let mut connection = pool.acquire().await?;
    let filter = HistoryFilter::default();
    let events = history::page(
        &mut *connection,
        &tenant,
        &filter,
        range.after,
        Some(range.until),
        CHUNK,
    )
    .await?;
    let leaves = if range.position < sealed {
        let to = sealed.min(range.position + CHUNK as u64);
        leaves_between(&mut connection, &tenant, range.position, to).await?
    } else {
        Vec::new()
    };
    drop(connection);
    let hashed = tokio::task::spawn_blocking(move || hash_all(range.position, &events))
        .await
        .map_err(|e| AuditError::Inconsistent(format!("hashing the store: {e}")))?;
    Ok((range, hashed, leaves))
}

/// The leaf hashes of `events`, the first at `position`.
fn hash_all(position: u64, events: &[RecordedEvent]) -> Vec<Hashed> {
    (position..)
        .zip(events)
        .map(|(position, event)| Hashed {
            event_id: event.event_id,
            cursor: FeedCursor::after(event),
            hash: leaf_hash(&leaf_data(position, &LeafEvent::of(event))),
        })
        .collect()
}

/// The tenant's leaves at positions `from..to`, in order.
async fn leaves_between(
    connection: &mut PgConnection,
    tenant: &str,
    from: u64,
    to: u64,
) -> Result<Vec<(i64, Uuid, Vec<u8>)>, AuditError> {
    Ok(sqlx::query_as(
        "SELECT position, event_id, hash FROM audit.leaves
          WHERE tenant_id = $1 AND position >= $2 AND position < $3
          ORDER BY position",
    )
    .bind(tenant)
    .bind(from as i64)
    .bind(to as i64)
    .fetch_all(connection)
    .await?)
}

/// The questions that tell one disagreement from another, asked of the database once the
/// first disagreement is known (instead of keeping every id in memory).
struct Classify<'a> {
    pool: &'a PgPool,
    tenant: &'a str,
    sealed: u64,
}

impl Classify<'_> {
    /// Whether the event is a leaf of the log as it was when verification began.
    async fn is_sealed(&self, event_id: Uuid) -> Result<bool, AuditError> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM audit.leaves
                             WHERE tenant_id = $1 AND event_id = $2 AND position < $3)",
        )
        .bind(self.tenant)
        .bind(event_id)
        .bind(self.sealed as i64)
        .fetch_one(self.pool)
        .await?)
    }

    /// Whether the event is in the tenant's store.
    async fn is_stored(&self, event_id: Uuid) -> Result<bool, AuditError> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM events WHERE event_id = $1 AND tenant_id = $2)",
        )
        .bind(event_id)
        .bind(self.tenant)
        .fetch_one(self.pool)
        .await?)
    }

    /// Whether no leaf from `position` on is in the store any more (the tail was cut off).
    async fn gone_from(&self, position: u64) -> Result<bool, AuditError> {
        Ok(sqlx::query_scalar(
            "SELECT NOT EXISTS (
                 SELECT 1 FROM audit.leaves l
                   JOIN events e ON e.event_id = l.event_id AND e.tenant_id = l.tenant_id
                  WHERE l.tenant_id = $1 AND l.position >= $2 AND l.position < $3)",
        )
        .bind(self.tenant)
        .bind(position as i64)
        .bind(self.sealed as i64)
        .fetch_one(self.pool)
        .await?)
    }
}

/// Every tenant with events or a sealed log (a tenant whose log was deleted still has events).
///
/// # Errors
/// When the database fails.
pub async fn tenants(pool: &PgPool) -> Result<Vec<String>, AuditError> {
    Ok(sqlx::query_scalar(
        "SELECT DISTINCT tenant_id FROM events UNION SELECT tenant_id FROM audit.trees
          ORDER BY 1",
    )
    .fetch_all(pool)
    .await?)
}
