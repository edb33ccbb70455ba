//! Faults: a relay crash between publish and checkpoint, duplicates past the dedupe window, and
//! a NATS outage.

use std::time::Duration;

use async_nats::HeaderMap;
use commands::relay::{RelayError, RelayFault};
use domain::event::RecordedEvent;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{spawn_app_with, spawn_with_settings, test_settings, wait_until};
use crate::nats::PrivateNats;

#[tokio::test]
async fn a_relay_crash_after_publish_republishes_without_duplicate_effects() {
    let app = spawn_app_with(|settings| settings.relay.enabled = false).await;
    // A new projection is first built from the event store. Write only once that is done: an
    // event the build read and the relay publishes afterwards would reach the guard as a
    // duplicate, and the only copies this test may let through are the relay's.
    wait_until(
        "every projection is built",
        Duration::from_secs(30),
        || async {
            let built: i64 = sqlx::query_scalar("SELECT count(*) FROM projection.checkpoints")
                .fetch_one(&app.pool)
                .await
                .unwrap();
            built == projections::registry::Registered::ALL.len() as i64
        },
    )
    .await;
    let (ada, _) = app.registered_user("ada@example.org", "Ada").await;
    let (alan, _) = app.registered_user("alan@example.org", "Alan").await;
    for n in 0..3 {
        assert_eq!(
            app.rename_user(&ada, &format!("Ada {n}")).await.status(),
            StatusCode::OK
        );
    }
    assert_eq!(
        app.rename_user(&alan, "Alan Turing").await.status(),
        StatusCode::OK
    );
    let total = app.user_events().await;
    assert_eq!(total, 6);
    // Plus the bootstrap admin key's event: the relay publishes every stream.
    let all = app.all_events().await;
    // The feed holds back events while any older transaction is open (in any database of the
    // cluster, so other tests' too): wait until it offers all of them, so that the crashed step
    // and its retry read the same batch.
    wait_until(
        "the feed offers every committed event",
        Duration::from_secs(30),
        || async {
            commands::feed::read(&app.pool, Default::default(), 1000)
                .await
                .unwrap()
                .len() as i64
                == all
        },
    )
    .await;

    let crashed = app
        .relay
        .relay_once(Some(RelayFault::AfterPublishBeforeCheckpoint))
        .await;
    assert!(
        matches!(crashed, Err(RelayError::Injected(_))),
        "{crashed:?}"
    );
    assert_eq!(
        app.relay.checkpoint().await.unwrap(),
        Default::default(),
        "checkpoint did not move"
    );

    // The restarted relay publishes the same batch again; JetStream drops every copy.
    let outcome = app.relay.relay_once(None).await.unwrap();
    assert_eq!(outcome.published as i64, all);
    assert_eq!(outcome.duplicates as i64, all);
    app.assert_users_read_model_is_a_replay().await;
    assert_eq!(app.projection_counts("users").await, (total, 0));

    // Copies that escape the duplicate window (new message ids) are stopped by the guard.
    let stream = app.stream().await;
    for sequence in 1..=all as u64 {
        let message = stream.get_raw_message(sequence).await.unwrap();
        let event: RecordedEvent = serde_json::from_slice(&message.payload).unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            "Nats-Msg-Id",
            format!("{}-replayed", event.message_id()).as_str(),
        );
        app.jetstream
            .publish_with_headers(
                message.subject.to_string(),
                headers,
                message.payload.clone(),
            )
            .await
            .unwrap()
            .await
            .unwrap();
    }
    wait_until(
        "the guard skips all six replayed copies",
        Duration::from_secs(30),
        || async { app.projection_counts("users").await.1 == 6 },
    )
    .await;
    assert_eq!(app.projection_counts("users").await, (total, 6));
    assert_eq!(app.users_read_model().await, app.users_replayed().await);
}

