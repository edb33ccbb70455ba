//! A database outage under write load: the backend's own Postgres server is stopped and started
//! again while clients keep sending commands.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use api::config::Secret;
use reqwest::StatusCode;

use crate::helpers::{spawn_with_settings, test_settings, wait_until};
use crate::pg::PrivatePostgres;

/// Commands during the outage fail with 503 and `Retry-After` (never a 500, never a hang past
/// the request timeout), succeed again once Postgres is back, and the relay and the projections
/// resume by themselves: every stored event reaches the read model, which equals a replay.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_stopped_and_started_under_write_load_loses_nothing() {
    let postgres = PrivatePostgres::start().await;
    let mut settings = test_settings().await;
    settings.database.url = Secret::new(postgres.url());
    settings.database.migrate_on_start = true;
    settings.http.request_timeout_ms = 5_000;
    let app = Arc::new(spawn_with_settings(settings).await);

    let stop = Arc::new(AtomicBool::new(false));
    let accepted = Arc::new(AtomicUsize::new(0));
    let unavailable = Arc::new(AtomicUsize::new(0));
    let mut writers = Vec::new();
    for writer in 0..4 {
        let (app, stop) = (app.clone(), stop.clone());
        let (accepted, unavailable) = (accepted.clone(), unavailable.clone());
        writers.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let email = format!("outage{writer}-{n}@example.org");
                let Ok(response) = app
                    .post("/api/v1/users")
                    .json(&serde_json::json!({ "email": email, "display_name": "Outage" }))
                    .send()
                    .await
                else {
                    continue;
                };
                match response.status() {
                    StatusCode::CREATED => {
                        accepted.fetch_add(1, Ordering::Relaxed);
                    }
                    StatusCode::SERVICE_UNAVAILABLE => {
                        assert!(response.headers().contains_key("retry-after"));
                        unavailable.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    other => panic!(
                        "a command during the outage answered {other}: {}",
                        response.text().await.unwrap_or_default()
                    ),
                }
            }
        }));
    }
    wait_until("commands are accepted", Duration::from_secs(60), || async {
        accepted.load(Ordering::Relaxed) >= 50
    })
    .await;
    postgres.stop().await;
    wait_until(
        "commands are refused with 503 while Postgres is down",
        Duration::from_secs(60),
        || async { unavailable.load(Ordering::Relaxed) >= 10 },
    )
    .await;
    postgres.start_again().await;
    let before_restart = accepted.load(Ordering::Relaxed);
    wait_until(
        "commands are accepted again",
        Duration::from_secs(60),
        || async { accepted.load(Ordering::Relaxed) >= before_restart + 50 },
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.await.unwrap();
    }
    let stored = app.user_events().await;
    assert!(stored >= accepted.load(Ordering::Relaxed) as i64);
    wait_until(
        "the relay and the projection resume and apply every stored event",
        Duration::from_secs(120),
        || async { app.projection_counts("users").await.0 >= stored },
    )
    .await;
    app.assert_users_read_model_is_a_replay().await;
    assert_eq!(app.get("/health/ready").await.status(), StatusCode::OK);
}
