//! Tampering with the history as a database superuser would (switching off the append-only
//! trigger): `audit verify` names the first position that disagrees and how, and a log rewritten
//! and re-signed with another key fails on its signatures.

use std::time::Duration;

use commands::audit::sealer::{Sealer, SigningKey};
use commands::audit::verify::{verify, Finding};
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::{spawn_app_with, wait_until};

/// A tenant with eight events, each of its own aggregate and transaction, sealed and covered by
/// checkpoints; the backend is stopped (no sealer sees what follows). Returns the store, the
/// verifier key and the event ids in log order.
async fn sealed() -> (PgPool, String, Vec<Uuid>, api::config::Settings) {
    let app = spawn_app_with(|settings| settings.audit.checkpoint_every_events = 1).await;
    for n in 0..6 {
        app.registered_user(&format!("tamper{n}@example.org"), "Tamper")
            .await;
    }
    let pool = app.pool.clone();
    let settings = app.settings.clone();
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE tenant_id = 'acme'")
        .fetch_one(&pool)
        .await
        .unwrap();
    wait_until(
        "a checkpoint covers every event",
        Duration::from_secs(30),
        || async {
            sqlx::query_scalar::<_, Option<i64>>(
                "SELECT max(size) FROM audit.checkpoints WHERE tenant_id = 'acme'",
            )
            .fetch_one(&pool)
            .await
            .unwrap()
                == Some(stored)
        },
    )
    .await;
    app.stop().await;
    let key = settings
        .audit
        .key()
        .unwrap()
        .unwrap()
        .verifier_key()
        .to_owned();
    let ids = sqlx::query_scalar(
        "SELECT event_id FROM audit.leaves WHERE tenant_id = 'acme' ORDER BY position",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let (_, clean) = api::operate::audit_verify_report(&pool, Some("acme"), Some(&key))
        .await
        .unwrap();
    assert!(clean, "the untouched log verifies");
    (pool, key, ids, settings)
}

/// Runs `statements` (with `$1`, `$2` bound to the events at positions 3 and 4) with the
/// append-only trigger switched off, as a superuser could.
async fn tamper(pool: &PgPool, ids: &[Uuid], statements: &[&str]) {
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("ALTER TABLE events DISABLE TRIGGER USER")
        .execute(&mut *tx)
        .await
        .unwrap();
    for statement in statements {
        sqlx::query(statement)
            .bind(ids[3])
            .bind(ids[4])
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    sqlx::query("ALTER TABLE events ENABLE TRIGGER USER")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

async fn first_finding(pool: &PgPool, key: &str) -> Finding {
    let verification = verify(pool, "acme", Some(key)).await.unwrap();
    let first = verification.findings.first().cloned().expect("a finding");
    let (_, clean) = api::operate::audit_verify_report(pool, Some("acme"), Some(key))
        .await
        .unwrap();
    assert!(!clean);
    first
}

#[tokio::test]
async fn a_modified_payload_is_named_at_its_position() {
    let (pool, key, ids, _) = sealed().await;
    tamper(
        &pool,
        &ids,
        &["UPDATE events SET payload = '{\"rewritten\": true}' WHERE event_id = $1 OR event_id = $2 AND false"],
    )
    .await;
    assert_eq!(
        first_finding(&pool, &key).await,
        Finding::Modified {
            position: 3,
            event_id: ids[3]
        }
    );
    let findings = verify(&pool, "acme", Some(&key)).await.unwrap().findings;
    assert!(
        findings.contains(&Finding::CheckpointRoot {
            size: ids.len() as u64
        }),
        "{findings:?}"
    );
}

#[tokio::test]
async fn a_deleted_event_is_named_missing() {
    let (pool, key, ids, _) = sealed().await;
    tamper(
        &pool,
        &ids,
        &["DELETE FROM events WHERE event_id = $1 OR event_id = $2 AND false"],
    )
    .await;
    assert_eq!(
        first_finding(&pool, &key).await,
        Finding::Missing {
            position: 3,
            event_id: ids[3]
        }
    );
}

#[tokio::test]
async fn a_forged_event_is_named_inserted() {
    let (pool, key, ids, _) = sealed().await;
    // Placed in the feed just before the event at position 3.
    tamper(
        &pool,
        &ids,
        &[
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                              payload, metadata, transaction_id, global_position)
           OVERRIDING SYSTEM VALUE
           SELECT 'User', 'acme:' || gen_random_uuid(), 1, 'UserRegistered', '1',
                  payload, metadata, transaction_id, -1
             FROM events WHERE event_id = $1 OR event_id = $2 AND false",
        ],
    )
    .await;
    let Finding::Inserted {
        position: 3,
        event_id,
    } = first_finding(&pool, &key).await
    else {
        panic!("not an insertion at 3");
    };
    assert!(!ids.contains(&event_id));
}

#[tokio::test]
async fn two_swapped_events_are_named_reordered() {
    let (pool, key, ids, _) = sealed().await;
    tamper(
        &pool,
        &ids,
        &["UPDATE events e SET transaction_id = o.transaction_id
             FROM events o
            WHERE (e.event_id, o.event_id) IN (($1, $2), ($2, $1))"],
    )
    .await;
    assert_eq!(
        first_finding(&pool, &key).await,
        Finding::Reordered {
            position: 3,
            event_id: ids[3]
        }
    );
}

#[tokio::test]
async fn a_truncated_tail_is_named_truncated() {
    let (pool, key, ids, _) = sealed().await;
    let last = ids.len() - 2;
    tamper(
        &pool,
        &ids,
        &[
            "DELETE FROM events WHERE event_id IN (SELECT event_id FROM audit.leaves
           WHERE tenant_id = 'acme' AND position >= (SELECT count(*) - 2 FROM audit.leaves
                                                    WHERE tenant_id = 'acme')) AND $1 <> $2",
        ],
    )
    .await;
    let truncated = Finding::Truncated {
        position: last as u64,
        sealed: ids.len() as u64,
    };
    assert_eq!(first_finding(&pool, &key).await, truncated);
    // On a live system new events follow the cut; it is still a truncation, not an insertion.
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                             payload, metadata)
         SELECT 'User', 'acme:' || gen_random_uuid(), 1, event_type, event_version, payload,
                metadata
           FROM events WHERE event_id = $1",
    )
    .bind(ids[0])
    .execute(&pool)
    .await
    .unwrap();
    assert_eq!(first_finding(&pool, &key).await, truncated);
}

