//! The projection engine: poison events park one stream, lag is visible, completeness checks.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use api::rebuild::FeedSource;
use chrono::Utc;
use commands::bus::CommandBus;
use commands::users::UserCommands;
use commands::CommandContext;
use domain::event::{RecordedEvent, Subjects};
use domain::identity::{Roles, TenantId};
use domain::users::{DisplayName, Email, UserCommand};
use projections::engine::{
    retry_parked, ApplyError, Projection, ProjectionRunner, RetryOutcome, RunnerSettings,
};
use projections::registry::Registered;
use projections::users::UsersProjection;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::PgConnection;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::helpers::{spawn_app_with, wait_until, TestApp};

/// The users projection with a test toggle: while `poisoned` names a stream, every event of it
/// fails to apply, as a bug in a handler would.
#[derive(Clone, Default)]
struct Poisonable {
    poisoned: Arc<Mutex<Option<String>>>,
}

impl Projection for Poisonable {
    fn name(&self) -> &'static str {
        UsersProjection.name()
    }

    fn version(&self) -> u32 {
        UsersProjection.version()
    }

    fn aggregate_types(&self) -> &'static [&'static str] {
        UsersProjection.aggregate_types()
    }

    fn tables(&self) -> &'static [&'static str] {
        UsersProjection.tables()
    }

    async fn apply(
        &self,
        connection: &mut PgConnection,
        event: &RecordedEvent,
    ) -> Result<(), ApplyError> {
        let poisoned = self.poisoned.lock().unwrap().clone();
        if poisoned.as_deref() == Some(event.aggregate_id.as_str()) {
            return Err(ApplyError::Inconsistent(
                "poison: this handler cannot apply the event".into(),
            ));
        }
        UsersProjection.apply(connection, event).await
    }
}

pub(crate) fn runner_settings(app: &TestApp) -> RunnerSettings {
    RunnerSettings {
        stream: app.settings.nats.stream.clone(),
        subjects: Subjects::new(app.settings.nats.subject_prefix.clone()),
        batch_size: 256,
        gap_retry: Duration::from_millis(100),
        failure_retry: Duration::from_millis(200),
        partitions: app.settings.projections.partitions,
        worker_id: format!("test-{}", Uuid::new_v4().simple()),
    }
}

pub(crate) fn context() -> CommandContext {
    CommandContext {
        request_id: "projection-test".into(),
        correlation_id: "projection-test".into(),
        causation_id: "projection-test".into(),
        actor: "test".into(),
        tenant: TenantId::parse("acme").unwrap(),
        idempotency: None,
    }
}

/// Registers `count` users directly through the command side (faster than HTTP).
async fn register_many(app: &TestApp, count: usize) {
    write_users(&user_commands(app), "many", count, 0).await;
}

pub(crate) fn user_commands(app: &TestApp) -> UserCommands {
    UserCommands::new(CommandBus::new(app.pool.clone(), Default::default()))
}

/// Registers `count` users (emails `{prefix}{n}@example.org`), each renamed `renames` times.
pub(crate) async fn write_users(users: &UserCommands, prefix: &str, count: usize, renames: usize) {
    for n in 0..count {
        let id = Uuid::now_v7();
        let register = UserCommand::Register {
            email: Email::parse(&format!("{prefix}{n}@example.org")).unwrap(),
            display_name: DisplayName::parse("Writer").unwrap(),
            roles: Roles::new(),
            at: Utc::now(),
        };
        users
            .execute(&context(), id, None, register, Utc::now())
            .await
            .unwrap();
        for rename in 0..renames {
            let command = UserCommand::ChangeDisplayName {
                display_name: DisplayName::parse(&format!("Writer {rename}")).unwrap(),
                at: Utc::now(),
            };
            users
                .execute(&context(), id, None, command, Utc::now())
                .await
                .unwrap();
        }
    }
}

