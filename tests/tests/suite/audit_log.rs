//! The verifiable log as an auditor checks it: every event sealed once, in feed order; signed
//! checkpoints that verify with the served key; inclusion proofs recomputed from the history's
//! own fields; consistency between two checkpoints; each tenant's tree its own.

use std::time::Duration;

use commands::audit::{decode_hash, leaf_data, leaf_hash, LeafEvent, LeafMetadata};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use signed_note::{Note, StandardVerifier, VerifierList};
use tlog_tiles::checkpoint::Checkpoint;
use tlog_tiles::tlog;

use crate::helpers::{assert_problem, spawn_app_with, wait_until, TestApp};

async fn read(app: &TestApp, key: &str, path: &str) -> Value {
    let response = get(app, key, path).await;
    assert_eq!(response.status(), StatusCode::OK, "GET {path}");
    response.json().await.unwrap()
}

async fn get(app: &TestApp, key: &str, path: &str) -> reqwest::Response {
    app.anonymous(Method::GET, path)
        .header("x-api-key", key)
        .send()
        .await
        .unwrap()
}

/// Waits until the tenant's sealed log holds every one of its events, then for a checkpoint of
/// that size; returns it after checking its signature with the served key.
async fn checkpoint_of_everything(app: &TestApp, key: &str, tenant: &str) -> (u64, tlog::Hash) {
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE tenant_id = $1")
        .bind(tenant)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    wait_until(
        "a checkpoint covers every event",
        Duration::from_secs(30),
        || async {
            let response = get(app, key, "/api/v1/audit/log/checkpoint").await;
            response.status() == StatusCode::OK
                && response.json::<Value>().await.unwrap()["tree_size"] == stored
        },
    )
    .await;
    let checkpoint = read(app, key, "/api/v1/audit/log/checkpoint").await;
    let verifier_key = read(app, key, "/api/v1/audit/log/key").await["verifier_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let verifiers = VerifierList::new(vec![Box::new(
        StandardVerifier::new(&verifier_key).unwrap(),
    )]);
    let note = Note::from_bytes(checkpoint["note"].as_str().unwrap().as_bytes()).unwrap();
    note.verify(&verifiers)
        .expect("the checkpoint is signed with the served key");
    let signed = Checkpoint::from_bytes(note.text()).unwrap();
    assert_eq!(signed.origin(), format!("cqrs-backend.local/{tenant}"));
    assert_eq!(signed.size(), stored as u64);
    let root = decode_hash(checkpoint["root_hash"].as_str().unwrap()).unwrap();
    assert_eq!(*signed.hash(), root, "the signed root is the served root");
    (signed.size(), root)
}

