//! The projection engine: poison events park one stream, lag is visible, completeness checks.

use std::sync::{Arc, Mutex};
use std::time::Duration;

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
use reqwest::StatusCode;
use serde_json::Value;
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

fn runner_settings(app: &TestApp) -> RunnerSettings {
    RunnerSettings {
        stream: app.settings.nats.stream.clone(),
        subjects: Subjects::new(app.settings.nats.subject_prefix.clone()),
        batch_size: 256,
        gap_retry: Duration::from_millis(100),
        failure_retry: Duration::from_millis(200),
    }
}

fn context() -> CommandContext {
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
    let users = UserCommands::new(
        CommandBus::new(app.pool.clone(), Default::default()),
        app.pool.clone(),
    );
    for n in 0..count {
        let command = UserCommand::Register {
            email: Email::parse(&format!("many{n}@example.org")).unwrap(),
            display_name: DisplayName::parse("Many").unwrap(),
            roles: Roles::new(),
            at: Utc::now(),
        };
        users
            .execute(&context(), Uuid::now_v7(), None, command, Utc::now())
            .await
            .unwrap();
    }
}

async fn overview(app: &TestApp) -> Value {
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
    let runner = ProjectionRunner::new(projection.clone(), app.pool.clone(), runner_settings(&app));
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
    let ready = app.get("/health/ready").await;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let ready: Value = ready.json().await.unwrap();
    assert!(
        ready["checks"]["projections"]
            .as_str()
            .unwrap()
            .contains("parked"),
        "{ready}"
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
    assert!(status["seconds_behind"].as_f64().unwrap() > 0.0, "{status}");
    let report = api::operate::status_report(&app.pool).await.unwrap();
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
        app.jetstream.clone(),
        stop.clone(),
    ));
    wait_until(
        "the projection catches up",
        Duration::from_secs(30),
        || async { overview(&app).await["events_behind"] == 0 },
    )
    .await;
    let status = overview(&app).await;
    assert_eq!(status["seconds_behind"], 0.0);
    assert_eq!(status["events_applied"], 3);
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
