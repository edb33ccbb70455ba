//! The global feed and the relay: nothing lost, nothing duplicated, stream order kept.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::pull::OrderedConfig;
use chrono::Utc;
use commands::bus::CommandBus;
use commands::feed::{self, FeedCursor};
use commands::users::UserCommands;
use commands::CommandContext;
use domain::event::RecordedEvent;
use domain::identity::{Roles, TenantId};
use domain::users::{DisplayName, Email, UserCommand};
use futures::StreamExt;
use serde_json::json;
use sqlx::PgPool;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::helpers::{spawn_app, test_settings, wait_until};

/// Appends events the way postgres-es does, inside a transaction held open for `hold`.
async fn append_raw(pool: &PgPool, user: Uuid, renames: usize, hold: Duration) {
    let mut tx = pool.begin().await.unwrap();
    let metadata = json!({
        "request_id": "raw", "correlation_id": "raw", "causation_id": "raw", "actor": "test",
        "tenant_id": "acme", "command": "Raw", "recorded_at": Utc::now(),
    });
    let at = Utc::now();
    let mut payloads = vec![(
        "UserRegistered",
        json!({ "UserRegistered": { "email": format!("{user}@example.org"), "display_name": "Raw", "at": at } }),
    )];
    for n in 0..renames {
        payloads.push((
            "DisplayNameChanged",
            json!({ "DisplayNameChanged": { "display_name": format!("Raw {n}"), "at": at } }),
        ));
    }
    for (sequence, (event_type, payload)) in payloads.into_iter().enumerate() {
        sqlx::query(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
             VALUES ('User', $1, $2, $3, '1', $4, $5)",
        )
        .bind(format!("acme:{user}"))
        .bind(sequence as i64 + 1)
        .bind(event_type)
        .bind(payload)
        .bind(&metadata)
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    // Later transactions commit while this one is still open: the naive tailer's blind spot.
    sqlx::query("SELECT pg_sleep($1)")
        .bind(hold.as_secs_f64())
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

fn context() -> CommandContext {
    CommandContext {
        request_id: "gap-test".into(),
        correlation_id: "gap-test".into(),
        causation_id: "gap-test".into(),
        actor: "test".into(),
        tenant: TenantId::parse("acme").unwrap(),
        idempotency: None,
    }
}

/// 20 concurrent command writers and 4 writers holding transactions open append > 5,000 events.
/// The relay publishes each exactly once, each stream in order, and the read model equals a
/// from-scratch replay.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_and_held_transactions_lose_nothing() {
    let app = spawn_app().await;
    let commands = Arc::new(UserCommands::new(CommandBus::new(
        app.pool.clone(),
        Arc::new(Notify::new()),
    )));
    let mut writers = Vec::new();
    for writer in 0..20 {
        let commands = commands.clone();
        writers.push(tokio::spawn(async move {
            for user in 0..20 {
                let id = Uuid::now_v7();
                let email = Email::parse(&format!("w{writer}u{user}@example.org")).unwrap();
                let register = UserCommand::Register {
                    email,
                    display_name: DisplayName::parse("Writer").unwrap(),
                    roles: Roles::new(),
                    at: Utc::now(),
                };
                commands
                    .execute(&context(), id, None, register, Utc::now())
                    .await
                    .unwrap();
                for rename in 0..11 {
                    let command = UserCommand::ChangeDisplayName {
                        display_name: DisplayName::parse(&format!("Writer {rename}")).unwrap(),
                        at: Utc::now(),
                    };
                    commands
                        .execute(&context(), id, None, command, Utc::now())
                        .await
                        .unwrap();
                }
            }
        }));
    }
    for slow in 0..4u64 {
        let pool = app.pool.clone();
        writers.push(tokio::spawn(async move {
            for n in 0..20u64 {
                let hold = Duration::from_millis(20 + (slow * 37 + n * 53) % 250);
                append_raw(&pool, Uuid::now_v7(), 2, hold).await;
            }
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }
    let total = app.user_events().await;
    assert_eq!(total, 20 * 20 * 12 + 4 * 20 * 3);

    app.assert_users_read_model_is_a_replay().await;

    // The stream holds every event exactly once, each aggregate's events in sequence order.
    let stream = app.stream().await;
    let consumer = stream
        .create_consumer(OrderedConfig::default())
        .await
        .unwrap();
    let mut messages = consumer.messages().await.unwrap();
    let mut ids = HashSet::new();
    let mut last_sequence: HashMap<String, i64> = HashMap::new();
    // Every stream is published, the bootstrap admin key's included.
    let all = app.all_events().await;
    for _ in 0..all {
        let message = tokio::time::timeout(Duration::from_secs(30), messages.next())
            .await
            .expect("stream delivers every event")
            .unwrap()
            .unwrap();
        let message_id = message
            .headers
            .as_ref()
            .unwrap()
            .get("Nats-Msg-Id")
            .unwrap()
            .to_string();
        let event: RecordedEvent = serde_json::from_slice(&message.payload).unwrap();
        assert_eq!(message_id, event.message_id());
        assert!(
            ids.insert(message_id.clone()),
            "{message_id} published twice"
        );
        let last = last_sequence.entry(event.aggregate_id.clone()).or_insert(0);
        assert_eq!(
            event.sequence,
            *last + 1,
            "stream {} out of order",
            event.aggregate_id
        );
        *last = event.sequence;
    }
    assert_eq!(ids.len() as i64, all);
    assert_eq!(stream.get_info().await.unwrap().state.messages as i64, all);
}

/// The feed never passes a transaction that is still open, and reports what it holds back.
#[tokio::test]
async fn the_feed_waits_for_open_transactions() {
    let settings = test_settings().await;
    let pool = PgPool::connect(settings.database.url.expose())
        .await
        .unwrap();
    let insert = "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
                  VALUES ('Probe', $1, 1, 'Probed', '1', '{}', '{\"tenant_id\": \"default\"}')";
    let mut open = pool.begin().await.unwrap();
    sqlx::query(insert)
        .bind("first")
        .execute(&mut *open)
        .await
        .unwrap();
    sqlx::query(insert)
        .bind("second")
        .execute(&pool)
        .await
        .unwrap();

    // "second" is committed, but "first" (an older transaction) may still commit before it.
    let read = |pool: PgPool| async move {
        sqlx::query_as::<_, (String,)>(
            "SELECT aggregate_id FROM events WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot())
              ORDER BY transaction_id, global_position",
        )
        .fetch_all(&pool)
        .await
        .unwrap()
    };
    assert!(read(pool.clone()).await.is_empty());
    assert_eq!(
        feed::held_by_horizon(&pool, FeedCursor::default())
            .await
            .unwrap(),
        1
    );

    open.commit().await.unwrap();
    wait_until(
        "the horizon passes both transactions",
        Duration::from_secs(10),
        || {
            let pool = pool.clone();
            async move { read(pool).await.len() == 2 }
        },
    )
    .await;
    assert_eq!(
        read(pool.clone()).await,
        [("first".to_owned(),), ("second".to_owned(),)]
    );
    assert_eq!(
        feed::held_by_horizon(&pool, FeedCursor::default())
            .await
            .unwrap(),
        0
    );
}

/// The settled end of a tenant's history (where an export taken now ends) is its last
/// transaction by number, not by text: with transactions 9 and 10, it is 10. (Sorting the text
/// once ended every export at transaction 976 of a history that went on to 1038.)
#[tokio::test]
async fn the_settled_end_of_a_history_orders_transactions_as_numbers() {
    let pool = PgPool::connect(&crate::helpers::fresh_database().await)
        .await
        .unwrap();
    for (n, transaction) in ["9", "10"].into_iter().enumerate() {
        sqlx::query(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type,
                                 event_version, payload, metadata, transaction_id)
             VALUES ('Probe', $1, 1, 'Probed', '1', '{}',
                     json_build_object('tenant_id', 'digits'), $2::text::xid8)",
        )
        .bind(format!("digits:{n}"))
        .bind(transaction)
        .execute(&pool)
        .await
        .unwrap();
    }
    let end = feed::history::settled_end(&pool, "digits")
        .await
        .unwrap()
        .expect("a settled history");
    assert_eq!(end.transaction_id, 10);
}

/// Hand-written metadata with a key written twice reads as Postgres reads it (the last one
/// counts), and metadata that does not decode either way is a corrupt event.
#[tokio::test]
async fn hand_written_metadata_with_a_repeated_key_reads_as_postgres_reads_it() {
    let pool = PgPool::connect(&crate::helpers::fresh_database().await)
        .await
        .unwrap();
    sqlx::query(
        r#"INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                              payload, metadata)
           VALUES ('Probe', 'twice:1', 1, 'Probed', '1', '{}',
                   '{"tenant_id": "twice", "actor": "first", "actor": "last"}')"#,
    )
    .execute(&pool)
    .await
    .unwrap();
    let events = feed::read_stream(&pool, "Probe", "twice:1").await.unwrap();
    assert_eq!(events[0].metadata.actor, "last");
    assert_eq!(events[0].metadata.tenant_id, "twice");

    sqlx::query(
        r#"INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                              payload, metadata)
           VALUES ('Probe', 'broken:1', 1, 'Probed', '1', '{}',
                   '{"tenant_id": "broken", "recorded_at": "yesterday"}')"#,
    )
    .execute(&pool)
    .await
    .unwrap();
    let broken = feed::read_stream(&pool, "Probe", "broken:1").await;
    assert!(
        matches!(broken, Err(feed::FeedError::Corrupt { .. })),
        "{broken:?}"
    );
}
