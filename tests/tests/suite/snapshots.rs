//! Snapshots: a long stream loads from its latest snapshot and the events after it, and the
//! state is the full replay's; a snapshot of another schema, or one that does not agree with
//! itself or no longer decodes, is never used.

use std::sync::Arc;

use chrono::Utc;
use commands::bus::CommandBus;
use commands::users::UserCommands;
use commands::CommandContext;
use domain::aggregate::{replay, Versioned};
use domain::identity::{Roles, StreamId, TenantId};
use domain::users::{DisplayName, Email, User, UserCommand, UserEvent};
use serde_json::Value;
use sqlx::PgPool;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::helpers::spawn_app;

fn context() -> CommandContext {
    CommandContext {
        request_id: "snapshots".into(),
        correlation_id: "snapshots".into(),
        causation_id: "snapshots".into(),
        actor: "test".into(),
        tenant: TenantId::parse("acme").unwrap(),
        idempotency: None,
    }
}

fn rename(n: usize) -> UserCommand {
    UserCommand::ChangeDisplayName {
        display_name: DisplayName::parse(&format!("Name {n}")).unwrap(),
        at: Utc::now(),
    }
}

/// The user's state replayed from every stored event.
async fn full_replay(pool: &PgPool, stream: &StreamId) -> Versioned<User> {
    let payloads: Vec<Value> = sqlx::query_scalar(
        "SELECT payload FROM events WHERE aggregate_type = 'User' AND aggregate_id = $1
          ORDER BY sequence",
    )
    .bind(stream.to_string())
    .fetch_all(pool)
    .await
    .unwrap();
    let events: Vec<UserEvent> = payloads
        .into_iter()
        .map(|payload| serde_json::from_value(payload).unwrap())
        .collect();
    replay::<User>(&events)
}

async fn snapshot_version(pool: &PgPool, stream: &StreamId) -> Option<i64> {
    sqlx::query_scalar(
        "SELECT version FROM snapshots.aggregates
          WHERE aggregate_type = 'User' AND aggregate_id = $1",
    )
    .bind(stream.to_string())
    .fetch_optional(pool)
    .await
    .unwrap()
}

/// Rewrites the stream's snapshot row with `assignment`.
async fn set_snapshot(pool: &PgPool, stream: &StreamId, assignment: &str) {
    sqlx::query(&format!(
        "UPDATE snapshots.aggregates SET {assignment}
          WHERE aggregate_type = 'User' AND aggregate_id = $1"
    ))
    .bind(stream.to_string())
    .execute(pool)
    .await
    .unwrap();
}

