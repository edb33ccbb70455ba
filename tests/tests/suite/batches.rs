//! Batched applies: a projection that folds a batch into a few statements leaves its read model
//! exactly as applying the same events one at a time does, and refuses a batch that does not fit
//! the read model as a whole (so the engine walks it again event by event and parks the culprit).

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use commands::bus::CommandBus;
use commands::feed::{self, FeedCursor};
use commands::users::UserCommands;
use commands::CommandContext;
use domain::event::RecordedEvent;
use domain::identity::{Role, Roles, TenantId};
use domain::users::{DisplayName, Email, UserCommand};
use projections::engine::{ApplyError, Projection};
use projections::users::UsersProjection;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use sqlx::PgConnection;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::helpers::{spawn_app, wait_until};

const USERS: usize = 12;

fn context() -> CommandContext {
    CommandContext {
        request_id: "batches".into(),
        correlation_id: "batches".into(),
        causation_id: "batches".into(),
        actor: "test".into(),
        tenant: TenantId::parse("acme").unwrap(),
        idempotency: None,
    }
}

/// A command chosen by `rng` for an existing user; some are refused by the aggregate (such as
/// deactivating a deactivated user), which appends nothing.
fn random_change(rng: &mut StdRng, step: usize) -> UserCommand {
    let at = Utc::now();
    match rng.random_range(0..4) {
        0 => UserCommand::ChangeDisplayName {
            display_name: DisplayName::parse(&format!("Name {step}")).unwrap(),
            at,
        },
        1 => UserCommand::ChangeRoles {
            roles: if step.is_multiple_of(2) {
                Roles::from([Role::User, Role::Moderator])
            } else {
                Roles::from([Role::Auditor])
            },
            at,
        },
        2 => UserCommand::Deactivate { at },
        _ => UserCommand::Reactivate { at },
    }
}

async fn users_table(connection: &mut PgConnection, schema: &str) {
    for statement in [
        format!("CREATE SCHEMA {schema}"),
        format!("CREATE TABLE {schema}.users (LIKE read_models.users INCLUDING ALL)"),
    ] {
        sqlx::query(&statement)
            .execute(&mut *connection)
            .await
            .unwrap();
    }
}

async fn rows(connection: &mut PgConnection, schema: &str) -> Vec<Value> {
    sqlx::query_scalar(&format!(
        "SELECT to_jsonb(u) FROM {schema}.users u ORDER BY tenant_id, user_id"
    ))
    .fetch_all(connection)
    .await
    .unwrap()
}

async fn search_path(connection: &mut PgConnection, schema: &str) {
    sqlx::query(&format!("SET LOCAL search_path = {schema}"))
        .execute(connection)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_batched_apply_leaves_the_read_model_as_one_event_at_a_time_does() {
    let app = spawn_app().await;
    let users = UserCommands::new(CommandBus::new(app.pool.clone(), Arc::new(Notify::new())));
    let ids: Vec<Uuid> = (0..USERS).map(|_| Uuid::now_v7()).collect();
    for (n, id) in ids.iter().enumerate() {
        let register = UserCommand::Register {
            email: Email::parse(&format!("batch{n}@example.org")).unwrap(),
            display_name: DisplayName::parse("Batch").unwrap(),
            roles: Roles::from([Role::User]),
            at: Utc::now(),
        };
        users
            .execute(&context(), *id, None, register, Utc::now())
            .await
            .unwrap();
    }
    let mut rng = StdRng::seed_from_u64(15);
    for step in 0..240 {
        let id = ids[rng.random_range(0..USERS)];
        let command = random_change(&mut rng, step);
        let _refused_or_appended = users
            .execute(&context(), id, None, command, Utc::now())
            .await;
    }
    let stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_type = 'User'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(stored > 2 * USERS as i64, "only {stored} events");
    let settled = || async {
        feed::read(&app.pool, FeedCursor::default(), 10_000)
            .await
            .unwrap()
            .into_iter()
            .filter(|event| event.aggregate_type == "User")
            .collect::<Vec<_>>()
    };
    wait_until(
        "every event is settled in the feed",
        Duration::from_secs(30),
        || async { settled().await.len() as i64 == stored },
    )
    .await;
    let events = settled().await;

    let mut tx = app.pool.begin().await.unwrap();
    users_table(&mut tx, "one_by_one").await;
    users_table(&mut tx, "batched").await;
    search_path(&mut tx, "one_by_one").await;
    for event in &events {
        UsersProjection.apply(&mut tx, event).await.unwrap();
    }
    search_path(&mut tx, "batched").await;
    let refs: Vec<&RecordedEvent> = events.iter().collect();
    // Batches of several sizes: a user registered and changed in one, changed across several.
    for (n, chunk) in refs.chunks(17).enumerate() {
        for part in chunk.chunks(if n.is_multiple_of(2) { 17 } else { 5 }) {
            UsersProjection.apply_batch(&mut tx, part).await.unwrap();
        }
    }
    let one_by_one = rows(&mut tx, "one_by_one").await;
    let batched = rows(&mut tx, "batched").await;
    assert_eq!(one_by_one.len(), USERS);
    assert_eq!(batched, one_by_one);
    let changed = |field: &str, unchanged: &str| {
        one_by_one
            .iter()
            .filter(|row| row[field] != unchanged)
            .count()
    };
    assert!(changed("status", "active") > 0, "no user ends deactivated");
    assert!(changed("display_name", "Batch") > 0, "no user was renamed");

    // Changes of a user the read model does not hold: the whole batch is refused.
    users_table(&mut tx, "partial").await;
    search_path(&mut tx, "partial").await;
    let registered_first = refs.iter().copied().filter(|event| event.sequence == 1);
    let first_of_each: Vec<&RecordedEvent> = registered_first.skip(1).collect();
    UsersProjection
        .apply_batch(&mut tx, &first_of_each)
        .await
        .unwrap();
    let orphan_changes: Vec<&RecordedEvent> = refs
        .iter()
        .copied()
        .filter(|event| event.sequence > 1)
        .collect();
    let refused = UsersProjection.apply_batch(&mut tx, &orphan_changes).await;
    assert!(
        matches!(refused, Err(ApplyError::Inconsistent(_))),
        "{refused:?}"
    );
}
