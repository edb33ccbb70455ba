//! The verifiable audit log: each tenant's events, in feed order, as the leaves of an RFC 6962
//! Merkle tree, with signed checkpoints and inclusion and consistency proofs, so an auditor can
//! prove offline that the history they were given is complete and unaltered and that a later
//! history extends it.
//!
//! - The tree math and the checkpoint text are `tlog_tiles` (a port of Go's `sumdb/tlog`, which
//!   is RFC 6962 compatible); notes are signed with Ed25519 by `signed_note` (C2SP
//!   `signed-note`). This module is the glue: the leaf encoding, storage, the sealer.
//! - [`sealer`] appends leaves (one active instance, elected like the relay) and publishes
//!   checkpoints; [`proofs`] answers what auditors ask.
//!
//! # The leaf
//!
//! Leaf `i` of tenant `t`'s log is the `i`-th event of `t` in feed order (from 0). Its data is
//! the compact JSON array (object keys sorted, no whitespace)
//!
//! ```text
//! [position, event_id, aggregate_type, aggregate_id, sequence, event_type, event_version,
//!  payload, metadata, recorded_at]
//! ```
//!
//! with `aggregate_id` as stored (`{tenant}:{id}`: the history API shows the tenant in
//! `metadata.tenant_id` and the id in `aggregate_id`), `metadata` as the history API shows it,
//! and `recorded_at` in RFC 3339 with microseconds and `Z`. Its hash is RFC 6962's leaf hash,
//! SHA-256(0x00 || data). An export line (the history API's event) holds every one of these
//! fields, so [`leaf_data`] can be recomputed from it.

pub mod frontier;
pub mod offline;
pub mod proofs;
pub mod sealer;
pub mod verify;

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};

use base64::Engine as _;
use chrono::{DateTime, SecondsFormat, Utc};
use domain::event::EventMetadata;
use serde::Serialize;
use serde_json::Value;
use sqlx::PgConnection;
pub use tlog_tiles::tlog::Hash;
use tlog_tiles::tlog::{self, HashReader};
use uuid::Uuid;

/// Why the audit log could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The database failed.
    #[error("audit log database failure")]
    Database(#[from] sqlx::Error),
    /// The feed could not be read.
    #[error("reading the feed failed")]
    Feed(#[from] crate::feed::FeedError),
    /// The tree's arithmetic refused (a stored hash is missing or the input is out of range).
    #[error("audit log tree: {0}")]
    Tree(#[from] tlog::Error),
    /// Something that should be impossible: a stored hash of the wrong length, a signing failure.
    #[error("audit log: {0}")]
    Inconsistent(String),
}

/// The fields of one event that a leaf commits to.
#[derive(Debug, Clone, PartialEq)]
pub struct LeafEvent<'a> {
    /// The event's id.
    pub event_id: Uuid,
    /// e.g. `User`.
    pub aggregate_type: &'a str,
    /// The aggregate's id as stored, `{tenant}:{id}`.
    pub aggregate_id: &'a str,
    /// Position in its stream.
    pub sequence: i64,
    /// e.g. `UserRegistered`.
    pub event_type: &'a str,
    /// Its schema version.
    pub event_version: &'a str,
    /// As stored.
    pub payload: &'a Value,
    /// As the history API shows it.
    pub metadata: LeafMetadata<'a>,
    /// When the database recorded it.
    pub recorded_at: DateTime<Utc>,
}

impl<'a> LeafEvent<'a> {
    /// The fields of a stored event.
    pub fn of(event: &'a domain::event::RecordedEvent) -> Self {
        Self {
            event_id: event.event_id,
            aggregate_type: &event.aggregate_type,
            aggregate_id: &event.aggregate_id,
            sequence: event.sequence,
            event_type: &event.event_type,
            event_version: &event.event_version,
            payload: &event.payload,
            metadata: LeafMetadata::Stored(&event.metadata),
            recorded_at: event.recorded_at,
        }
    }
}

/// An event's metadata in a leaf: as the history API shows it, a JSON object with its keys in
/// order (serde_json's map orders them).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LeafMetadata<'a> {
    /// As an export shows it.
    Shown(&'a Value),
    /// As stored, written key by key in that same order without building the object first.
    Stored(&'a EventMetadata),
}

impl Serialize for LeafMetadata<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Shown(value) => value.serialize(serializer),
            Self::Stored(metadata) => OrderedMetadata::of(metadata).serialize(serializer),
        }
    }
}