#[tokio::test]
async fn commands_are_accepted_while_nats_is_down_and_the_read_model_converges() {
    let mut nats = PrivateNats::start().await;
    let mut settings = test_settings().await;
    settings.nats.url = api::config::Secret::new(nats.url.clone());
    let app = spawn_with_settings(settings).await;
    let (ada, token) = app.registered_user("ada@example.org", "Ada").await;
    assert_eq!(
        app.get_user_with_token(&ada, &token).await.status(),
        StatusCode::OK
    );

    nats.stop().await;
    wait_until(
        "readiness reports the bus down",
        Duration::from_secs(30),
        || async {
            let response = app.get("/health/ready").await;
            let status = response.status();
            let body: Value = response.json().await.unwrap();
            status == StatusCode::SERVICE_UNAVAILABLE && body["checks"]["nats"] != "ok"
        },
    )
    .await;
    let mut ids = vec![ada.clone()];
    for n in 0..3 {
        let (id, _) = app
            .registered_user(&format!("offline{n}@example.org"), "Offline")
            .await;
        ids.push(id);
    }
    assert_eq!(
        app.rename_user(&ada, "Ada, offline").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.user_events().await,
        5,
        "commands are stored while the bus is down"
    );

    let offline_rows = app.users_read_model().await.len();
    assert!(
        offline_rows < 4,
        "the new users cannot reach the read model without the bus"
    );

    nats.restart().await;
    app.assert_users_read_model_is_a_replay().await;
    assert_eq!(app.users_read_model().await.len(), 4);
    let user: Value = app
        .get(&format!("/api/v1/users/{ada}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(user["display_name"], "Ada, offline");
}

#[tokio::test]
async fn two_backends_share_one_store_with_one_active_relay_and_take_over() {
    let settings = test_settings().await;
    let first = spawn_with_settings(settings.clone()).await;
    let (ada, token) = first.registered_user("ada@example.org", "Ada").await;
    // Only `first` runs, so it leads the relay.
    assert_eq!(
        first.get_user_with_token(&ada, &token).await.status(),
        StatusCode::OK
    );

    let second = spawn_with_settings(settings).await;
    for n in 0..6 {
        let app = if n % 2 == 0 { &first } else { &second };
        app.registered_user(&format!("both{n}@example.org"), "Both")
            .await;
    }
    second.wait_for_users_projection().await;
    // Held advisory locks of this database, by key: the relay's and one per projection partition.
    let held = |key: String| {
        let pool = second.pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM pg_locks
                  WHERE locktype = 'advisory' AND granted AND objsubid = 1
                    AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
                    AND ((classid::bigint << 32) | objid::bigint) = hashtextextended($1, 0)",
            )
            .bind(key)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    assert_eq!(
        held(format!("relay:{}", second.settings.nats.stream)).await,
        1,
        "exactly one relay is active"
    );
    for partition in 0..4 {
        let key = format!("projection:users:{partition}/4");
        assert_eq!(
            held(key).await,
            1,
            "partition {partition} has exactly one worker"
        );
    }

    // The leader goes away; the standby takes over without any manual step.
    first.stop().await;
    let (grace, token) = second.registered_user("grace@example.org", "Grace").await;
    assert_eq!(
        second.get_user_with_token(&grace, &token).await.status(),
        StatusCode::OK
    );

    let total = second.all_events().await;
    assert_eq!(second.user_events().await, 8);
    let relayed: i64 =
        sqlx::query_scalar("SELECT events_relayed FROM projection.relay_checkpoints")
            .fetch_one(&second.pool)
            .await
            .unwrap();
    assert_eq!(relayed, total, "every event relayed once");
    second.assert_users_read_model_is_a_replay().await;
}

/// History cannot be repaired (it is append-only), so a row written without the usual metadata
/// must not stop the relay for every event behind it.
#[tokio::test]
async fn a_row_with_sparse_metadata_does_not_stall_the_relay() {
    let app = crate::helpers::spawn_app().await;
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         VALUES ('Manual', 'acme:manual', 1, 'Noted', '1', '{}', '{\"tenant_id\": \"acme\"}')",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let (id, token) = app
        .registered_user("after-manual@example.org", "After")
        .await;
    assert_eq!(
        app.get_user_with_token(&id, &token).await.status(),
        StatusCode::OK
    );
}

/// A process that relays and owns every partition is killed in the middle of a write burst; the
/// surviving process takes the relay and the partitions over, and every acknowledged write is
/// applied within seconds: messages the dead process had been handed come back after the short
/// ack wait (`projections::engine::ACK_WAIT`), not half a minute later.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn after_a_kill_every_acknowledged_write_is_readable_within_seconds() {
    use crate::projections::{user_commands, write_users};

    let first = spawn_app_with(|settings| settings.projections.partitions = 4).await;
    wait_until(
        "the first process owns every partition",
        Duration::from_secs(60),
        || async {
            let owned: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM projection.partition_owners
                  WHERE projection = 'users' AND partitions = 4",
            )
            .fetch_one(&first.pool)
            .await
            .unwrap();
            owned == 4
        },
    )
    .await;
    let second = spawn_with_settings(first.settings.clone()).await;
    let users = std::sync::Arc::new(user_commands(&first));
    let mut writers = Vec::new();
    for writer in 0..16 {
        let users = users.clone();
        writers.push(tokio::spawn(async move {
            write_users(&users, &format!("k{writer}n"), 300, 0).await;
        }));
    }
    // Killed while it is behind: it holds messages it was handed and has not acknowledged.
    wait_until(
        "the first process applies part of the burst",
        Duration::from_secs(120),
        || async { second.projection_counts("users").await.0 >= 500 },
    )
    .await;
    first.kill();
    let killed = tokio::time::Instant::now();
    // Every write acknowledged by the time of the kill is in the store up to this position.
    let acknowledged: i64 = sqlx::query_scalar("SELECT max(global_position) FROM events")
        .fetch_one(&second.pool)
        .await
        .unwrap();
    let unapplied = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM events e
               LEFT JOIN projection.stream_positions p
                      ON p.projection = 'users' AND p.aggregate_type = e.aggregate_type
                     AND p.aggregate_id = e.aggregate_id
              WHERE e.aggregate_type = 'User' AND e.global_position <= $1
                AND coalesce(p.last_sequence, 0) < e.sequence",
        )
        .bind(acknowledged)
        .fetch_one(&second.pool)
        .await
        .unwrap()
    };
    wait_until(
        "every write acknowledged before the kill is applied, within seconds",
        Duration::from_secs(20),
        || async { unapplied().await == 0 },
    )
    .await;
    let readable_after = killed.elapsed();
    println!("time to readable after kill: {readable_after:?}");
    for writer in writers {
        writer.await.unwrap();
    }
    let total = second.user_events().await;
    assert_eq!(total, 16 * 300);
    wait_until(
        "every write is applied",
        Duration::from_secs(120),
        || async { second.projection_counts("users").await.0 >= total },
    )
    .await;
    second.assert_users_read_model_is_a_replay().await;
}
