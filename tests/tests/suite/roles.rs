//! Commands, queries and workers served separately: one store, three backends with one role
//! each, the query side reading from a streaming replica of the primary.

use std::time::Duration;

use api::config::{Roles, Secret, Settings};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_with_settings, test_settings, wait_until, TestApp};
use crate::replica::replica;

fn with_roles(base: &Settings, roles: &str) -> Settings {
    let mut settings = base.clone();
    settings.roles = Roles::parse(roles).unwrap();
    settings
}

/// What `app` answers to `method path` with its admin key.
async fn status(app: &TestApp, method: Method, path: &str) -> StatusCode {
    app.request(method, path)
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .status()
}

fn is_not_served(status: StatusCode) -> bool {
    status == StatusCode::NOT_FOUND || status == StatusCode::METHOD_NOT_ALLOWED
}

#[tokio::test]
async fn commands_queries_and_workers_run_apart_with_queries_on_a_replica() {
    let base = test_settings().await;
    let replica = replica().await;
    let read_url = replica.wait_for_database(base.database.url.expose()).await;

    let commands = spawn_with_settings(with_roles(&base, "commands")).await;
    let mut query_settings = with_roles(&base, "queries");
    query_settings.database.read_url = Some(Secret::new(read_url));
    query_settings.queries.consistency_wait_ms = 1_000;
    let queries = spawn_with_settings(query_settings).await;
    // The relay polls only every ten minutes: what the commands process appends reaches it
    // through the wake-up it forwards over Postgres.
    let mut worker_settings = with_roles(&base, "workers");
    worker_settings.relay.poll_interval_ms = 600_000;
    let workers = spawn_with_settings(worker_settings).await;

    // Each side answers its own routes only; every process serves health and the document.
    let (user, token) = commands.registered_user("ada@example.org", "Ada").await;
    let user_path = format!("/api/v1/users/{user}");
    for (app, side) in [(&commands, "commands"), (&workers, "workers")] {
        let response = app.get(&user_path).await;
        assert_problem(response, StatusCode::NOT_FOUND, "route_not_found").await;
        assert!(
            is_not_served(status(app, Method::GET, "/api/v1/jobs").await),
            "the {side} process serves a query"
        );
    }
    for (app, side) in [(&queries, "queries"), (&workers, "workers")] {
        assert!(
            is_not_served(status(app, Method::POST, "/api/v1/users").await),
            "the {side} process serves a command"
        );
    }
    for app in [&commands, &queries, &workers] {
        assert_eq!(app.get("/health/live").await.status(), StatusCode::OK);
        let document: Value = app.get("/api/v1/openapi.json").await.json().await.unwrap();
        assert!(document["paths"]["/health/ready"].is_object());
    }
    let documented =
        |document: &Value, path: &str, method: &str| document["paths"][path][method].is_object();
    let command_doc: Value = commands
        .get("/api/v1/openapi.json")
        .await
        .json()
        .await
        .unwrap();
    let query_doc: Value = queries
        .get("/api/v1/openapi.json")
        .await
        .json()
        .await
        .unwrap();
    assert!(documented(&command_doc, "/api/v1/users", "post"));
    assert!(!documented(&command_doc, "/api/v1/users", "get"));
    assert!(documented(&query_doc, "/api/v1/users", "get"));
    assert!(!documented(&query_doc, "/api/v1/users", "post"));

    // The workers process projects; the query process reads the projection off the replica.
    let read_with = |token: String| {
        let request = queries
            .request(Method::GET, &user_path)
            .header("x-consistency-token", token);
        async move { request.send().await.unwrap() }
    };
    wait_until(
        "the registration is readable on the query side",
        Duration::from_secs(90),
        || async { read_with(token.clone()).await.status() == StatusCode::OK },
    )
    .await;
    let body: Value = read_with(token.clone()).await.json().await.unwrap();
    assert_eq!(body["display_name"], "Ada");

    // A replica that lags: a token newer than what it shows gets 503, never the older row.
    replica.pause_replay().await;
    let renamed: Value = commands
        .post_json(
            &format!("{user_path}/display-name"),
            &json!({ "display_name": "Ada Lovelace" }),
        )
        .await
        .json()
        .await
        .unwrap();
    let newer = renamed["consistency_token"].as_str().unwrap().to_owned();
    let primary = commands.pool.clone();
    wait_until(
        "the workers process applied the rename on the primary",
        Duration::from_secs(30),
        || async {
            let name: Option<String> = sqlx::query_scalar(
                "SELECT display_name FROM read_models.users WHERE user_id = $1::uuid",
            )
            .bind(&user)
            .fetch_optional(&primary)
            .await
            .unwrap();
            name.as_deref() == Some("Ada Lovelace")
        },
    )
    .await;
    replica.wait_until_received().await;
    let behind = queries
        .request(Method::GET, &user_path)
        .header("x-consistency-token", &newer)
        .send()
        .await
        .unwrap();
    assert_problem(behind, StatusCode::SERVICE_UNAVAILABLE, "projection_behind").await;
    // Without a token, the replica's (older) state is a legitimate answer.
    let stale: Value = queries.get(&user_path).await.json().await.unwrap();
    assert_eq!(stale["display_name"], "Ada");

    replica.resume_replay().await;
    let fresh = queries
        .request(Method::GET, &user_path)
        .header("x-consistency-token", &newer)
        .send()
        .await
        .unwrap();
    assert_eq!(fresh.status(), StatusCode::OK);
    let body: Value = fresh.json().await.unwrap();
    assert_eq!(body["display_name"], "Ada Lovelace");
}
