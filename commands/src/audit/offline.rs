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

use super::{leaf_data, LeafEvent, MemoryTree};

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
    let mut tree = MemoryTree::default();
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
            metadata: &event["metadata"],
            recorded_at,
        };
        tree.append(&leaf_data(position, &leaf))
            .map_err(|e| ExportRefused(format!("line {}: {e}", index + 1)))?;
    }
    let mut verified = Vec::new();
    for (number, text) in checkpoints.iter().enumerate() {
        let which = format!("checkpoint {}", number + 1);
        let note = Note::from_bytes(text.as_bytes())
            .map_err(|e| ExportRefused(format!("{which}: not a signed note: {e}")))?;
        note.verify(&verifiers)
            .map_err(|e| ExportRefused(format!("{which}: its signature does not verify: {e}")))?;
        let checkpoint = Checkpoint::from_bytes(note.text())
            .map_err(|e| ExportRefused(format!("{which}: not a checkpoint: {e}")))?;
        let size = checkpoint.size();
        match tree.root(size) {
            None => {
                return Err(ExportRefused(format!(
                    "{which} covers {size} events; the export has only {}",
                    tree.len()
                )))
            }
            Some(root) if root != *checkpoint.hash() => {
                return Err(ExportRefused(format!(
                    "{which} (size {size}) does not match the export: the first {size} events \
                     are not the history it signed"
                )))
            }
            Some(_) => verified.push((checkpoint.origin().to_owned(), size)),
        }
    }
    Ok(ExportVerified {
        events: tree.len(),
        checkpoints: verified,
    })
}