#[tokio::test]
async fn a_log_cut_back_is_named_unsealed() {
    let (pool, key, ids, _) = sealed().await;
    // The forger shortens the log itself to hide what follows position 3.
    for statement in [
        "DELETE FROM audit.leaves WHERE tenant_id = 'acme' AND position >= 3",
        "DELETE FROM audit.checkpoints WHERE tenant_id = 'acme' AND size > 3",
        "UPDATE audit.trees SET size = 3 WHERE tenant_id = 'acme'",
    ] {
        sqlx::query(statement).execute(&pool).await.unwrap();
    }
    assert_eq!(
        first_finding(&pool, &key).await,
        Finding::Unsealed {
            position: 3,
            event_id: ids[3]
        }
    );
}

#[tokio::test]
async fn a_log_rewritten_and_re_signed_with_another_key_fails_its_signatures() {
    let (pool, key, ids, settings) = sealed().await;
    tamper(&pool, &ids, &["UPDATE events SET payload = '{\"rewritten\": true}' WHERE event_id = $1 OR event_id = $2 AND false"]).await;
    // The forger seals the rewritten history afresh and signs it with a key of their own.
    for table in ["leaves", "hashes", "trees", "checkpoints", "sealer"] {
        sqlx::query(&format!("DELETE FROM audit.{table}"))
            .execute(&pool)
            .await
            .unwrap();
    }
    let (forged_key, _) = SigningKey::generate("cqrs-backend.local");
    let sealer = Sealer::new(
        pool.clone(),
        settings.audit.sealer(),
        Some(SigningKey::parse(&forged_key).unwrap()),
    );
    while sealer.seal_once().await.unwrap() > 0 {}
    assert!(sealer.publish_due_checkpoints().await.unwrap() >= 1);
    let findings = verify(&pool, "acme", Some(&key)).await.unwrap().findings;
    assert!(!findings.is_empty());
    assert!(
        findings
            .iter()
            .all(|f| matches!(f, Finding::CheckpointSignature { .. })),
        "the leaves agree with the rewritten store; only the signatures give it away: {findings:?}"
    );
}

#[tokio::test]
async fn a_damaged_log_is_named_where_the_events_still_agree() {
    let (pool, key, ids, _) = sealed().await;
    // One stored hash of the tree changed: the leaves and events agree, proofs would not.
    sqlx::query(
        "UPDATE audit.hashes SET hash = sha256(hash)
          WHERE tenant_id = 'acme' AND index = (SELECT max(index) FROM audit.hashes
                                                 WHERE tenant_id = 'acme')",
    )
    .execute(&pool)
    .await
    .unwrap();
    assert_eq!(
        first_finding(&pool, &key).await,
        Finding::StoredTree {
            size: ids.len() as u64
        }
    );
    // One leaf row gone from the middle of the log.
    sqlx::query("DELETE FROM audit.leaves WHERE tenant_id = 'acme' AND position = 2")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(
        first_finding(&pool, &key).await,
        Finding::LeafGap { position: 2 }
    );
}

