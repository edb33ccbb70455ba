//! `audit verify-export`: an export checked with nothing but itself, the checkpoints an auditor
//! kept and the log's public key (no database, no server). The export must start at the
//! tenant's first event (an export without `after`): line `i` is leaf `i`. Each checkpoint's
//! signature is checked, then its root against the tree the export's events make. A checkpoint
//! kept from before is consistent with the export exactly when its root is the root of the
//! export's first leaves; a history rewritten since fails there, whatever key re-signed it.

use std::io::BufRead;

use chrono::{DateTime, Utc};
use serde_json::Value;
use signed_note::{Note, StandardVerifier, VerifierList};
use tlog_tiles::checkpoint::Checkpoint;
use uuid::Uuid;

use super::frontier::Frontier;
use super::{leaf_data, leaf_hash, LeafEvent, LeafMetadata};

/// What the export and the checkpoints came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportVerified {
    /// Events in the export.
    pub events: u64,
    /// Each checkpoint: its origin and size, all verified.
    pub checkpoints: Vec<(String, u64)>,
}

/// Why an export does not verify; the message says where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ExportRefused(pub String);

fn field<'a>(line: u64, event: &'a Value, name: &str) -> Result<&'a str, ExportRefused> {
    event[name]
        .as_str()
        .ok_or_else(|| ExportRefused(format!("line {}: no `{name}`", line + 1)))
}