pub(crate) async fn overview(app: &TestApp) -> Value {
    let response = app.get("/api/v1/admin/projections").await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["projections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "users")
        .unwrap()
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_poison_event_parks_its_stream_only_and_a_retry_applies_it_in_order() {
    let app = spawn_app_with(|settings| settings.projections.enabled = false).await;
    let (poison, _) = app.registered_user("poison@example.org", "Poison").await;
    assert_eq!(
        app.rename_user(&poison, "Still poison").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.rename_user(&poison, "Poison again").await.status(),
        StatusCode::OK
    );
    register_many(&app, 1_000).await;

    let projection = Poisonable::default();
    *projection.poisoned.lock().unwrap() = Some(format!("acme:{poison}"));
    let stop = CancellationToken::new();
    let runner = ProjectionRunner::new(
        projection.clone(),
        app.pool.clone(),
        runner_settings(&app),
        FeedSource::shared(app.pool.clone()),
    );
    let running = tokio::spawn(runner.run(app.jetstream.clone(), stop.clone()));

    wait_until(
        "the 1,000 other users are applied",
        Duration::from_secs(60),
        || async { app.projection_counts("users").await.0 >= 1_000 },
    )
    .await;
    wait_until(
        "the poison stream's three events are parked",
        Duration::from_secs(30),
        || async { overview(&app).await["parked_events"] == 3 },
    )
    .await;
    assert_eq!(
        app.projection_counts("users").await.0,
        1_000,
        "everything but the poison stream"
    );
    let parked: Value = app
        .get("/api/v1/admin/projections/users/parked")
        .await
        .json()
        .await
        .unwrap();
    let parked = parked.as_array().unwrap();
    assert_eq!(parked.len(), 1, "exactly one stream parked: {parked:?}");
    assert_eq!(parked[0]["aggregate_id"], format!("acme:{poison}"));
    assert_eq!(parked[0]["sequence"], 1);
    assert_eq!(parked[0]["waiting_events"], 3);
    assert!(
        parked[0]["error"].as_str().unwrap().contains("poison"),
        "{parked:?}"
    );
    let status = overview(&app).await;
    assert_eq!(status["parked_streams"], 1);
    assert!(status["last_error"].as_str().unwrap().contains("poison"));
    crate::hardening::operator_scope(&app, &poison).await;
    // The instance still serves: readiness stays up, projection health says what is parked.
    assert_eq!(app.get("/health/ready").await.status(), StatusCode::OK);
    let health = app.get("/health/projections").await;
    assert_eq!(health.status(), StatusCode::SERVICE_UNAVAILABLE);
    let health: Value = health.json().await.unwrap();
    assert_eq!(health["status"], "degraded");
    assert_eq!(
        health["problems"],
        json!(["users: 1 parked streams"]),
        "{health}"
    );

    // Retrying with the bug still there keeps the stream parked and counts the attempt.
    let stream = format!("acme:{poison}");
    let outcome = retry_parked(&projection, &app.pool, "User", &stream)
        .await
        .unwrap();
    assert_eq!(
        outcome,
        RetryOutcome {
            applied: 0,
            still_parked: 3
        }
    );
    let parked: Value = app
        .get("/api/v1/admin/projections/users/parked")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(parked[0]["attempts"], 2);

    // The handler is fixed (the API retries with the projection's current code); a retry
    // applies the parked events in order.
    *projection.poisoned.lock().unwrap() = None;
    stop.cancel();
    running.await.unwrap();
    let retry = app
        .post(&format!(
            "/api/v1/admin/projections/users/parked/{poison}/retry"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(retry.status(), StatusCode::OK);
    let body: Value = retry.json().await.unwrap();
    assert_eq!(
        (body["applied"].as_u64(), body["still_parked"].as_u64()),
        (Some(3), Some(0))
    );
    let user: Value = app
        .get(&format!("/api/v1/users/{poison}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(user["display_name"], "Poison again");
    assert_eq!(user["version"], 3);
    let status = overview(&app).await;
    assert_eq!(status["parked_streams"], 0);
    assert_eq!(status["events_behind"], 0);
    app.assert_users_read_model_is_a_replay().await;
    let (report, complete) = api::operate::verify_report(&app.pool, "users")
        .await
        .unwrap();
    assert!(complete, "{report}");
    assert_eq!(app.get("/health/ready").await.status(), StatusCode::OK);
    assert_eq!(
        app.get("/health/projections").await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn lag_is_visible_while_a_projection_is_stopped_and_zero_once_it_caught_up() {
    let app = spawn_app_with(|settings| settings.projections.enabled = false).await;
    for n in 0..3 {
        app.registered_user(&format!("lag{n}@example.org"), "Lag")
            .await;
    }
    let status = overview(&app).await;
    assert_eq!(status["events_behind"], 3);
    let per_partition: i64 = status["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["events_behind"].as_i64().unwrap())
        .sum();
    assert_eq!(per_partition, 3, "{status}");
    assert!(status["seconds_behind"].as_f64().unwrap() > 0.0, "{status}");
    let metrics = app
        .anonymous(reqwest::Method::GET, "/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("projection_parked_streams{projection=\"users\"} 0"),
        "{metrics}"
    );
    assert!(metrics.contains("relay_held_by_horizon "), "{metrics}");
    let report = api::operate::status_report(&app.pool, app.settings.projections.partitions)
        .await
        .unwrap();
    assert!(
        report.contains("EVENTS BEHIND") && report.lines().any(|l| l.starts_with("users")),
        "{report}"
    );
    let (report, complete) = api::operate::verify_report(&app.pool, "users")
        .await
        .unwrap();
    assert!(!complete);
    assert_eq!(report.matches("missing User acme:").count(), 3, "{report}");

    let stop = CancellationToken::new();
    tokio::spawn(Registered::Users.run(
        app.pool.clone(),
        runner_settings(&app),
        FeedSource::shared(app.pool.clone()),
        app.jetstream.clone(),
        stop.clone(),
    ));
    // Built from the store first, then every partition is taken by a consumer.
    wait_until(
        "the projection catches up and its partitions are owned",
        Duration::from_secs(30),
        || async {
            let status = overview(&app).await;
            status["events_behind"] == 0
                && status["partitions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|p| p["owner"].is_string())
        },
    )
    .await;
    let status = overview(&app).await;
    assert_eq!(status["seconds_behind"], 0.0);
    assert_eq!(status["events_applied"], 3);
    let partitions = status["partitions"].as_array().unwrap();
    assert_eq!(partitions.len(), 4);
    assert!(
        partitions
            .iter()
            .all(|p| p["events_behind"] == 0 && p["owner"].is_string()),
        "{status}"
    );
    let (report, complete) = api::operate::verify_report(&app.pool, "users")
        .await
        .unwrap();
    assert!(complete, "{report}");
    assert!(report.contains("complete. 3 streams, 3 events"), "{report}");
    stop.cancel();
}

#[tokio::test]
async fn the_completeness_check_reports_extra_events() {
    let app = spawn_app_with(|_| {}).await;
    let (id, token) = app.registered_user("extra@example.org", "Extra").await;
    app.user_seen_with(&id, &token).await;
    // A guard that claims more than the store holds (as a bug or a hand edit would leave it).
    sqlx::query("UPDATE projection.stream_positions SET last_sequence = 3 WHERE aggregate_id = $1")
        .bind(format!("acme:{id}"))
        .execute(&app.pool)
        .await
        .unwrap();
    let (report, complete) = api::operate::verify_report(&app.pool, "users")
        .await
        .unwrap();
    assert!(!complete);
    assert!(
        report.contains(&format!("extra   User acme:{id} sequences 2..=3")),
        "{report}"
    );
}

async fn rebuild_finished(app: &TestApp) -> bool {
    let status = overview(app).await;
    let rebuild = &status["rebuild"];
    assert!(rebuild["error"].is_null(), "the rebuild failed: {rebuild}");
    !rebuild["finished_at"].is_null()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rebuild_under_write_load_keeps_every_query_answering() {
    let app = Arc::new(spawn_app_with(|_| {}).await);
    let (known, token) = app.registered_user("known@example.org", "Known").await;
    app.user_seen_with(&known, &token).await;
    register_many(&app, 2_000).await;
    app.wait_for_users_projection().await;

    let stop = CancellationToken::new();
    let writer = {
        let (app, stop) = (app.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 0;
            while !stop.is_cancelled() {
                let response = app
                    .register_user(&format!("during{n}@example.org"), "During")
                    .await;
                assert_eq!(response.status(), StatusCode::CREATED);
                n += 1;
            }
            n
        })
    };
    let reader = {
        let (app, stop, known) = (app.clone(), stop.clone(), known.clone());
        tokio::spawn(async move {
            let mut answered = 0;
            while !stop.is_cancelled() {
                let one = app.get(&format!("/api/v1/users/{known}")).await;
                assert_eq!(
                    one.status(),
                    StatusCode::OK,
                    "a query failed during the rebuild"
                );
                let page = app.get("/api/v1/users?limit=10").await;
                assert_eq!(
                    page.status(),
                    StatusCode::OK,
                    "a query failed during the rebuild"
                );
                let page: Value = page.json().await.unwrap();
                assert_eq!(
                    page["items"].as_array().unwrap().len(),
                    10,
                    "an empty page during the rebuild"
                );
                answered += 2;
            }
            answered
        })
    };

    // The projection's first build at start-up left a finished rebuild row: wait for the one
    // started here, not that one.
    let before = overview(&app).await["rebuild"]["started_at"].clone();
    let started = app
        .anonymous(Method::POST, "/api/v1/admin/projections/users/rebuild")
        .header("x-api-key", app.operator_key().await)
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), StatusCode::ACCEPTED);
    wait_until("the rebuild swaps in", Duration::from_secs(120), || async {
        let status = overview(&app).await;
        let rebuild = &status["rebuild"];
        assert!(rebuild["error"].is_null(), "the rebuild failed: {rebuild}");
        rebuild["started_at"] != before && !rebuild["finished_at"].is_null()
    })
    .await;
    stop.cancel();
    let written = writer.await.unwrap();
    let answered = reader.await.unwrap();
    assert!(
        written > 0 && answered > 0,
        "load ran during the rebuild: {written} writes, {answered} queries"
    );

    app.assert_users_read_model_is_a_replay().await;
    let (report, complete) = api::operate::verify_report(&app.pool, "users")
        .await
        .unwrap();
    assert!(complete, "{report}");
    let status = overview(&app).await;
    assert_eq!(status["version"], UsersProjection.version());
    assert!(
        status["rebuild"]["events_done"].as_i64().unwrap() >= 2_001,
        "{status}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bumping_the_version_rebuilds_at_start_up() {
    let app = spawn_app_with(|_| {}).await;
    for n in 0..5 {
        app.registered_user(&format!("version{n}@example.org"), "Versioned")
            .await;
    }
    app.wait_for_users_projection().await;
    // The live tables were built by an older version of the projection (and show it).
    sqlx::query("UPDATE projection.checkpoints SET version = 0 WHERE projection = 'users'")
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE read_models.users SET display_name = 'built by version 0'")
        .execute(&app.pool)
        .await
        .unwrap();

    // A process of the new version starts against the same store.
    let upgraded = crate::helpers::spawn_with_settings(app.settings.clone()).await;
    wait_until(
        "the new version's tables are live",
        Duration::from_secs(60),
        || async { overview(&upgraded).await["version"] == UsersProjection.version() },
    )
    .await;
    assert!(rebuild_finished(&upgraded).await);
    upgraded.assert_users_read_model_is_a_replay().await;
    let stale: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM read_models.users WHERE display_name = 'built by version 0'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(stale, 0);
}

#[tokio::test]
async fn the_rebuild_cli_draws_progress_and_reports() {
    let app = spawn_app_with(|_| {}).await;
    for n in 0..3 {
        app.registered_user(&format!("cli{n}@example.org"), "Cli")
            .await;
    }
    app.wait_for_users_projection().await;
    let mut bar = Vec::new();
    let report = api::operate::rebuild_report(&app.pool, "users", &mut bar)
        .await
        .unwrap();
    let bar = String::from_utf8(bar).unwrap();
    assert!(
        bar.contains("100%")
            && bar.contains("3/3 events")
            && bar.contains("ev/s")
            && bar.contains("ETA"),
        "{bar:?}"
    );
    assert!(
        report.starts_with("users: rebuilt in ")
            && report.contains("3 events applied, version 1 live"),
        "{report}"
    );
    app.assert_users_read_model_is_a_replay().await;
}

/// Two processes share the projections on 4 partitions; one is killed mid-way; the other takes
/// its partitions over and nothing is lost or applied twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_share_partitions_and_survive_a_kill() {
    let first = spawn_app_with(|settings| settings.projections.partitions = 4).await;
    let second = crate::helpers::spawn_with_settings(first.settings.clone()).await;
    let users = Arc::new(user_commands(&first));
    let mut writers = Vec::new();
    for writer in 0..20 {
        let users = users.clone();
        writers.push(tokio::spawn(async move {
            write_users(&users, &format!("w{writer}n"), 500, 4).await;
        }));
    }
    wait_until(
        "a fifth of the events are applied",
        Duration::from_secs(300),
        || async { second.projection_counts("users").await.0 >= 10_000 },
    )
    .await;
    first.kill();
    for writer in writers {
        writer.await.unwrap();
    }
    assert_eq!(second.user_events().await, 50_000);
    wait_until(
        "every event is applied",
        Duration::from_secs(300),
        || async { second.projection_counts("users").await.0 >= 50_000 },
    )
    .await;
    let owners: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT owner FROM projection.partition_owners WHERE projection = 'users' AND partitions = 4",
    )
    .fetch_all(&second.pool)
    .await
    .unwrap();
    assert_eq!(
        owners.len(),
        1,
        "the surviving process owns every partition: {owners:?}"
    );
    second.assert_users_read_model_is_a_replay().await;
    let (report, complete) = api::operate::verify_report(&second.pool, "users")
        .await
        .unwrap();
    assert!(complete, "{report}");
    assert!(report.contains("10000 streams, 50000 events"), "{report}");
}
