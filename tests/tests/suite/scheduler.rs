//! The job process manager: scheduled retries survive a restart, and a job whose stored history
//! does not decode is parked with its reason (not re-fetched forever) while every other job's
//! timers go on, operators see it (`/metrics`, `/health/projections`,
//! `backend scheduler parked`) and a retry after a repair schedules it again.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use uuid::Uuid;

use domain::jobs::{JobEvent, QueueReason};
use serde_json::json;

use crate::helpers::{spawn_app_with, spawn_with_settings, wait_until};
use crate::jobs::job_streams;
use crate::workers::{submit, submitter, Worker};

#[tokio::test]
async fn a_job_whose_history_does_not_decode_is_parked_and_the_others_flow() {
    let app = spawn_app_with(|settings| {
        settings.jobs.lease_secs = 2;
        settings.jobs.scheduler_tick_ms = 50;
    })
    .await;
    let (key, document) = submitter(&app).await;
    // A job whose worker dies: only the scheduler's lease expiry moves it on.
    let abandoned = submit(&app, &key, &document).await["aggregate_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let worker = Worker::new(&app).await;
    let claimed = worker.claim_within(Duration::from_secs(20)).await;
    assert_eq!(claimed["job_id"], abandoned);

    let poisoned = submit(&app, &key, &document).await["aggregate_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let stream = format!("acme:{poisoned}");
    // A row this build cannot decode as a job event, appended after the job's own events.
    let corrupt: Uuid = sqlx::query_scalar(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                             payload, metadata)
         SELECT aggregate_type, aggregate_id, sequence + 1, 'JobClaimed', '1',
                '{\"unexpected\": true}', metadata
           FROM events WHERE aggregate_id = $1 ORDER BY sequence DESC LIMIT 1
         RETURNING event_id",
    )
    .bind(&stream)
    .fetch_one(&app.pool)
    .await
    .unwrap();

    let parked = || async {
        sqlx::query_as::<_, (Option<Uuid>, String, i32)>(
            "SELECT event_id, error, attempts FROM scheduler.parked WHERE aggregate_id = $1",
        )
        .bind(&stream)
        .fetch_optional(&app.pool)
        .await
        .unwrap()
    };
    wait_until("the job is parked", Duration::from_secs(30), || async {
        parked().await.is_some()
    })
    .await;
    let (event_id, error, _) = parked().await.unwrap();
    assert_eq!(event_id, Some(corrupt));
    assert!(error.contains("does not decode"), "{error}");

    wait_until(
        "the abandoned job's lease expires all the same",
        Duration::from_secs(30),
        || async {
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM events
                  WHERE aggregate_id = $1 AND event_type = 'JobLeaseExpired'",
            )
            .bind(format!("acme:{abandoned}"))
            .fetch_one(&app.pool)
            .await
            .unwrap()
                == 1
        },
    )
    .await;
    // Acknowledged, not redelivered in a loop.
    wait_until(
        "the scheduler's consumer has nothing outstanding",
        Duration::from_secs(30),
        || async {
            let stream = app.stream().await;
            let info = stream.consumer_info("job-scheduler").await.unwrap();
            info.num_ack_pending == 0 && info.num_pending == 0
        },
    )
    .await;
    // Each message of the job derived once: a batch re-fetched in a loop (as the scheduler once
    // did) would keep its messages outstanding above.
    let (_, _, attempts) = parked().await.unwrap();

    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics
            .lines()
            .any(|line| line == "scheduler_parked_jobs 1"),
        "{metrics}"
    );
    let health = app.get("/health/projections").await;
    assert_eq!(health.status(), StatusCode::SERVICE_UNAVAILABLE);
    let health: Value = health.json().await.unwrap();
    assert_eq!(health["parked_jobs"], 1);
    assert!(
        health["problems"]
            .as_array()
            .unwrap()
            .contains(&Value::from("job-scheduler: 1 parked jobs")),
        "{health}"
    );
    let listed = api::operate::scheduler_parked_report(&app.pool)
        .await
        .unwrap();
    assert!(
        listed.contains(&stream) && listed.contains(&corrupt.to_string()),
        "{listed}"
    );
    let retried = api::operate::scheduler_retry_report(&app.pool, &stream)
        .await
        .unwrap();
    assert!(retried.contains("still parked"), "{retried}");
    assert_eq!(
        parked().await.unwrap().2,
        attempts + 1,
        "the retry failed again"
    );

    // A repair (here by hand, as a superuser; in life an upcaster in a new release) and a retry
    // free it.
    let mut repair = app.pool.begin().await.unwrap();
    for statement in [
        "ALTER TABLE events DISABLE TRIGGER USER",
        "DELETE FROM events WHERE event_id = $1",
        "ALTER TABLE events ENABLE TRIGGER USER",
    ] {
        let query = sqlx::query(statement);
        let query = if statement.contains("$1") {
            query.bind(corrupt)
        } else {
            query
        };
        query.execute(&mut *repair).await.unwrap();
    }
    repair.commit().await.unwrap();
    let retried = api::operate::scheduler_retry_report(&app.pool, &stream)
        .await
        .unwrap();
    assert!(retried.contains("scheduled again"), "{retried}");
    assert!(parked().await.is_none());
    let listed = api::operate::scheduler_parked_report(&app.pool)
        .await
        .unwrap();
    assert!(
        listed.starts_with("job-scheduler: 0 parked jobs"),
        "{listed}"
    );
}