/// Verifies `export` (NDJSON, from the tenant's first event) against `checkpoints` (signed
/// notes) and `verifier_key` (a signed-note verifier key).
///
/// # Errors
/// [`ExportRefused`] naming the first line or checkpoint that does not verify.
pub fn verify_export(
    export: impl BufRead,
    checkpoints: &[String],
    verifier_key: &str,
) -> Result<ExportVerified, ExportRefused> {
    let verifier = StandardVerifier::new(verifier_key)
        .map_err(|e| ExportRefused(format!("the public key: {e}")))?;
    let verifiers = VerifierList::new(vec![Box::new(verifier)]);
    // Every checkpoint is read and its signature checked first; its root is compared when the
    // export reaches its size, so the export streams through in O(log n) memory.
    let mut signed = Vec::new();
    for (number, text) in checkpoints.iter().enumerate() {
        let which = format!("checkpoint {}", number + 1);
        let note = Note::from_bytes(text.as_bytes())
            .map_err(|e| ExportRefused(format!("{which}: not a signed note: {e}")))?;
        note.verify(&verifiers)
            .map_err(|e| ExportRefused(format!("{which}: its signature does not verify: {e}")))?;
        let checkpoint = Checkpoint::from_bytes(note.text())
            .map_err(|e| ExportRefused(format!("{which}: not a checkpoint: {e}")))?;
        signed.push((which, checkpoint));
    }
    let mut pending: Vec<&(String, Checkpoint)> = signed.iter().collect();
    pending.sort_by_key(|(_, checkpoint)| std::cmp::Reverse(checkpoint.size()));
    let mut tree = Frontier::default();
    // Compares every checkpoint of the tree's current size (largest sizes first in `pending`).
    let settle = |tree: &Frontier, pending: &mut Vec<&(String, Checkpoint)>| {
        while let Some((which, checkpoint)) = pending
            .last()
            .copied()
            .filter(|(_, checkpoint)| checkpoint.size() == tree.len())
        {
            if tree.root() != *checkpoint.hash() {
                return Err(ExportRefused(format!(
                    "{which} (size {}) does not match the export: the first {} events are not \
                     the history it signed",
                    checkpoint.size(),
                    checkpoint.size()
                )));
            }
            pending.pop();
        }
        Ok(())
    };
    settle(&tree, &mut pending)?;
    for (index, line) in export.lines().enumerate() {
        let position = index as u64;
        let line = line.map_err(|e| ExportRefused(format!("line {}: {e}", index + 1)))?;
        let event: Value = serde_json::from_str(&line)
            .map_err(|e| ExportRefused(format!("line {}: not JSON: {e}", index + 1)))?;
        let event_id: Uuid = field(position, &event, "event_id")?
            .parse()
            .map_err(|e| ExportRefused(format!("line {}: event_id: {e}", index + 1)))?;
        let recorded_at: DateTime<Utc> = field(position, &event, "recorded_at")?
            .parse()
            .map_err(|e| ExportRefused(format!("line {}: recorded_at: {e}", index + 1)))?;
        // Stored as `{tenant}:{id}`; the export shows them apart.
        let stream = format!(
            "{}:{}",
            event["metadata"]["tenant_id"].as_str().unwrap_or_default(),
            field(position, &event, "aggregate_id")?
        );
        let leaf = LeafEvent {
            event_id,
            aggregate_type: field(position, &event, "aggregate_type")?,
            aggregate_id: &stream,
            sequence: event["sequence"]
                .as_i64()
                .ok_or_else(|| ExportRefused(format!("line {}: no `sequence`", index + 1)))?,
            event_type: field(position, &event, "event_type")?,
            event_version: field(position, &event, "event_version")?,
            payload: &event["payload"],
            metadata: LeafMetadata::Shown(&event["metadata"]),
            recorded_at,
        };
        tree.push(leaf_hash(&leaf_data(position, &leaf)));
        settle(&tree, &mut pending)?;
    }
    if let Some((which, checkpoint)) = pending.pop() {
        return Err(ExportRefused(format!(
            "{which} covers {} events; the export has only {}",
            checkpoint.size(),
            tree.len()
        )));
    }
    Ok(ExportVerified {
        events: tree.len(),
        checkpoints: signed
            .into_iter()
            .map(|(_, checkpoint)| (checkpoint.origin().to_owned(), checkpoint.size()))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::audit::sealer::SigningKey;

    /// Three export lines of tenant `acme`, and the roots of their trees of size 0..=3.
    fn export() -> (String, Vec<tlog_tiles::tlog::Hash>) {
        let mut lines = String::new();
        let mut tree = Frontier::default();
        let mut roots = vec![tree.root()];
        for n in 0..3u64 {
            let line = json!({
                "event_id": Uuid::from_u128(u128::from(n) + 1),
                "aggregate_type": "User",
                "aggregate_id": "00000000-0000-0000-0000-000000000009",
                "sequence": n + 1,
                "event_type": "UserRenamed",
                "event_version": "1",
                "payload": { "UserRenamed": { "name": format!("n{n}") } },
                "metadata": { "tenant_id": "acme" },
                "recorded_at": "2025-01-02T03:04:05.123456Z",
            });
            let event: Value = line.clone();
            let stream = "acme:00000000-0000-0000-0000-000000000009";
            let leaf = LeafEvent {
                event_id: Uuid::from_u128(u128::from(n) + 1),
                aggregate_type: "User",
                aggregate_id: stream,
                sequence: n as i64 + 1,
                event_type: "UserRenamed",
                event_version: "1",
                payload: &event["payload"],
                metadata: LeafMetadata::Shown(&event["metadata"]),
                recorded_at: "2025-01-02T03:04:05.123456Z".parse().unwrap(),
            };
            tree.push(leaf_hash(&leaf_data(n, &leaf)));
            roots.push(tree.root());
            lines.push_str(&line.to_string());
            lines.push('\n');
        }
        (lines, roots)
    }

    #[test]
    fn checkpoints_of_any_size_in_any_order_are_each_compared_at_their_size() {
        let (lines, roots) = export();
        let (private, public) = SigningKey::generate("log.test");
        let key = SigningKey::parse(&private).unwrap();
        let notes: Vec<String> = [3u64, 0, 1, 3]
            .iter()
            .map(|size| {
                key.sign("log.test/acme", *size, roots[*size as usize])
                    .unwrap()
            })
            .collect();
        let verified = verify_export(lines.as_bytes(), &notes, &public).unwrap();
        assert_eq!(verified.events, 3);
        assert_eq!(verified.checkpoints.len(), 4);

        let wrong = key.sign("log.test/acme", 2, roots[1]).unwrap();
        let refused = verify_export(lines.as_bytes(), &[notes[0].clone(), wrong], &public);
        assert_eq!(
            refused.unwrap_err().0,
            "checkpoint 2 (size 2) does not match the export: the first 2 events are not the \
             history it signed"
        );
        let beyond = key.sign("log.test/acme", 4, roots[3]).unwrap();
        let refused = verify_export(lines.as_bytes(), &[beyond], &public);
        assert_eq!(
            refused.unwrap_err().0,
            "checkpoint 1 covers 4 events; the export has only 3"
        );
    }
}