/// [`EventMetadata`]'s fields in the order of their names, serialized as the struct is (a test
/// pins that both give the same bytes).
#[derive(Serialize)]
struct OrderedMetadata<'a> {
    actor: &'a str,
    causation_id: &'a str,
    command: &'a str,
    correlation_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    idempotency_key: Option<&'a str>,
    recorded_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_hash: Option<&'a str>,
    request_id: &'a str,
    tenant_id: &'a str,
}

impl<'a> OrderedMetadata<'a> {
    fn of(metadata: &'a EventMetadata) -> Self {
        // Every field named: a field added to the metadata does not compile until it is here.
        let EventMetadata {
            request_id,
            correlation_id,
            causation_id,
            actor,
            tenant_id,
            command,
            recorded_at,
            idempotency_key,
            request_hash,
        } = metadata;
        Self {
            actor,
            causation_id,
            command,
            correlation_id,
            idempotency_key: idempotency_key.as_deref(),
            recorded_at: *recorded_at,
            request_hash: request_hash.as_deref(),
            request_id,
            tenant_id,
        }
    }
}

/// The data of the leaf at `position` (see the module documentation).
pub fn leaf_data(position: u64, event: &LeafEvent<'_>) -> Vec<u8> {
    // A tuple is written as a JSON array, as `json!([..])` would be, without copying the
    // payload. serde_json's maps are ordered by key (the `preserve_order` feature is off; a test
    // pins the bytes), and `to_vec` writes no whitespace.
    let leaf = (
        position,
        event.event_id,
        event.aggregate_type,
        event.aggregate_id,
        event.sequence,
        event.event_type,
        event.event_version,
        event.payload,
        event.metadata,
        event
            .recorded_at
            .to_rfc3339_opts(SecondsFormat::Micros, true),
    );
    let mut data = Vec::with_capacity(512);
    serde_json::to_writer(&mut data, &leaf).map_or_else(|_| Vec::new(), |()| data)
}

/// RFC 6962's leaf hash of `data`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    tlog::record_hash(data)
}

/// A hash in the form the API and checkpoints use: standard base64.
pub fn encode_hash(hash: &Hash) -> String {
    base64::engine::general_purpose::STANDARD.encode(hash.0)
}

/// Reads a hash in that form.
///
/// # Errors
/// When it is not 32 bytes of standard base64.
pub fn decode_hash(text: &str) -> Result<Hash, AuditError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| AuditError::Inconsistent(format!("not base64: {e}")))?;
    to_hash(&bytes)
}

fn to_hash(bytes: &[u8]) -> Result<Hash, AuditError> {
    <[u8; 32]>::try_from(bytes)
        .map(Hash)
        .map_err(|_| AuditError::Inconsistent(format!("a hash of {} bytes", bytes.len())))
}

/// Stored hashes of one tenant's tree, read from Postgres as the tree's arithmetic asks for
/// them. `tlog_tiles` reads synchronously; [`StoredHashes::compute`] runs a computation, loads
/// whatever indexes it missed, and runs it again until nothing is missing.
#[derive(Debug, Default)]
pub struct StoredHashes {
    tenant: String,
    known: HashMap<u64, Hash>,
    missing: RefCell<BTreeSet<u64>>,
}

impl HashReader for StoredHashes {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog::Error> {
        let mut missing = self.missing.borrow_mut();
        let found: Vec<Hash> = indexes
            .iter()
            .filter_map(|index| {
                let hash = self.known.get(index).copied();
                if hash.is_none() {
                    missing.insert(*index);
                }
                hash
            })
            .collect();
        if missing.is_empty() {
            Ok(found)
        } else {
            Err(tlog::Error::IndexesNotInTree)
        }
    }
}

impl StoredHashes {
    /// The hashes of `tenant`'s tree (none loaded yet).
    pub fn of(tenant: &str) -> Self {
        Self {
            tenant: tenant.to_owned(),
            ..Self::default()
        }
    }

    /// Remembers hashes written (or about to be) at consecutive indexes from `first`.
    pub fn remember(&mut self, first: u64, hashes: &[Hash]) {
        for (offset, hash) in hashes.iter().enumerate() {
            self.known.insert(first + offset as u64, *hash);
        }
    }

