//! Translation jobs end to end: the worker protocol, documents, the process manager, and the
//! dashboard statistics against counts computed from the event store.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use domain::aggregate::replay;
use domain::jobs::{JobEvent, JobStatus, QueueReason, TranslationJob};
use rand::Rng;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_app_with, wait_until, TestApp};
use crate::workers::{submit, submitter, Worker};

/// Every job stream in the event store, decoded: (job id, [(event id, event, causation id)]).
pub(crate) async fn job_streams(
    app: &TestApp,
) -> BTreeMap<String, Vec<(String, JobEvent, String)>> {
    let rows: Vec<(String, String, Value, String)> = sqlx::query_as(
        "SELECT aggregate_id, event_id::text, payload::jsonb::json,
                coalesce(metadata::jsonb ->> 'causation_id', '')
           FROM events WHERE aggregate_type = 'TranslationJob'
          ORDER BY aggregate_id, sequence",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let mut streams: BTreeMap<String, Vec<_>> = BTreeMap::new();
    for (stream, event_id, payload, causation) in rows {
        let id = stream.split_once(':').unwrap().1.to_owned();
        let event: JobEvent = serde_json::from_value(payload).unwrap();
        streams
            .entry(id)
            .or_default()
            .push((event_id, event, causation));
    }
    streams
}

pub(crate) async fn jobs_in_status(app: &TestApp, statuses: &[&str]) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM read_models.jobs WHERE status = ANY($1)")
        .bind(statuses)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

/// A user (an API key with the user role) with an uploaded document; returns (key, document).
#[tokio::test]
async fn a_worker_claims_reports_and_completes_a_job() {
    let app = spawn_app_with(|_| {}).await;
    let (key, document) = submitter(&app).await;
    let worker = Worker::new(&app).await;
    assert!(worker.claim().await.is_none(), "nothing queued yet");
    let submitted = submit(&app, &key, &document).await;
    let job_id = submitted["aggregate_id"].as_str().unwrap().to_owned();
    let job = worker.claim_within(Duration::from_secs(20)).await;
    assert_eq!(job["job_id"], job_id);
    assert_eq!(job["attempt"], 1);
    assert_eq!(job["document_id"], document);
    // Another worker finds nothing: the only job is held.
    assert!(Worker::new(&app).await.claim().await.is_none());

    let beat: Value = worker
        .on(&job, "heartbeat", json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(beat["cancelled"], false);
    let progress = worker
        .on(&job, "progress", json!({ "done": 3, "total": 10 }))
        .await;
    assert_eq!(progress.status(), StatusCode::OK);
    let backwards = worker
        .on(&job, "progress", json!({ "done": 2, "total": 10 }))
        .await;
    assert_problem(backwards, StatusCode::CONFLICT, "progress_regressed").await;
    let above = worker
        .on(&job, "progress", json!({ "done": 11, "total": 10 }))
        .await;
    assert_problem(
        above,
        StatusCode::UNPROCESSABLE_ENTITY,
        "progress_above_total",
    )
    .await;
    let stranger = json!({ "lease_id": uuid::Uuid::new_v4(), "done": 4, "total": 10 });
    let foreign = worker
        .post(&format!("/api/v1/worker/jobs/{job_id}/progress"), stranger)
        .await;
    assert_problem(foreign, StatusCode::CONFLICT, "not_lease_holder").await;

    let result = worker.upload_result("Hallo, Welt.\n").await;
    let done = worker
        .on(
            &job,
            "complete",
            json!({ "result_document_id": result, "characters": 13, "segments": 1 }),
        )
        .await;
    assert_eq!(done.status(), StatusCode::OK);
    let token = done.json::<Value>().await.unwrap()["consistency_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let again = worker
        .on(&job, "progress", json!({ "done": 10, "total": 10 }))
        .await;
    assert_problem(again, StatusCode::CONFLICT, "job_finished").await;

    let detail: Value = app
        .anonymous(Method::GET, &format!("/api/v1/jobs/{job_id}"))
        .header("x-api-key", &key)
        .header("x-consistency-token", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(detail["job"]["status"], "succeeded");
    assert_eq!(detail["job"]["result_document_id"], result);
    // The worker uploaded the result; the job's owner downloads it, another user may not.
    let result_path = format!("/api/v1/documents/{result}");
    let owned = app
        .anonymous(Method::GET, &result_path)
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(owned.status(), StatusCode::OK);
    assert_eq!(owned.text().await.unwrap(), "Hallo, Welt.\n");
    let (_, stranger) = app.api_key_with_roles(&["user"]).await;
    let foreign = app
        .anonymous(Method::GET, &result_path)
        .header("x-api-key", &stranger)
        .send()
        .await
        .unwrap();
    assert_problem(foreign, StatusCode::FORBIDDEN, "forbidden").await;
    assert_eq!(detail["job"]["characters"], 13);
    assert_eq!(detail["attempts"][0]["outcome"], "succeeded");
    // The owner's list and usage show it; a cancel after success is refused.
    let page: Value = app
        .anonymous(Method::GET, "/api/v1/jobs?status=succeeded")
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"][0]["job_id"], job_id);
    let owner = detail["job"]["owner_id"].as_str().unwrap();
    let usage: Value = app
        .get(&format!("/api/v1/users/{owner}/usage"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(usage["characters_translated"], 13);
    assert_eq!(usage["jobs_succeeded"], 1);
    let cancel = app
        .anonymous(Method::POST, &format!("/api/v1/jobs/{job_id}/cancel"))
        .header("x-api-key", &key)
        .json(&json!({ "reason": "too late" }))
        .send()
        .await
        .unwrap();
    assert_problem(cancel, StatusCode::CONFLICT, "job_finished").await;
}

#[tokio::test]
async fn a_cancelled_job_tells_its_worker_at_the_next_heartbeat() {
    let app = spawn_app_with(|_| {}).await;
    let (key, document) = submitter(&app).await;
    let submitted = submit(&app, &key, &document).await;
    let job_id = submitted["aggregate_id"].as_str().unwrap().to_owned();
    let worker = Worker::new(&app).await;
    let job = worker.claim_within(Duration::from_secs(20)).await;
    let cancel = app
        .anonymous(Method::POST, &format!("/api/v1/jobs/{job_id}/cancel"))
        .header("x-api-key", &key)
        .json(&json!({ "reason": "no longer needed" }))
        .send()
        .await
        .unwrap();
    assert_eq!(cancel.status(), StatusCode::OK);
    let beat: Value = worker
        .on(&job, "heartbeat", json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(beat["cancelled"], true);
    let complete = worker
        .on(
            &job,
            "fail",
            json!({ "error_code": "x", "message": "x", "retryable": true }),
        )
        .await;
    assert_problem(complete, StatusCode::CONFLICT, "job_cancelled").await;
}

/// 8 workers drain 1,000 jobs with random retryable and final failures and random deaths
/// (abandoned leases): every job ends in exactly one terminal state, no job is ever held by
/// two workers, attempts follow the retry policy, and the dashboard equals the event store.
#[tokio::test]
async fn eight_workers_drain_a_thousand_jobs_through_failures_and_deaths() {
    const JOBS: usize = 1000;
    const MAX_ATTEMPTS: u32 = 3;
    let app = spawn_app_with(|settings| {
        settings.jobs.lease_secs = 2;
        settings.jobs.max_attempts = MAX_ATTEMPTS;
        settings.jobs.retry_base_delay_ms = 20;
        settings.jobs.retry_max_delay_ms = 80;
        settings.jobs.scheduler_tick_ms = 50;
        settings.database.max_connections = 24;
    })
    .await;
    let (key, document) = submitter(&app).await;
    let submitted = Arc::new(AtomicUsize::new(0));
    let mut submitters = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (address, client, key, document) = (
            app.address.clone(),
            app.client.clone(),
            key.clone(),
            document.clone(),
        );
        let submitted = submitted.clone();
        submitters.spawn(async move {
            while submitted.fetch_add(1, Ordering::SeqCst) < JOBS {
                let response = client
                    .post(format!("{address}/api/v1/jobs"))
                    .header("x-api-key", &key)
                    .json(&json!({
                        "kind": "translation", "source_language": "en",
                        "target_language": "fr", "document_id": document,
                    }))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), StatusCode::CREATED);
            }
        });
    }
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let worker = Worker::new(&app).await;
        let result = worker.upload_result("Bonjour.\n").await;
        let stop = stop.clone();
        workers.spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let Some(job) = worker.claim().await else {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                };
                let roll = rand::rng().random_range(0..100);
                let response = match roll {
                    // Dies: the lease runs out and the process manager takes over.
                    0..5 => continue,
                    5..20 => {
                        let body =
                            json!({ "error_code": "engine.busy", "message": "try later", "retryable": true });
                        worker.on(&job, "fail", body).await
                    }
                    20..25 => {
                        let body =
                            json!({ "error_code": "bad_input", "message": "unreadable", "retryable": false });
                        worker.on(&job, "fail", body).await
                    }
                    _ => {
                        worker.on(&job, "progress", json!({ "done": 1, "total": 2 })).await;
                        let body = json!({ "result_document_id": result, "characters": 8, "segments": 1 });
                        worker.on(&job, "complete", body).await
                    }
                };
                // A slow call may find its lease expired: that attempt is lost, like a death.
                let status = response.status();
                assert!(
                    status == StatusCode::OK || status == StatusCode::CONFLICT,
                    "{status}: {}",
                    response.text().await.unwrap()
                );
            }
        });
    }
    while let Some(done) = submitters.join_next().await {
        done.unwrap();
    }
    let terminal = ["succeeded", "failed", "dead_lettered", "cancelled"];
    wait_until("every job is terminal", Duration::from_secs(400), || {
        let app = &app;
        async move { jobs_in_status(app, &terminal).await == JOBS as i64 }
    })
    .await;
    stop.store(true, Ordering::SeqCst);
    while let Some(done) = workers.join_next().await {
        done.unwrap();
    }

    let streams = job_streams(&app).await;
    assert_eq!(streams.len(), JOBS);
    let mut by_status: BTreeMap<String, i64> = BTreeMap::new();
    let (mut ended, mut failed, mut retries) = (0i64, 0i64, 0i64);
    let mut succeeded_per_minute: BTreeMap<String, i64> = BTreeMap::new();
    for (id, events) in &streams {
        let mut live = replay::<TranslationJob>(&[]);
        let mut terminals = 0;
        let mut claims = 0;
        let mut history = Vec::new();
        let mut settled_terminal = false;
        for (index, (event_id, event, causation)) in events.iter().enumerate() {
            let before = live
                .state()
                .job()
                .map(|job| (job.status, job.lease.clone()));
            match event {
                JobEvent::JobClaimed { .. } => {
                    claims += 1;
                    let (status, lease) = before.clone().unwrap();
                    assert_eq!(
                        status,
                        JobStatus::Queued,
                        "job {id} claimed while {status:?}"
                    );
                    assert!(lease.is_none(), "job {id} claimed while held");
                }
                JobEvent::JobSucceeded { at, .. } => {
                    ended += 1;
                    *succeeded_per_minute
                        .entry(at.format("%Y-%m-%dT%H:%M").to_string())
                        .or_default() += 1;
                }
                JobEvent::JobFailed { .. } | JobEvent::LeaseExpired { .. } => {
                    ended += 1;
                    failed += 1;
                }
                JobEvent::JobQueued {
                    reason: QueueReason::Retry | QueueReason::LeaseExpired,
                    ..
                } => retries += 1,
                _ => {}
            }
            // Timers fire with the event that set them as the cause.
            if matches!(event, JobEvent::LeaseExpired { .. })
                || matches!(
                    event,
                    JobEvent::JobQueued {
                        reason: QueueReason::Retry,
                        ..
                    }
                )
            {
                assert!(
                    events.iter().any(|(cause, _, _)| cause == causation),
                    "job {id}: {event_id} is not caused by an event of its job"
                );
            }
            history.push(event.clone());
            live = replay::<TranslationJob>(&history);
            // A failure and what follows it (a retry, dead-lettering) are one command: judge
            // the state only once the command's events are all applied.
            let more_of_the_command = matches!(event, JobEvent::JobFailed { .. })
                && matches!(
                    events.get(index + 1),
                    Some((
                        _,
                        JobEvent::RetryScheduled { .. } | JobEvent::JobDeadLettered { .. },
                        _
                    ))
                );
            if !more_of_the_command {
                let terminal = live.state().job().unwrap().status.is_terminal();
                if terminal && !settled_terminal {
                    terminals += 1;
                }
                settled_terminal = terminal;
            }
        }
        let job = live.state().job().unwrap();
        assert!(job.status.is_terminal(), "job {id} ended {:?}", job.status);
        assert_eq!(
            terminals, 1,
            "job {id} reached a terminal state {terminals} times"
        );
        assert!(
            claims <= MAX_ATTEMPTS,
            "job {id} was attempted {claims} times"
        );
        assert_eq!(claims, job.attempt, "job {id}: attempts recorded");
        if job.status == JobStatus::DeadLettered {
            assert_eq!(claims, MAX_ATTEMPTS, "job {id} dead-lettered early");
        }
        *by_status.entry(job.status.as_str().to_owned()).or_default() += 1;
    }

    // The dashboard, once the projection has caught up, equals the event store.
    let stats: Value = app.get("/api/v1/jobs/stats").await.json().await.unwrap();
    let shown: BTreeMap<String, i64> = stats["by_status"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| {
            (
                pair[0].as_str().unwrap().to_owned(),
                pair[1].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(shown, by_status);
    assert_eq!(stats["jobs"], JOBS);
    assert_eq!(stats["attempts_ended"], ended);
    assert_eq!(stats["attempts_failed"], failed);
    assert_eq!(stats["retries"], retries);
    let per_minute: BTreeMap<String, i64> = stats["per_minute"]
        .as_array()
        .unwrap()
        .iter()
        .map(|bucket| {
            let start = bucket["start"].as_str().unwrap();
            (
                start[..16].to_owned(),
                bucket["succeeded"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(per_minute, succeeded_per_minute);
    assert!(by_status.get("succeeded").is_some_and(|n| *n > 0));
    assert!(
        failed > 0 && retries > 0,
        "the run exercised failures and retries"
    );
}
