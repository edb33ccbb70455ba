//! JetStream retains only part of history; the event store holds all of it. A projection built
//! for the first time is built from the store, a gap JetStream can no longer fill is filled from
//! the store, and a gap the store cannot fill either parks its stream with the reason `gap`.

use std::time::Duration;

use api::rebuild::FeedSource;
use chrono::Utc;
use commands::users::UserCommands;
use domain::event::{RecordedEvent, Subjects};
use domain::identity::Roles;
use domain::users::{DisplayName, Email, UserCommand};
use projections::registry::Registered;
use projections::status;
use reqwest::StatusCode;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::helpers::{spawn_app_with, wait_until, TestApp};
use crate::projections::{context, overview, runner_settings, user_commands};

async fn register(users: &UserCommands, email: &str) -> Uuid {
    let id = Uuid::now_v7();
    let command = UserCommand::Register {
        email: Email::parse(email).unwrap(),
        display_name: DisplayName::parse("Early").unwrap(),
        roles: Roles::new(),
        at: Utc::now(),
    };
    users
        .execute(&context(), id, None, command, Utc::now())
        .await
        .unwrap();
    id
}

async fn rename(users: &UserCommands, id: Uuid, name: &str) {
    let command = UserCommand::ChangeDisplayName {
        display_name: DisplayName::parse(name).unwrap(),
        at: Utc::now(),
    };
    users
        .execute(&context(), id, None, command, Utc::now())
        .await
        .unwrap();
}

/// Waits until the relay has published every event in the store to JetStream.
async fn relayed_everything(app: &TestApp) {
    let total = app.all_events().await;
    wait_until(
        &format!("the relay publishes all {total} events"),
        Duration::from_secs(30),
        || async {
            let relayed: Option<i64> =
                sqlx::query_scalar("SELECT events_relayed FROM projection.relay_checkpoints")
                    .fetch_optional(&app.pool)
                    .await
                    .unwrap();
            relayed.unwrap_or(0) >= total
        },
    )
    .await;
}

/// JetStream forgets everything it holds so far, as retention (`max_age`) would.
async fn expire_everything(app: &TestApp) {
    relayed_everything(app).await;
    app.stream().await.purge().await.unwrap();
    let state = app.stream().await.get_info().await.unwrap().state;
    assert_eq!(state.messages, 0, "the stream retains nothing: {state:?}");
}

/// Runs the users projection's builder (as a process with projections enabled would).
fn run_users(app: &TestApp, stop: &CancellationToken) -> JoinHandle<()> {
    tokio::spawn(Registered::Users.run(
        app.pool.clone(),
        runner_settings(app),
        FeedSource::shared(app.pool.clone()),
        app.jetstream.clone(),
        stop.clone(),
    ))
}