    /// Runs `compute` against the stored hashes, loading the ones it needs from `connection`.
    ///
    /// # Errors
    /// [`AuditError`] when a needed hash is not stored, or the database fails.
    pub async fn compute<T>(
        &mut self,
        connection: &mut PgConnection,
        compute: impl Fn(&Self) -> Result<T, tlog::Error>,
    ) -> Result<T, AuditError> {
        // Each round loads at least one missing index; a proof needs O(log n) of them.
        for _ in 0..128 {
            self.missing.borrow_mut().clear();
            match compute(self) {
                Ok(value) => return Ok(value),
                Err(tlog::Error::IndexesNotInTree) if !self.missing.borrow().is_empty() => {
                    let wanted: Vec<i64> = self
                        .missing
                        .borrow()
                        .iter()
                        .map(|index| *index as i64)
                        .collect();
                    let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(
                        "SELECT index, hash FROM audit.hashes
                          WHERE tenant_id = $1 AND index = ANY($2)",
                    )
                    .bind(&self.tenant)
                    .bind(&wanted)
                    .fetch_all(&mut *connection)
                    .await?;
                    if rows.len() < wanted.len() {
                        return Err(tlog::Error::IndexesNotInTree.into());
                    }
                    for (index, hash) in rows {
                        self.known.insert(index as u64, to_hash(&hash)?);
                    }
                }
                Err(error) => return Err(error.into()),
            }
        }
        Err(AuditError::Inconsistent(
            "the tree asked for stored hashes without end".to_owned(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_leaf_encoding_is_pinned() {
        let payload =
            json!({ "UserRegistered": { "email": "a@b.c", "at": "2025-01-01T00:00:00Z" } });
        let metadata = json!({ "tenant_id": "acme", "actor": "k1" });
        let event = LeafEvent {
            event_id: Uuid::from_u128(1),
            aggregate_type: "User",
            aggregate_id: "acme:00000000-0000-0000-0000-000000000002",
            sequence: 1,
            event_type: "UserRegistered",
            event_version: "1",
            payload: &payload,
            metadata: LeafMetadata::Shown(&metadata),
            recorded_at: DateTime::parse_from_rfc3339("2025-01-02T03:04:05.123456Z")
                .unwrap()
                .with_timezone(&Utc),
        };
        let data = String::from_utf8(leaf_data(7, &event)).unwrap();
        assert_eq!(
            data,
            "[7,\"00000000-0000-0000-0000-000000000001\",\"User\",\
             \"acme:00000000-0000-0000-0000-000000000002\",1,\"UserRegistered\",\"1\",\
             {\"UserRegistered\":{\"at\":\"2025-01-01T00:00:00Z\",\"email\":\"a@b.c\"}},\
             {\"actor\":\"k1\",\"tenant_id\":\"acme\"},\"2025-01-02T03:04:05.123456Z\"]"
        );
    }

    /// Stored metadata is written into a leaf exactly as the history API shows it: the struct
    /// made a JSON object (keys in order), with and without the optional fields.
    #[test]
    fn stored_metadata_is_written_as_it_is_shown() {
        let mut metadata = EventMetadata {
            request_id: "req-1".into(),
            correlation_id: "corr \"1\"".into(),
            causation_id: "cause-1".into(),
            actor: "user:é".into(),
            tenant_id: "acme".into(),
            command: "RegisterUser".into(),
            recorded_at: DateTime::parse_from_rfc3339("2025-01-02T03:04:05.123456789Z")
                .unwrap()
                .with_timezone(&Utc),
            idempotency_key: Some("key-1".into()),
            request_hash: Some("hash-1".into()),
        };
        for _ in 0..2 {
            let shown = serde_json::to_value(&metadata).unwrap();
            assert_eq!(
                serde_json::to_string(&LeafMetadata::Stored(&metadata)).unwrap(),
                serde_json::to_string(&LeafMetadata::Shown(&shown)).unwrap()
            );
            metadata.idempotency_key = None;
            metadata.request_hash = None;
        }
    }

    /// RFC 6962's leaf and node hashes, as its reference implementation and the Certificate
    /// Transparency test vectors give them (the empty leaf; the tree over the leaves "" and
    /// 0x00).
    #[test]
    fn hashes_follow_rfc_6962() {
        assert_eq!(
            encode_hash(&leaf_hash(b"")),
            "bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0="
        );
        let root = tlog::node_hash(leaf_hash(b""), leaf_hash(&[0]));
        assert_eq!(
            root.0
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>(),
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"
        );
    }
}
