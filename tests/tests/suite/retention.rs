//! JetStream retains only part of history; the event store holds all of it. A projection built
//! for the first time is built from the store, a gap JetStream can no longer fill is filled from
//! the store, a stream whose last events expired unread is caught up from the store, and a gap
//! the store cannot fill either parks its stream with the reason `gap` (or `store` when the store
//! cannot be read for it), from where a retry reading the store applies it once it can.

use std::time::Duration;

use api::rebuild::FeedSource;
use chrono::Utc;
use commands::users::UserCommands;
use domain::event::{RecordedEvent, Subjects};
use domain::identity::Roles;
use domain::users::{DisplayName, Email, UserCommand};
use projections::engine::{retry_parked, retry_parked_from_store, RetryOutcome};
use projections::registry::Registered;
use projections::status;
use projections::users::UsersProjection;
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
    // What JetStream still delivers starts one event further on: a gap in half of the streams.
    // The other half get no later event: nothing on the bus shows that they lost their tail.
    for id in &ids[..5] {
        rename(&users, *id, "After the expiry").await;
    }
    relayed_everything(&app).await;

    let stop = CancellationToken::new();
    let running = run_users(&app, &stop);
    let report = verified_complete(&app).await;
    assert!(
        report.contains("complete. 10 streams, 25 events"),
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
    publish_stray(&app, id).await;
    parked_streams_are(&app, 1).await;
    let parked = status::parked(&app.pool, "users", "").await.unwrap();
    assert_eq!(parked.len(), 1, "{parked:?}");
    assert_eq!(parked[0].aggregate_id, format!("acme:{id}"));
    assert_eq!(parked[0].sequence, 3);
    assert!(
        parked[0].error.starts_with("gap: sequences 2..=2"),
        "{parked:?}"
    );
    let health = app.get("/health/projections").await;
    assert_eq!(health.status(), StatusCode::SERVICE_UNAVAILABLE);
    stop.cancel();
    running.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn streams_whose_last_events_expired_unread_are_caught_up_from_the_store() {
    let app = spawn_app_with(|settings| settings.projections.enabled = false).await;
    let users = user_commands(&app);
    let stop = CancellationToken::new();
    let running = run_users(&app, &stop);
    let mut ids = Vec::new();
    for n in 0..8 {
        ids.push(register(&users, &format!("tail{n}@example.org")).await);
    }
    verified_complete(&app).await;
    stop.cancel();
    running.await.unwrap();

    // While the projection is stopped, every stream gets its last events so far, and JetStream
    // loses them before the projection read them. No stream ever gets a later event, so no
    // delivery will show a gap.
    for id in &ids {
        rename(&users, *id, "Tail, lost on the bus").await;
    }
    for id in &ids[..3] {
        rename(&users, *id, "Tail, lost on the bus too").await;
    }
    expire_everything(&app).await;
    let (report, complete) = api::operate::verify_report(&app.pool, "users")
        .await
        .unwrap();
    assert!(
        !complete,
        "the tails are missing before it resumes: {report}"
    );

    let stop = CancellationToken::new();
    let running = run_users(&app, &stop);
    let report = verified_complete(&app).await;
    assert!(
        report.contains(&format!("complete. 8 streams, {} events", 8 + 8 + 3)),
        "{report}"
    );
    app.assert_users_read_model_is_a_replay().await;
    let status = overview(&app).await;
    assert_eq!(status["parked_streams"], 0, "{status}");
    assert_eq!(status["events_behind"], 0, "{status}");

    // Caught up, it follows the bus again: a new event applies, nothing applies twice.
    rename(&users, ids[0], "After the catch-up").await;
    app.wait_for_users_projection().await;
    verified_complete(&app).await;
    app.assert_users_read_model_is_a_replay().await;
    stop.cancel();
    running.await.unwrap();
}

/// Publishes to JetStream, as the relay would, an event the store does not hold: the last stored
/// event of `id`'s stream, two sequences further on.
async fn publish_stray(app: &TestApp, id: Uuid) {
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
}

async fn parked_streams_are(app: &TestApp, count: i64) {
    wait_until(
        &format!("{count} stream(s) parked"),
        Duration::from_secs(30),
        || async { overview(app).await["parked_streams"] == count },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stored_row_that_does_not_decode_parks_the_stream_it_would_fill() {
    let app = spawn_app_with(|settings| settings.projections.enabled = false).await;
    let users = user_commands(&app);
    let stop = CancellationToken::new();
    let running = run_users(&app, &stop);
    let id = register(&users, "corrupt@example.org").await;
    verified_complete(&app).await;

    // The bus carries sequence 3; the store's sequence 2 is a row this build cannot decode
    // (its metadata's `recorded_at` is not a time), so no retry can ever fill the gap. (The
    // relay stops at that row too; this test needs nothing more from it.)
    publish_stray(&app, id).await;
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                             payload, metadata)
         VALUES ('User', $1, 2, 'UserDisplayNameChanged', '1.0', '{}', '{\"tenant_id\": \"acme\", \"recorded_at\": \"not a time\"}')",
    )
    .bind(format!("acme:{id}"))
    .execute(&app.pool)
    .await
    .unwrap();

    parked_streams_are(&app, 1).await;
    let parked = status::parked(&app.pool, "users", "").await.unwrap();
    assert_eq!(parked.len(), 1, "{parked:?}");
    assert_eq!(parked[0].aggregate_id, format!("acme:{id}"));
    assert_eq!(parked[0].sequence, 3);
    assert!(
        parked[0]
            .error
            .starts_with("store: sequences 2..=2 of this stream cannot be read")
            && parked[0].error.contains("does not decode"),
        "{parked:?}"
    );
    stop.cancel();
    running.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_retry_of_a_gap_parked_stream_reads_the_events_that_reached_the_store() {
    let app = spawn_app_with(|settings| settings.projections.enabled = false).await;
    let users = user_commands(&app);
    let stop = CancellationToken::new();
    let running = run_users(&app, &stop);
    let id = register(&users, "late-store@example.org").await;
    verified_complete(&app).await;
    publish_stray(&app, id).await;
    parked_streams_are(&app, 1).await;
    stop.cancel();
    running.await.unwrap();

    // The missing sequences reach the store later; with no builder running, nothing on the bus
    // will bring them to the parked stream.
    rename(&users, id, "Second").await;
    rename(&users, id, "Third").await;
    let stream = format!("acme:{id}");

    // The parked rows alone cannot fill the gap: that retry applies nothing.
    let outcome = retry_parked(&UsersProjection, &app.pool, "User", &stream)
        .await
        .unwrap();
    assert_eq!(
        outcome,
        RetryOutcome {
            applied: 0,
            still_parked: 1
        }
    );
    let parked = status::parked(&app.pool, "users", "").await.unwrap();
    assert!(
        parked[0].error.starts_with("gap: sequences 2..=2") && parked[0].attempts == 2,
        "{parked:?}"
    );

    // Reading the store first applies them, the store's sequence 3 in place of the stray one.
    let source = FeedSource::new(app.pool.clone());
    let outcome = retry_parked_from_store(&UsersProjection, &app.pool, &source, "User", &stream)
        .await
        .unwrap();
    assert_eq!(
        outcome,
        RetryOutcome {
            applied: 2,
            still_parked: 0
        }
    );
    let report = verified_complete(&app).await;
    assert!(report.contains("complete. 1 streams, 3 events"), "{report}");
    app.assert_users_read_model_is_a_replay().await;
    assert_eq!(overview(&app).await["parked_streams"], 0);
}
