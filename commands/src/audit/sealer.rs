//! The sealer: appends every event, in feed order, to its tenant's tree, and publishes signed
//! checkpoints.
//!
//! One instance is active at a time (a Postgres advisory lock, like the relay). Each step reads
//! a batch of the feed after its cursor and, in one transaction, writes the batch's leaves, their
//! stored hashes, the trees' sizes and the cursor: a crash anywhere leaves either all of a
//! batch or none of it, so the log has no gap and no leaf twice. It reads the feed like the
//! relay (settled transactions only) and takes no lock a command waits for.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use signed_note::{Note, Signer as _, StandardSigner};
use sqlx::{PgConnection, PgPool};
use tlog_tiles::checkpoint::Checkpoint;
use tlog_tiles::tlog;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{leaf_data, leaf_hash, AuditError, LeafEvent, StoredHashes};
use crate::feed::{self, FeedCursor};
use crate::relay::{sleep_or_cancel, Backoff};

/// How the sealer runs.
#[derive(Debug, Clone)]
pub struct SealerSettings {
    /// Checkpoint origins are `{origin}/{tenant}`; the signing key's name.
    pub origin: String,
    /// How often the feed is looked at when idle.
    pub poll_interval: Duration,
    /// Events sealed per transaction.
    pub batch: i64,
    /// A checkpoint once the tree grew by this many events since the last one ...
    pub checkpoint_every: i64,
    /// ... or once this long passed since the last one, if it grew at all.
    pub checkpoint_interval: Duration,
}

/// The key checkpoints are signed with (a C2SP signed-note Ed25519 key).
pub struct SigningKey {
    signer: StandardSigner,
    verifier_key: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("verifier_key", &self.verifier_key)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Reads a signed-note private key (`PRIVATE+KEY+{name}+{id}+{base64}`).
    ///
    /// # Errors
    /// When it is not one, or not an Ed25519 one.
    pub fn parse(private_key: &str) -> Result<Self, AuditError> {
        let refused = |why: &str| AuditError::Inconsistent(format!("audit signing key: {why}"));
        let signer = StandardSigner::new(private_key).map_err(|e| refused(&e.to_string()))?;
        // PRIVATE+KEY+{name}+{id}+{base64}: the key is everything after the fourth '+' (base64
        // has '+' of its own).
        let seed = private_key
            .splitn(5, '+')
            .nth(4)
            .and_then(|key| {
                use base64::Engine as _;
                base64::engine::general_purpose::STANDARD.decode(key).ok()
            })
            .filter(|key| key.len() == 33)
            .ok_or_else(|| refused("not an Ed25519 key"))?;
        let signing =
            ed25519_dalek::SigningKey::try_from(&seed[1..]).map_err(|e| refused(&e.to_string()))?;
        let verifier_key =
            signed_note::new_ed25519_verifier_key(signer.name(), &signing.verifying_key());
        Ok(Self {
            signer,
            verifier_key,
        })
    }

    /// A new random key named `name`: `(private key, verifier key)`.
    pub fn generate(name: &str) -> (String, String) {
        let signing = ed25519_dalek::SigningKey::from_bytes(&rand::random());
        let public = [&[1u8][..], signing.verifying_key().as_bytes()].concat();
        let private = [&[1u8][..], &signing.to_bytes()].concat();
        use base64::Engine as _;
        let private_key = format!(
            "PRIVATE+KEY+{name}+{:08x}+{}",
            signed_note::key_id(name, &public),
            base64::engine::general_purpose::STANDARD.encode(private)
        );
        let verifier_key = signed_note::new_ed25519_verifier_key(name, &signing.verifying_key());
        (private_key, verifier_key)
    }

    /// The key's name (the signature lines name it).
    pub fn name(&self) -> &str {
        self.signer.name()
    }

    /// The public key as a signed-note verifier key (`{name}+{id}+{base64}`).
    pub fn verifier_key(&self) -> &str {
        &self.verifier_key
    }

    /// Signs the checkpoint of `origin` at `size` with `root`, dated now; the note's text.
    ///
    /// # Errors
    /// When the checkpoint or the signature cannot be made.
    pub fn sign(&self, origin: &str, size: u64, root: tlog::Hash) -> Result<String, AuditError> {
        let failed = |e: &dyn std::fmt::Display| AuditError::Inconsistent(e.to_string());
        let time = format!(
            "time {}\n",
            Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
        );
        let checkpoint = Checkpoint::new(origin, size, root, &time).map_err(|e| failed(&e))?;
        let mut note = Note::new(&checkpoint.to_bytes(), &[]).map_err(|e| failed(&e))?;
        note.add_sigs(&[&self.signer]).map_err(|e| failed(&e))?;
        String::from_utf8(note.to_bytes()).map_err(|e| failed(&e))
    }
}