/// Scheduled retries live in the database: killing the backend while they wait loses none.
#[tokio::test]
async fn a_restart_in_the_middle_of_scheduled_retries_loses_none() {
    const JOBS: usize = 10;
    // Retries fire 15 to 30 s after each failure (jitter), so all ten are still scheduled when
    // the test looks, however slowly a loaded machine claims and fails them.
    let app = spawn_app_with(|settings| {
        settings.jobs.retry_base_delay_ms = 30_000;
        settings.jobs.retry_max_delay_ms = 30_000;
        settings.jobs.scheduler_tick_ms = 50;
    })
    .await;
    let (key, document) = submitter(&app).await;
    for _ in 0..JOBS {
        submit(&app, &key, &document).await;
    }
    let worker = Worker::new(&app).await;
    for _ in 0..JOBS {
        let job = worker.claim_within(Duration::from_secs(20)).await;
        let body = json!({ "error_code": "engine.busy", "message": "later", "retryable": true });
        assert_eq!(worker.on(&job, "fail", body).await.status(), StatusCode::OK);
    }
    wait_until(
        "every retry is scheduled durably",
        Duration::from_secs(20),
        || async {
            let timers: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM scheduler.job_timers WHERE kind = 'retry'",
            )
            .fetch_one(&app.pool)
            .await
            .unwrap();
            timers == JOBS as i64
        },
    )
    .await;
    let requeued = || async {
        let rows: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM events WHERE event_type = 'JobQueued'
                AND payload::jsonb -> 'JobQueued' ->> 'reason' = 'retry'",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap();
        rows
    };
    assert_eq!(requeued().await, 0, "the retries are not due yet");
    let settings = app.settings.clone();
    let pool = app.pool.clone();
    app.kill();
    let restarted = spawn_with_settings(settings).await;
    wait_until(
        "every retry fired after the restart",
        Duration::from_secs(90),
        || async {
            let rows: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM events WHERE event_type = 'JobQueued'
                AND payload::jsonb -> 'JobQueued' ->> 'reason' = 'retry'",
            )
            .fetch_one(&pool)
            .await
            .unwrap();
            rows == JOBS as i64
        },
    )
    .await;
    for (id, events) in job_streams(&restarted).await {
        let retry = events
            .iter()
            .find(|(_, event, _)| matches!(event, JobEvent::RetryScheduled { .. }))
            .unwrap();
        let (_, _, cause) = events
            .iter()
            .find(|(_, event, _)| {
                matches!(
                    event,
                    JobEvent::JobQueued {
                        reason: QueueReason::Retry,
                        ..
                    }
                )
            })
            .unwrap();
        assert_eq!(
            *cause, retry.0,
            "job {id}: the retry is caused by its schedule"
        );
    }
}
