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
use tests::process::Launch;
use tests::recovery::{kill_during_burst, Burst};

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
    // The relay keeps its checkpoint in memory and writes it shortly after publishing.
    let relayed = || async {
        sqlx::query_scalar::<_, i64>("SELECT events_relayed FROM projection.relay_checkpoints")
            .fetch_one(&second.pool)
            .await
            .unwrap()
    };
    wait_until(
        "the relay's checkpoint counts every event",
        Duration::from_secs(30),
        || async { relayed().await >= total },
    )
    .await;
    assert_eq!(relayed().await, total, "every event relayed once");
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

/// `kill -9` of one of two backend processes (OS processes of the built binary) in the middle of a
/// write burst: the one that relays and owns every projection partition. The survivor takes the
/// relay and the partitions over, and every write acknowledged before the kill is readable
/// within seconds: messages the dead process had been handed come back after the short ack wait
/// (`projections::engine::ACK_WAIT`), not half a minute later. `just bench` reports the same
/// measurement as "time to readable after kill -9".
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn after_kill_9_of_a_backend_every_acknowledged_write_is_readable_within_seconds() {
    // This process only sets up and verifies: it runs no relay and no projections.
    let app = spawn_app_with(|settings| {
        settings.roles = api::config::Roles::parse("commands,queries").unwrap();
    })
    .await;
    let settings = &app.settings;
    let launch = Launch::new(
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
    .env("APP_DOCUMENTS__LOCAL_PATH", &settings.documents.local_path)
    .env("APP_DATABASE__MAX_CONNECTIONS", "12");
    let burst = Burst {
        writers: 16,
        writes_each: 150,
        kill_after_applied: 500,
    };
    let recovery = kill_during_burst(
        &launch,
        &app.pool,
        &app.admin_key,
        burst,
        Duration::from_secs(20),
    )
    .await;
    println!(
        "time to readable after kill -9: {:?}",
        recovery.readable_after
    );
    let writes = (burst.writers * burst.writes_each) as i64;
    assert_eq!(
        recovery.accepted as i64, writes,
        "every write acknowledged once"
    );
    assert_eq!(
        app.user_events().await,
        writes,
        "a write retried on the survivor was not stored twice"
    );
    app.assert_users_read_model_is_a_replay().await;
    drop(recovery.survivor);
}

/// A batch whose work outlasts the projection consumers' ack wait is not redelivered meanwhile:
/// its messages are marked in progress. The same wait without the marks redelivers them, which
/// is what the marks prevent.
#[tokio::test]
async fn messages_marked_in_progress_outlast_the_ack_wait_without_redelivery() {
    use async_nats::jetstream::consumer::{pull, AckPolicy};
    use futures::StreamExt;
    use projections::engine::in_progress::while_in_progress;

    let nats = commands::jetstream::connect(&crate::helpers::services().nats_url)
        .await
        .unwrap();
    let jetstream = async_nats::jetstream::new(nats);
    let name = format!("P_{}", uuid::Uuid::new_v4().simple());
    let stream = jetstream
        .create_stream(async_nats::jetstream::stream::Config {
            name: name.clone(),
            subjects: vec![format!("{name}.>")],
            ..Default::default()
        })
        .await
        .unwrap();
    for n in 0..3 {
        jetstream
            .publish(format!("{name}.{n}"), "event".into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let ack_wait = Duration::from_secs(2);
    // Holds a batch of all three messages for two and a half ack waits, marking them or not, then
    // acknowledges them; answers how many deliveries the consumer made in all.
    let hold = |consumer: &'static str, marked: bool| {
        let stream = stream.clone();
        async move {
            let consumer = stream
                .create_consumer(pull::Config {
                    durable_name: Some(consumer.to_owned()),
                    ack_policy: AckPolicy::Explicit,
                    ack_wait,
                    ..Default::default()
                })
                .await
                .unwrap();
            let batch: Vec<_> = consumer
                .fetch()
                .max_messages(3)
                .messages()
                .await
                .unwrap()
                .map(Result::unwrap)
                .collect()
                .await;
            assert_eq!(batch.len(), 3);
            // Meanwhile another pull waits, as the runner's message stream always does: it gets
            // whatever JetStream redelivers.
            let work = tokio::time::sleep(ack_wait * 5 / 2);
            let held = async {
                if marked {
                    while_in_progress(&batch, ack_wait / 4, work).await;
                } else {
                    work.await;
                }
            };
            let waiting = consumer
                .fetch()
                .max_messages(10)
                .expires(ack_wait * 5 / 2)
                .messages();
            let ((), again) = tokio::join!(held, async { waiting.await.unwrap().count().await });
            for message in &batch {
                message.ack().await.unwrap();
            }
            batch.len() + again
        }
    };
    assert_eq!(hold("marked", true).await, 3, "delivered once each");
    assert!(
        hold("unmarked", false).await > 3,
        "without the marks the batch is redelivered"
    );
}