/// The sealer.
#[derive(Debug)]
pub struct Sealer {
    pool: PgPool,
    settings: SealerSettings,
    key: Option<SigningKey>,
}

impl Sealer {
    /// A sealer over `pool`; without `key` it seals but publishes no checkpoint.
    pub fn new(pool: PgPool, settings: SealerSettings, key: Option<SigningKey>) -> Self {
        Self {
            pool,
            settings,
            key,
        }
    }

    /// Seals the next batch of the feed; returns how many events it sealed.
    ///
    /// # Errors
    /// [`AuditError`]; nothing is written then.
    pub async fn seal_once(&self) -> Result<usize, AuditError> {
        let mut tx = self.pool.begin().await?;
        let cursor: Option<(String, i64)> = sqlx::query_as(
            "SELECT transaction_id::text, global_position FROM audit.sealer FOR UPDATE",
        )
        .fetch_optional(&mut *tx)
        .await?;
        let cursor = match cursor {
            Some((transaction_id, global_position)) => FeedCursor {
                transaction_id: transaction_id
                    .parse()
                    .map_err(|e| AuditError::Inconsistent(format!("sealer cursor: {e}")))?,
                global_position,
            },
            None => FeedCursor::default(),
        };
        let events = feed::read(&mut *tx, cursor, self.settings.batch).await?;
        let Some(last) = events.last() else {
            return Ok(0);
        };
        let next = FeedCursor::after(last);
        let tenants: Vec<String> = events.iter().map(|e| e.tenant_id.clone()).collect();
        let mut sizes: HashMap<String, i64> = sqlx::query_as::<_, (String, i64)>(
            "SELECT tenant_id, size FROM audit.trees WHERE tenant_id = ANY($1)",
        )
        .bind(&tenants)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect();
        let mut trees: HashMap<String, StoredHashes> = HashMap::new();
        let (mut leaf_rows, mut hash_rows) = (Rows::default(), Rows::default());
        for event in &events {
            let tenant = &event.tenant_id;
            let size = sizes.entry(tenant.clone()).or_insert(0);
            let position = *size as u64;
            let data = leaf_data(position, &LeafEvent::of(event));
            let tree = trees
                .entry(tenant.clone())
                .or_insert_with(|| StoredHashes::of(tenant));
            let stored = tree
                .compute(&mut tx, |hashes| {
                    tlog::stored_hashes(position, &data, hashes)
                })
                .await?;
            let first = tlog::stored_hash_index(0, position);
            tree.remember(first, &stored);
            leaf_rows.push(tenant, position, event.event_id, leaf_hash(&data));
            for (offset, hash) in stored.iter().enumerate() {
                hash_rows.push(tenant, first + offset as u64, event.event_id, *hash);
            }
            *size += 1;
        }
        sqlx::query(
            "INSERT INTO audit.leaves (tenant_id, position, event_id, hash)
             SELECT * FROM unnest($1::text[], $2::bigint[], $3::uuid[], $4::bytea[])",
        )
        .bind(&leaf_rows.tenants)
        .bind(&leaf_rows.numbers)
        .bind(&leaf_rows.events)
        .bind(&leaf_rows.hashes)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO audit.hashes (tenant_id, index, hash)
             SELECT * FROM unnest($1::text[], $2::bigint[], $3::bytea[])",
        )
        .bind(&hash_rows.tenants)
        .bind(&hash_rows.numbers)
        .bind(&hash_rows.hashes)
        .execute(&mut *tx)
        .await?;
        let (tenants, sizes): (Vec<String>, Vec<i64>) = sizes.into_iter().unzip();
        sqlx::query(
            "INSERT INTO audit.trees (tenant_id, size)
             SELECT * FROM unnest($1::text[], $2::bigint[])
             ON CONFLICT (tenant_id) DO UPDATE SET size = excluded.size",
        )
        .bind(&tenants)
        .bind(&sizes)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO audit.sealer (id, transaction_id, global_position)
             VALUES (true, $1::text::xid8, $2)
             ON CONFLICT (id) DO UPDATE
                SET transaction_id = excluded.transaction_id,
                    global_position = excluded.global_position",
        )
        .bind(next.transaction_id.to_string())
        .bind(next.global_position)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(events.len())
    }

    /// Signs and stores a checkpoint for every tenant whose tree grew by
    /// `checkpoint_every` events since its last one, or grew at all and whose last one is older
    /// than `checkpoint_interval` (or who has none). Returns how many it published.
    ///
    /// # Errors
    /// [`AuditError`].
    pub async fn publish_due_checkpoints(&self) -> Result<usize, AuditError> {
        let Some(key) = &self.key else {
            return Ok(0);
        };
        let due: Vec<(String, i64)> = sqlx::query_as(
            "SELECT t.tenant_id, t.size FROM audit.trees t
               LEFT JOIN LATERAL (SELECT size, created_at FROM audit.checkpoints c
                                   WHERE c.tenant_id = t.tenant_id
                                   ORDER BY size DESC LIMIT 1) c ON true
              WHERE t.size > coalesce(c.size, 0)
                AND (c.size IS NULL OR t.size - c.size >= $1
                     OR c.created_at <= clock_timestamp() - $2::interval)",
        )
        .bind(self.settings.checkpoint_every)
        .bind(self.settings.checkpoint_interval)
        .fetch_all(&self.pool)
        .await?;
        let mut connection = self.pool.acquire().await?;
        for (tenant, size) in &due {
            let root = StoredHashes::of(tenant)
                .compute(&mut connection, |hashes| {
                    tlog::tree_hash(*size as u64, hashes)
                })
                .await?;
            let origin = format!("{}/{tenant}", self.settings.origin);
            let note = key.sign(&origin, *size as u64, root)?;
            sqlx::query(
                "INSERT INTO audit.checkpoints (tenant_id, size, root, note)
                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            )
            .bind(tenant)
            .bind(size)
            .bind(root.0.as_slice())
            .bind(&note)
            .execute(&mut *connection)
            .await?;
        }
        Ok(due.len())
    }

    /// Runs until `shutdown`: waits to be elected, then seals and publishes checkpoints.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut backoff = Backoff::new(Duration::from_secs(5));
        while !shutdown.is_cancelled() {
            let mut leadership = match self.elect().await {
                Ok(Some(connection)) => connection,
                Ok(None) => {
                    sleep_or_cancel(self.settings.poll_interval * 4, &shutdown).await;
                    continue;
                }
                Err(error) => {
                    warn!(error = %error, "audit sealer election failed");
                    sleep_or_cancel(backoff.next_wait(), &shutdown).await;
                    continue;
                }
            };
            info!("audit sealer elected");
            self.lead(&mut leadership, &shutdown, &mut backoff).await;
        }
    }

    async fn lead(
        &self,
        leadership: &mut PgConnection,
        shutdown: &CancellationToken,
        backoff: &mut Backoff,
    ) {
        let mut since_lock_check = tokio::time::Instant::now();
        while !shutdown.is_cancelled() {
            if since_lock_check.elapsed() > Duration::from_secs(5) {
                // The lock lives as long as this connection; if it died, so did leadership.
                if let Err(error) = sqlx::query("SELECT 1").execute(&mut *leadership).await {
                    warn!(error = %error, "audit sealer lost its leadership connection");
                    return;
                }
                since_lock_check = tokio::time::Instant::now();
            }
            let step = async {
                let sealed = self.seal_once().await?;
                self.publish_due_checkpoints().await?;
                Ok::<_, AuditError>(sealed)
            };
            match step.await {
                Ok(sealed) => {
                    backoff.reset();
                    if (sealed as i64) < self.settings.batch {
                        sleep_or_cancel(self.settings.poll_interval, shutdown).await;
                    }
                }
                Err(error) => {
                    warn!(error = %error, source = ?std::error::Error::source(&error), "audit sealing failed; retrying");
                    sleep_or_cancel(backoff.next_wait(), shutdown).await;
                }
            }
        }
    }

    async fn elect(&self) -> Result<Option<PgConnection>, sqlx::Error> {
        let mut connection = self.pool.acquire().await?.detach();
        let elected: bool =
            sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended('audit-sealer', 0))")
                .fetch_one(&mut connection)
                .await?;
        Ok(elected.then_some(connection))
    }
}

/// Rows for one `unnest` insert.
#[derive(Debug, Default)]
struct Rows {
    tenants: Vec<String>,
    numbers: Vec<i64>,
    events: Vec<uuid::Uuid>,
    hashes: Vec<Vec<u8>>,
}

impl Rows {
    fn push(&mut self, tenant: &str, number: u64, event: uuid::Uuid, hash: tlog::Hash) {
        self.tenants.push(tenant.to_owned());
        self.numbers.push(number as i64);
        self.events.push(event);
        self.hashes.push(hash.0.to_vec());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_read_back_whatever_their_base64_holds() {
        // Base64 has '+' in it about every other key; the key must still parse.
        for _ in 0..64 {
            let (private_key, verifier_key) = SigningKey::generate("log.example");
            let key = SigningKey::parse(&private_key).expect(&private_key);
            assert_eq!(key.verifier_key(), verifier_key);
            assert_eq!(key.name(), "log.example");
        }
        assert!(SigningKey::parse("PRIVATE+KEY+log.example+00000000+AAAA").is_err());
    }
}
