//! Faults: a relay crash between publish and checkpoint, duplicates past the dedupe window, and
//! a NATS outage.

use std::time::Duration;

use async_nats::HeaderMap;
use commands::relay::{RelayError, RelayFault};
use domain::event::RecordedEvent;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{spawn_app_with, spawn_with_settings, test_settings, wait_until, PrivateNats};

#[tokio::test]
async fn a_relay_crash_after_publish_republishes_without_duplicate_effects() {
    let app = spawn_app_with(|settings| settings.relay.enabled = false).await;
    let (ada, _) = app.registered_user("ada@example.org", "Ada").await;
    let (alan, _) = app.registered_user("alan@example.org", "Alan").await;
    for n in 0..3 {
        assert_eq!(
            app.rename_user(&ada, &format!("Ada {n}")).await.status(),
            StatusCode::OK
        );
    }
    assert_eq!(
        app.rename_user(&alan, "Alan Turing").await.status(),
        StatusCode::OK
    );
    let total = app.event_count().await;
    assert_eq!(total, 6);

    let crashed = app
        .relay
        .relay_once(Some(RelayFault::AfterPublishBeforeCheckpoint))
        .await;
    assert!(
        matches!(crashed, Err(RelayError::Injected(_))),
        "{crashed:?}"
    );
    assert_eq!(
        app.relay.checkpoint().await.unwrap(),
        Default::default(),
        "checkpoint did not move"
    );

    // The restarted relay publishes the same batch again; JetStream drops every copy.
    let outcome = app.relay.relay_once(None).await.unwrap();
    assert_eq!(outcome.published, 6);
    assert_eq!(outcome.duplicates, 6);
    app.wait_for_users_projection().await;
    assert_eq!(app.projection_counts("users").await, (total, 0));
    assert_eq!(app.users_read_model().await, app.users_replayed().await);

    // Copies that escape the duplicate window (new message ids) are stopped by the guard.
    let stream = app
        .jetstream
        .get_stream(&app.settings.nats.stream)
        .await
        .unwrap();
    for sequence in 1..=6 {
        let message = stream.get_raw_message(sequence).await.unwrap();
        let event: RecordedEvent = serde_json::from_slice(&message.payload).unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            "Nats-Msg-Id",
            format!("{}-replayed", event.message_id()).as_str(),
        );
        app.jetstream
            .publish_with_headers(
                message.subject.to_string(),
                headers,
                message.payload.clone(),
            )
            .await
            .unwrap()
            .await
            .unwrap();
    }
    wait_until(
        "the guard skips all six replayed copies",
        Duration::from_secs(30),
        || async { app.projection_counts("users").await.1 == 6 },
    )
    .await;
    assert_eq!(app.projection_counts("users").await, (total, 6));
    assert_eq!(app.users_read_model().await, app.users_replayed().await);
}

#[tokio::test]
async fn commands_are_accepted_while_nats_is_down_and_the_read_model_converges() {
    let mut nats = PrivateNats::start().await;
    let mut settings = test_settings().await;
    settings.nats.url = api::config::Secret::new(nats.url.clone());
    let app = spawn_with_settings(settings).await;
    let (ada, token) = app.registered_user("ada@example.org", "Ada").await;
    assert_eq!(
        app.get_user_with_token(&ada, &token).await.status(),
        StatusCode::OK
    );

    nats.stop().await;
    wait_until(
        "readiness reports the bus down",
        Duration::from_secs(30),
        || async {
            let response = app.get("/health/ready").await;
            let status = response.status();
            let body: Value = response.json().await.unwrap();
            status == StatusCode::SERVICE_UNAVAILABLE && body["checks"]["nats"] != "ok"
        },
    )
    .await;
    let mut ids = vec![ada.clone()];
    for n in 0..3 {
        let (id, _) = app
            .registered_user(&format!("offline{n}@example.org"), "Offline")
            .await;
        ids.push(id);
    }
    assert_eq!(
        app.rename_user(&ada, "Ada, offline").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.event_count().await,
        5,
        "commands are stored while the bus is down"
    );

    let offline_rows = app.users_read_model().await.len();
    assert!(
        offline_rows < 4,
        "the new users cannot reach the read model without the bus"
    );

    nats.restart().await;
    app.wait_for_users_projection().await;
    let rows = app.users_read_model().await;
    assert_eq!(rows.len(), 4);
    assert_eq!(rows, app.users_replayed().await);
    let user: Value = app
        .get(&format!("/api/v1/users/{ada}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(user["display_name"], "Ada, offline");
}