/// Runs `backend audit verify-export` (no configuration, no services); returns whether it
/// succeeded and what it printed.
fn verify_export(dir: &std::path::Path, export: &str, notes: &[&str], key: &str) -> (bool, String) {
    let file = dir.join(format!("export-{}.ndjson", Uuid::new_v4()));
    std::fs::write(&file, export).unwrap();
    let mut command = std::process::Command::new(tests::process::Launch::built_binary());
    command
        .env_clear()
        .args(["audit", "verify-export"])
        .arg(&file);
    for note in notes {
        let path = dir.join(format!("checkpoint-{}.txt", Uuid::new_v4()));
        std::fs::write(&path, note).unwrap();
        command.arg("--checkpoint").arg(path);
    }
    let output = command.args(["--public-key", key]).output().unwrap();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), printed)
}

/// The tenant's whole history as the export route writes it.
async fn export_of(pool: &PgPool) -> String {
    let events = commands::feed::history::page(
        pool,
        "acme",
        &Default::default(),
        Default::default(),
        None,
        10_000,
    )
    .await
    .unwrap();
    events
        .into_iter()
        .map(|event| {
            serde_json::to_string(&api::routes::audit::HistoryEvent::from(event)).unwrap() + "\n"
        })
        .collect()
}

#[tokio::test]
async fn an_export_verifies_offline_against_kept_checkpoints_and_a_rewrite_does_not() {
    let (pool, key, ids, settings) = sealed().await;
    // The earliest checkpoint, as an auditor would have kept it back then.
    let (kept_size, kept): (i64, String) = sqlx::query_as(
        "SELECT size, note FROM audit.checkpoints WHERE tenant_id = 'acme' ORDER BY size LIMIT 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let latest: String = sqlx::query_scalar(
        "SELECT note FROM audit.checkpoints WHERE tenant_id = 'acme' ORDER BY size DESC LIMIT 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let dir = std::env::temp_dir().join(format!("verify-export-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let export = export_of(&pool).await;
    let (ok, printed) = verify_export(&dir, &export, &[&kept, &latest], &key);
    assert!(ok, "{printed}");
    assert!(
        printed.contains(&format!("ok: {} events", ids.len())),
        "{printed}"
    );

    // The history is rewritten at its first event and re-sealed and re-signed with another key.
    tamper(&pool, &ids, &["UPDATE events SET payload = '{\"rewritten\": true}' WHERE event_id = (SELECT event_id FROM audit.leaves WHERE position = 0 AND tenant_id = 'acme') AND $1 <> $2"]).await;
    for table in ["leaves", "hashes", "trees", "checkpoints", "sealer"] {
        sqlx::query(&format!("DELETE FROM audit.{table}"))
            .execute(&pool)
            .await
            .unwrap();
    }
    let (forged_key, forged_verifier) = SigningKey::generate("cqrs-backend.local");
    let sealer = Sealer::new(
        pool.clone(),
        settings.audit.sealer(),
        Some(SigningKey::parse(&forged_key).unwrap()),
    );
    while sealer.seal_once().await.unwrap() > 0 {}
    sealer.publish_due_checkpoints().await.unwrap();
    let forged: String = sqlx::query_scalar(
        "SELECT note FROM audit.checkpoints WHERE tenant_id = 'acme' ORDER BY size DESC LIMIT 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let rewritten = export_of(&pool).await;
    // With the forger's own key the new checkpoint is self-consistent ...
    let (ok, printed) = verify_export(&dir, &rewritten, &[&forged], &forged_verifier);
    assert!(ok, "{printed}");
    // ... but the checkpoint the auditor kept gives the rewrite away, and so does the real key.
    let (ok, printed) = verify_export(&dir, &rewritten, &[&kept], &key);
    assert!(!ok);
    assert!(
        printed.contains(&format!(
            "checkpoint 1 (size {kept_size}) does not match the export"
        )),
        "{printed}"
    );
    let (ok, printed) = verify_export(&dir, &rewritten, &[&forged], &key);
    assert!(!ok);
    assert!(printed.contains("signature does not verify"), "{printed}");
    let _ = std::fs::remove_dir_all(&dir);
}
