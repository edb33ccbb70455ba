//! `audit verify`: the log checked against the event store. Every leaf is recomputed from the
//! stored events, the tree is rebuilt from those leaves alone (never from the stored hashes), and
//! every stored checkpoint's root and signature are checked against it. The first position that
//! disagrees is named, with how.

use std::collections::HashSet;
use std::fmt;

use signed_note::{Note, StandardVerifier, VerifierList};
use sqlx::PgPool;
use tlog_tiles::checkpoint::Checkpoint;
use uuid::Uuid;

use super::{leaf_data, leaf_hash, to_hash, AuditError, LeafEvent, MemoryTree};
use crate::feed::history::{self, HistoryFilter};
use crate::feed::FeedCursor;

/// Events read per round trip.
const CHUNK: i64 = 10_000;

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
/// signed-note verifier key) when given.
///
/// # Errors
/// When the database fails or a stored row does not decode.
pub async fn verify(
    pool: &PgPool,
    tenant: &str,
    verifier_key: Option<&str>,
) -> Result<Verification, AuditError> {
    // Checkpoints first: one published while the store is read covers no more than was read.
    let checkpoints: Vec<(i64, String)> = sqlx::query_as(
        "SELECT size, note FROM audit.checkpoints WHERE tenant_id = $1 ORDER BY size",
    )
    .bind(tenant)
    .fetch_all(pool)
    .await?;
    let sealed: Vec<(i64, Uuid, Vec<u8>)> = sqlx::query_as(
        "SELECT position, event_id, hash FROM audit.leaves WHERE tenant_id = $1 ORDER BY position",
    )
    .bind(tenant)
    .fetch_all(pool)
    .await?;
    // Where the sealer has been: every event it passed must be a leaf.
    let passed: Option<(String, i64)> =
        sqlx::query_as("SELECT transaction_id::text, global_position FROM audit.sealer")
            .fetch_optional(pool)
            .await?;
    let passed = passed
        .map(|(transaction_id, global_position)| {
            transaction_id
                .parse()
                .map(|transaction_id| FeedCursor {
                    transaction_id,
                    global_position,
                })
                .map_err(|e| AuditError::Inconsistent(format!("sealer cursor: {e}")))
        })
        .transpose()?
        .unwrap_or_default();
    let sealed_ids: HashSet<Uuid> = sealed.iter().map(|(_, id, _)| *id).collect();
    let mut stored_ids = HashSet::new();
    let mut tree = MemoryTree::default();
    let mut findings = Vec::new();
    // The first position where the store's event is not the sealed one: (position, the store's
    // event, the sealed event), classified once the whole store is known.
    let mut differs: Option<(u64, Uuid, Uuid)> = None;
    let (mut position, mut after) = (0u64, FeedCursor::default());
    let filter = HistoryFilter::default();
    loop {
        let events = history::page(pool, tenant, &filter, after, None, CHUNK).await?;
        let Some(last) = events.last() else { break };
        after = FeedCursor::after(last);
        for event in &events {
            stored_ids.insert(event.event_id);
            let metadata = serde_json::to_value(&event.metadata)
                .map_err(|e| AuditError::Inconsistent(e.to_string()))?;
            let data = leaf_data(position, &LeafEvent::of(event, &metadata));
            tree.append(&data)?;
            if findings.is_empty() && differs.is_none() {
                match sealed.get(position as usize) {
                    Some((_, sealed_id, sealed_hash)) if *sealed_id == event.event_id => {
                        let sealed_hash = to_hash(sealed_hash)?;
                        if sealed_hash != leaf_hash(&data) {
                            findings.push(Finding::Modified {
                                position,
                                event_id: event.event_id,
                            });
                        }
                    }
                    Some((_, sealed_id, _)) => {
                        differs = Some((position, event.event_id, *sealed_id));
                    }
                    None if FeedCursor::after(event) <= passed => {
                        findings.push(Finding::Unsealed {
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
    let gone_from = |from: u64| {
        sealed[from as usize..]
            .iter()
            .all(|(_, id, _)| !stored_ids.contains(id))
    };
    if let Some((at, stored_id, sealed_id)) = differs {
        findings.push(if !sealed_ids.contains(&stored_id) {
            if gone_from(at) {
                Finding::Truncated {
                    position: at,
                    sealed: sealed.len() as u64,
                }
            } else {
                Finding::Inserted {
                    position: at,
                    event_id: stored_id,
                }
            }
        } else if !stored_ids.contains(&sealed_id) {
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
    } else if findings.is_empty() && position < sealed.len() as u64 {
        let (_, event_id, _) = sealed[position as usize];
        findings.push(if stored_ids.contains(&event_id) {
            Finding::Reordered { position, event_id }
        } else if gone_from(position) {
            Finding::Truncated {
                position,
                sealed: sealed.len() as u64,
            }
        } else {
            Finding::Missing { position, event_id }
        });
    }

    let verifiers = verifier_key
        .map(|key| {
            StandardVerifier::new(key)
                .map(|verifier| VerifierList::new(vec![Box::new(verifier)]))
                .map_err(|e| AuditError::Inconsistent(format!("verifier key: {e}")))
        })
        .transpose()?;
    for (size, text) in &checkpoints {
        let size = *size as u64;
        let note = Note::from_bytes(text.as_bytes())
            .map_err(|e| AuditError::Inconsistent(format!("checkpoint {size}: {e}")))?;
        if let Some(verifiers) = &verifiers {
            if note.verify(verifiers).is_err() {
                findings.push(Finding::CheckpointSignature { size });
            }
        }
        let signed = Checkpoint::from_bytes(note.text())
            .map_err(|e| AuditError::Inconsistent(format!("checkpoint {size}: {e}")))?;
        let root = tree.root(size);
        if root != Some(*signed.hash()) {
            findings.push(Finding::CheckpointRoot { size });
        }
    }
    Ok(Verification {
        tenant: tenant.to_owned(),
        sealed: sealed.len() as u64,
        stored: position,
        checkpoints: checkpoints.len() as u64,
        findings,
    })
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