/// Waits until `projections verify users` reports the read model complete, and returns the
/// report.
async fn verified_complete(app: &TestApp) -> String {
    wait_until(
        "projections verify says the users projection is complete",
        Duration::from_secs(60),
        || async {
            api::operate::verify_report(&app.pool, "users")
                .await
                .unwrap()
                .1
        },
    )
    .await;
    api::operate::verify_report(&app.pool, "users")
        .await
        .unwrap()
        .0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_projection_is_built_from_the_store_although_jetstream_kept_only_recent_history() {
    let app = spawn_app_with(|settings| settings.projections.enabled = false).await;
    let users = user_commands(&app);
    let mut early = Vec::new();
    for n in 0..20 {
        let id = register(&users, &format!("early{n}@example.org")).await;
        rename(&users, id, "Early, renamed").await;
        early.push(id);
    }
    // The early history is gone from JetStream; only what follows is retained.
    expire_everything(&app).await;
    for id in &early[..10] {
        rename(&users, *id, "Renamed after the expiry").await;
    }
    for n in 0..5 {
        register(&users, &format!("late{n}@example.org")).await;
    }
    relayed_everything(&app).await;
    let retained = app.stream().await.get_info().await.unwrap().state;
    assert!(
        retained.first_sequence > 1 && (retained.messages as i64) < app.user_events().await,
        "JetStream retains only the recent part of the history: {retained:?}"
    );

    // The users projection is registered now: it has never run.
    let (_, complete) = api::operate::verify_report(&app.pool, "users")
        .await
        .unwrap();
    assert!(!complete);
    let stop = CancellationToken::new();
    let running = run_users(&app, &stop);
    let report = verified_complete(&app).await;
    assert!(
        report.contains(&format!("complete. 25 streams, {} events", 20 * 2 + 10 + 5)),
        "{report}"
    );
    app.assert_users_read_model_is_a_replay().await;
    let rebuild = &overview(&app).await["rebuild"];
    assert!(
        rebuild["error"].is_null() && !rebuild["finished_at"].is_null(),
        "built through the rebuild path: {rebuild}"
    );

    // Then it follows JetStream from where the build left off: new events arrive, old ones are
    // not applied again.
    for id in &early {
        rename(&users, *id, "Renamed live").await;
    }
    app.wait_for_users_projection().await;
    verified_complete(&app).await;
    app.assert_users_read_model_is_a_replay().await;
    let start: Option<i64> = sqlx::query_scalar(
        "SELECT consumer_start_sequence FROM projection.checkpoints WHERE projection = 'users'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        start,
        Some(retained.last_sequence as i64 + 1),
        "consumers start after what the build read"
    );
    stop.cancel();
    running.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_partition_facing_a_gap_jetstream_cannot_fill_reads_it_from_the_store() {
    let app = spawn_app_with(|settings| settings.projections.enabled = false).await;
    let users = user_commands(&app);
    let stop = CancellationToken::new();
    let running = run_users(&app, &stop);
    let mut ids = Vec::new();
    for n in 0..10 {
        ids.push(register(&users, &format!("gap{n}@example.org")).await);
    }
    verified_complete(&app).await;
    stop.cancel();
    running.await.unwrap();

    // While the projection is stopped, each stream moves on and JetStream loses those events.
    for id in &ids {
        rename(&users, *id, "While stopped").await;
    }
    expire_everything(&app).await;
    // What JetStream still delivers starts one event further on: a gap in every stream.
    for id in &ids {
        rename(&users, *id, "After the expiry").await;
    }
    relayed_everything(&app).await;

    let stop = CancellationToken::new();
    let running = run_users(&app, &stop);
    let report = verified_complete(&app).await;
    assert!(
        report.contains("complete. 10 streams, 30 events"),
        "{report}"
    );
    app.assert_users_read_model_is_a_replay().await;
    let status = overview(&app).await;
    assert_eq!(status["parked_streams"], 0, "{status}");
    stop.cancel();
    running.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_gap_the_store_cannot_fill_either_parks_its_stream_with_the_reason_gap() {
    let app = spawn_app_with(|settings| settings.projections.enabled = false).await;
    let users = user_commands(&app);
    let stop = CancellationToken::new();
    let running = run_users(&app, &stop);
    let id = register(&users, "orphan@example.org").await;
    verified_complete(&app).await;

    // JetStream carries an event the store never had, two sequences ahead of the stream.
    let stored = commands::feed::read_stream(&app.pool, "User", &format!("acme:{id}"))
        .await
        .unwrap();
    let mut stray: RecordedEvent = stored.last().unwrap().clone();
    stray.sequence += 2;
    stray.event_id = Uuid::now_v7();
    let subjects = Subjects::new(app.settings.nats.subject_prefix.clone());
    app.jetstream
        .publish(
            subjects.for_event(&stray),
            serde_json::to_vec(&stray).unwrap().into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();

    wait_until("the stream is parked", Duration::from_secs(30), || async {
        overview(&app).await["parked_streams"] == 1
    })
    .await;
    let parked = status::parked(&app.pool, "users", "").await.unwrap();
    assert_eq!(parked.len(), 1, "{parked:?}");
    assert_eq!(parked[0].aggregate_id, format!("acme:{id}"));
    assert_eq!(parked[0].sequence, 3);
    assert!(
        parked[0].error.starts_with("gap: sequences 2..=2"),
        "{parked:?}"
    );
    let ready = app.get("/health/ready").await;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    stop.cancel();
    running.await.unwrap();
}