#[tokio::test]
async fn every_event_is_sealed_once_in_feed_order_and_every_proof_verifies() {
    let app = spawn_app_with(|settings| settings.audit.checkpoint_every_events = 1).await;
    let (_, auditor) = app.api_key_with_roles(&["auditor"]).await;
    for n in 0..4 {
        app.registered_user(&format!("sealed{n}@example.org"), "Sealed")
            .await;
    }
    let globex = app.admin_key_of("globex").await;
    let (size, root) = checkpoint_of_everything(&app, &auditor, "acme").await;

    // The leaves are the history in feed order, once each.
    let history = read(&app, &auditor, "/api/v1/audit/events?limit=100").await["items"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(history.len() as u64, size);
    let sealed: Vec<String> = sqlx::query_scalar(
        "SELECT event_id::text FROM audit.leaves WHERE tenant_id = 'acme' ORDER BY position",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let listed: Vec<&str> = history
        .iter()
        .map(|e| e["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(sealed, listed);

    // Each event's leaf, recomputed from the history's own fields, is proven in the tree.
    for (index, event) in history.iter().enumerate() {
        let recorded_at = event["recorded_at"].as_str().unwrap().parse().unwrap();
        let stream = format!(
            "{}:{}",
            event["metadata"]["tenant_id"].as_str().unwrap(),
            event["aggregate_id"].as_str().unwrap()
        );
        let leaf = LeafEvent {
            event_id: event["event_id"].as_str().unwrap().parse().unwrap(),
            aggregate_type: event["aggregate_type"].as_str().unwrap(),
            aggregate_id: &stream,
            sequence: event["sequence"].as_i64().unwrap(),
            event_type: event["event_type"].as_str().unwrap(),
            event_version: event["event_version"].as_str().unwrap(),
            payload: &event["payload"],
            metadata: LeafMetadata::Shown(&event["metadata"]),
            recorded_at,
        };
        let hash = leaf_hash(&leaf_data(index as u64, &leaf));
        let path = format!(
            "/api/v1/audit/log/inclusion?event_id={}&tree_size={size}",
            leaf.event_id
        );
        let proven = read(&app, &auditor, &path).await;
        assert_eq!(proven["leaf_index"], index as u64);
        assert_eq!(
            decode_hash(proven["leaf_hash"].as_str().unwrap()).unwrap(),
            hash
        );
        let proof: Vec<tlog::Hash> = proven["proof"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| decode_hash(h.as_str().unwrap()).unwrap())
            .collect();
        tlog::check_record(&proof, size, root, index as u64, hash).expect("inclusion verifies");
        let mut forged = hash;
        forged.0[0] ^= 1;
        assert!(tlog::check_record(&proof, size, root, index as u64, forged).is_err());
    }

    // More history, a later checkpoint, and the proof that it extends the first.
    for n in 0..3 {
        app.registered_user(&format!("later{n}@example.org"), "Later")
            .await;
    }
    let (later, later_root) = checkpoint_of_everything(&app, &auditor, "acme").await;
    assert!(later > size);
    let proven = read(
        &app,
        &auditor,
        &format!("/api/v1/audit/log/consistency?from={size}&to={later}"),
    )
    .await;
    let proof: Vec<tlog::Hash> = proven["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| decode_hash(h.as_str().unwrap()).unwrap())
        .collect();
    tlog::check_tree(&proof, later, later_root, size, root).expect("consistency verifies");
    let mut rewritten = root;
    rewritten.0[5] ^= 1;
    assert!(tlog::check_tree(&proof, later, later_root, size, rewritten).is_err());

    // Another tenant's tree is its own, and it sees nothing of this one.
    let (theirs, _) = checkpoint_of_everything(&app, &globex, "globex").await;
    assert!(theirs >= 1);
    let first = history[0]["event_id"].as_str().unwrap();
    assert_problem(
        get(
            &app,
            &globex,
            &format!("/api/v1/audit/log/inclusion?event_id={first}&tree_size=1"),
        )
        .await,
        StatusCode::NOT_FOUND,
        "event_not_sealed",
    )
    .await;
    assert_problem(
        get(
            &app,
            &auditor,
            &format!("/api/v1/audit/log/inclusion?event_id={first}&tree_size=0"),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_tree_size",
    )
    .await;
    assert_problem(
        get(
            &app,
            &auditor,
            &format!(
                "/api/v1/audit/log/consistency?from={}&to={later}",
                later + 1
            ),
        )
        .await,
        StatusCode::NOT_FOUND,
        "tree_size_not_sealed",
    )
    .await;
}

/// The sealing process is killed (`kill -9`) three times while 20 writers append through another
/// process: the sealed log ends with every event exactly once, in feed order, and verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sealer_killed_repeatedly_under_load_leaves_every_event_sealed_once_in_order() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    use tests::process::Launch;

    // This process writes only: relay, projections and sealer run in the process that is killed.
    let app = Arc::new(
        spawn_app_with(|settings| {
            settings.roles = api::config::Roles::parse("commands,queries").unwrap();
        })
        .await,
    );
    let settings = &app.settings;
    let sealer = Launch::new(
        &Launch::built_binary(),
        settings.database.url.expose(),
        settings.nats.url.expose(),
        &settings.nats.stream,
    )
    .env("APP_NATS__SUBJECT_PREFIX", &settings.nats.subject_prefix)
    .env(
        "APP_NATS__MAX_AGE_SECS",
        &settings.nats.max_age_secs.to_string(),
    )
    .env("APP_ROLES", "workers")
    .env(
        "APP_AUDIT__SIGNING_KEY",
        settings.audit.signing_key.expose(),
    )
    .env("APP_AUDIT__POLL_INTERVAL_MS", "20");
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..20)
        .map(|writer| {
            let (app, stop) = (app.clone(), stop.clone());
            tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let email = format!("seal{writer}-{n}@example.org");
                    let response = app.register_user(&email, "Seal").await;
                    assert_eq!(response.status(), StatusCode::CREATED);
                }
            })
        })
        .collect();
    let sealed = || async {
        sqlx::query_scalar::<_, Option<i64>>(
            "SELECT size FROM audit.trees WHERE tenant_id = 'acme'",
        )
        .fetch_one(&app.pool)
        .await
        .ok()
        .flatten()
        .unwrap_or(0)
    };
    for round in 0..3 {
        let mut process = sealer.start().await;
        let before = sealed().await;
        wait_until(
            &format!("round {round}: the sealer seals part of the burst"),
            Duration::from_secs(60),
            || async { sealed().await > before + 20 },
        )
        .await;
        process.kill().await;
    }
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.await.unwrap();
    }
    let _survivor = sealer.start().await;
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE tenant_id = 'acme'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    wait_until("every event is sealed", Duration::from_secs(60), || async {
        sealed().await >= stored
    })
    .await;
    let key = app.settings.audit.key().unwrap().unwrap();
    let verification = commands::audit::verify::verify(&app.pool, "acme", Some(key.verifier_key()))
        .await
        .unwrap();
    assert_eq!(verification.sealed as i64, stored, "each event sealed once");
    assert_eq!(verification.stored as i64, stored);
    assert!(
        verification.findings.is_empty(),
        "{:?}",
        verification.findings
    );
}