#[tokio::test]
async fn a_long_stream_loads_from_its_snapshot_and_equals_the_full_replay() {
    let app = spawn_app().await;
    let bus = || {
        CommandBus::<User>::new(app.pool.clone(), Arc::new(Notify::new())).with_snapshots_every(4)
    };
    let users = UserCommands::new(bus());
    let id = Uuid::now_v7();
    let stream = StreamId::new(TenantId::parse("acme").unwrap(), id);
    let register = UserCommand::Register {
        email: Email::parse("snap@example.org").unwrap(),
        display_name: DisplayName::parse("Snap").unwrap(),
        roles: Roles::new(),
        at: Utc::now(),
    };
    users
        .execute(&context(), id, None, register, Utc::now())
        .await
        .unwrap();
    assert_eq!(snapshot_version(&app.pool, &stream).await, None);
    for n in 0..10 {
        let outcome = users
            .execute(&context(), id, None, rename(n), Utc::now())
            .await
            .unwrap();
        // Every state a command was decided on (and every load) is the full replay's.
        let loaded = users.load(&stream).await.unwrap();
        assert_eq!(loaded, full_replay(&app.pool, &stream).await);
        assert_eq!(loaded.version(), outcome.version);
    }
    // 11 events, a snapshot whenever a load would replay 4 or more (written after the
    // command's answer, so a load may miss the newest): the last one is at 8 or later. No
    // write may still be in flight: a newer snapshot would replace the ones planted below.
    users.snapshots_saved().await;
    let taken = snapshot_version(&app.pool, &stream).await.unwrap();
    assert!(taken >= 8, "snapshot at {taken} of 11 events");
    assert!(taken <= 11, "snapshot at {taken} of 11 events");

    // The snapshot is what loads read: a state planted in it (same version, same schema) shows.
    set_snapshot(
        &app.pool,
        &stream,
        "state = jsonb_set(state, '{state,Registered,email}', '\"planted@example.org\"')",
    )
    .await;
    let loaded = users.load(&stream).await.unwrap();
    let User::Registered { email, .. } = loaded.state() else {
        panic!("a registered user")
    };
    assert_eq!(
        email.as_str(),
        "planted@example.org",
        "a snapshot of the current schema whose state records its version is used"
    );
    assert_eq!(loaded.version(), 11);

    // A version the stream does not have (the store was restored without its snapshots): never
    // used, though schema and state agree.
    set_snapshot(
        &app.pool,
        &stream,
        "version = 50, state = jsonb_set(state, '{version}', '50')",
    )
    .await;
    assert_eq!(
        users.load(&stream).await.unwrap(),
        full_replay(&app.pool, &stream).await
    );
    set_snapshot(
        &app.pool,
        &stream,
        &format!("version = {taken}, state = jsonb_set(state, '{{version}}', '{taken}')"),
    )
    .await;
    assert_ne!(
        users.load(&stream).await.unwrap(),
        full_replay(&app.pool, &stream).await,
        "the planted snapshot is used again"
    );

    // Another schema: never used.
    set_snapshot(&app.pool, &stream, "schema = 999").await;
    assert_eq!(
        users.load(&stream).await.unwrap(),
        full_replay(&app.pool, &stream).await
    );
    // A version that is not the one its state records: never used.
    set_snapshot(&app.pool, &stream, "schema = 1, version = 7").await;
    assert_ne!(taken, 7);
    assert_eq!(
        users.load(&stream).await.unwrap(),
        full_replay(&app.pool, &stream).await
    );
    // A state that no longer decodes: never used.
    set_snapshot(
        &app.pool,
        &stream,
        "version = 8, state = '{\"old\": 1}'::jsonb",
    )
    .await;
    assert_eq!(
        users.load(&stream).await.unwrap(),
        full_replay(&app.pool, &stream).await
    );
    // The next command replaces the unusable snapshot with a good one of the current schema.
    users
        .execute(&context(), id, None, rename(99), Utc::now())
        .await
        .unwrap();
    users.snapshots_saved().await;
    assert_eq!(snapshot_version(&app.pool, &stream).await, Some(12));
    let loaded = users.load(&stream).await.unwrap();
    assert_eq!(loaded, full_replay(&app.pool, &stream).await);
    let User::Registered { display_name, .. } = loaded.state() else {
        panic!("a registered user")
    };
    assert_eq!(display_name.as_str(), "Name 99");

    // Snapshots off: nothing is written and loads replay.
    let off = UserCommands::new(bus().with_snapshots_every(0));
    let other = Uuid::now_v7();
    let other_stream = StreamId::new(TenantId::parse("acme").unwrap(), other);
    let register = UserCommand::Register {
        email: Email::parse("nosnap@example.org").unwrap(),
        display_name: DisplayName::parse("No snap").unwrap(),
        roles: Roles::new(),
        at: Utc::now(),
    };
    off.execute(&context(), other, None, register, Utc::now())
        .await
        .unwrap();
    for n in 0..6 {
        off.execute(&context(), other, None, rename(n), Utc::now())
            .await
            .unwrap();
    }
    assert_eq!(snapshot_version(&app.pool, &other_stream).await, None);
    assert_eq!(
        off.load(&other_stream).await.unwrap(),
        full_replay(&app.pool, &other_stream).await
    );
}
