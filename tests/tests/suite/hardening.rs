//! Hardening: health that cannot go dark, limits keyed on what is proven, errors mapped by their
//! cause, and caps on live streams.

use reqwest::{Method, StatusCode};
use serde_json::Value;
use uuid::Uuid;

use std::time::Duration;

use serde_json::json;

use crate::helpers::{assert_problem, spawn_app_with, TestApp};

fn limited(app_settings: &mut api::config::Settings) {
    app_settings.rate_limit.enabled = true;
    app_settings.rate_limit.anonymous_per_minute = 5;
    app_settings.rate_limit.per_ip_per_minute = 20;
    app_settings.rate_limit.refused_credentials_per_minute = 10;
}

async fn status_of(request: reqwest::RequestBuilder) -> StatusCode {
    request.send().await.unwrap().status()
}

#[tokio::test]
async fn health_answers_while_anonymous_requests_from_the_same_address_are_refused() {
    let app = spawn_app_with(limited).await;
    let mut refused = 0;
    for _ in 0..20 {
        let anonymous = app.anonymous(Method::GET, "/api/v1/users");
        match status_of(anonymous).await {
            StatusCode::TOO_MANY_REQUESTS => refused += 1,
            status => assert_eq!(status, StatusCode::UNAUTHORIZED),
        }
    }
    assert!(refused > 0, "the anonymous limit is met");
    for path in [
        "/health/live",
        "/health/ready",
        "/health/projections",
        "/metrics",
    ] {
        for _ in 0..30 {
            let status = status_of(app.anonymous(Method::GET, path)).await;
            assert_eq!(status, StatusCode::OK, "{path}");
        }
    }
    // Backlogs come from the partitions' consumers, once the projection created them.
    crate::helpers::wait_until(
        "metrics show each partition's backlog",
        Duration::from_secs(30),
        || async {
            let metrics = app
                .anonymous(Method::GET, "/metrics")
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            metrics.contains("projection_pending_messages{projection=\"users\",partition=\"0\"} ")
        },
    )
    .await;
}

#[tokio::test]
async fn a_new_made_up_key_on_every_request_meets_the_limits_of_its_address() {
    let app = spawn_app_with(limited).await;
    let mut statuses = Vec::new();
    for _ in 0..40 {
        let made_up = format!("acme.{}.{}", Uuid::now_v7(), "0".repeat(64));
        let request = app
            .anonymous(Method::GET, "/api/v1/users")
            .header("x-api-key", made_up);
        statuses.push(status_of(request).await);
    }
    let first_limited = statuses
        .iter()
        .position(|status| *status == StatusCode::TOO_MANY_REQUESTS)
        .expect("made-up keys meet a limit");
    assert!(
        statuses[..first_limited]
            .iter()
            .all(|status| *status == StatusCode::UNAUTHORIZED),
        "{statuses:?}"
    );
    assert!(
        statuses[first_limited..]
            .iter()
            .all(|status| *status == StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    assert!(first_limited <= 11, "{statuses:?}");
    // Health is never limited.
    let health = status_of(app.anonymous(Method::GET, "/health/ready")).await;
    assert_eq!(health, StatusCode::OK);
}

#[tokio::test]
async fn a_proxy_names_the_client_only_when_it_is_trusted() {
    let app = spawn_app_with(|settings| {
        limited(settings);
        settings.http.trusted_proxies = vec!["127.0.0.1".to_owned()];
    })
    .await;
    // Behind the trusted proxy, each client has its own anonymous budget.
    for client in ["198.51.100.1", "198.51.100.2"] {
        let statuses: Vec<StatusCode> = futures::future::join_all((0..5).map(|_| {
            app.anonymous(Method::GET, "/api/v1/users")
                .header("x-forwarded-for", client)
                .send()
        }))
        .await
        .into_iter()
        .map(|response| response.unwrap().status())
        .collect();
        assert!(
            statuses.iter().all(|s| *s == StatusCode::UNAUTHORIZED),
            "{client}: {statuses:?}"
        );
    }
    let sixth = app
        .anonymous(Method::GET, "/api/v1/users")
        .header("x-forwarded-for", "198.51.100.1")
        .send()
        .await
        .unwrap();
    assert_problem(sixth, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
}

#[tokio::test]
async fn an_event_that_does_not_decode_is_a_500_not_a_503() {
    let app = spawn_app_with(|_| {}).await;
    let (id, _) = app.registered_user("decode@example.org", "Decode").await;
    // A row this build cannot decode: its metadata's `recorded_at` is not a time.
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                             payload, metadata)
         VALUES ('User', $1, 2, 'UserDisplayNameChanged', '1.0', '{}',
                 '{\"tenant_id\": \"acme\", \"recorded_at\": \"not a time\"}')",
    )
    .bind(format!("acme:{id}"))
    .execute(&app.pool)
    .await
    .unwrap();
    let response = app.rename_user(&id, "Renamed").await;
    assert!(!response.headers().contains_key("retry-after"));
    let problem: Value = assert_problem(
        response,
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal_error",
    )
    .await;
    assert!(
        !problem["detail"].as_str().unwrap().contains("recorded_at"),
        "details stay in the logs: {problem}"
    );
}

#[tokio::test]
async fn live_streams_meet_their_cap_per_principal_and_free_it_when_closed() {
    let app = spawn_app_with(|settings| {
        settings.http.live_streams_per_principal = 3;
        settings.http.live_streams_per_process = 5;
    })
    .await;
    // One live stream opened with `key`.
    let open_with = |key: String| {
        let request = app
            .anonymous(Method::GET, "/api/v1/jobs/live")
            .header("x-api-key", key);
        async move { request.send().await.unwrap() }
    };
    let open = || open_with(app.admin_key.clone());
    let mut held = Vec::new();
    for _ in 0..3 {
        let response = open().await;
        assert_eq!(response.status(), StatusCode::OK);
        held.push(response);
    }
    let over = open().await;
    assert!(over.headers().contains_key("retry-after"));
    assert_problem(over, StatusCode::TOO_MANY_REQUESTS, "too_many_streams").await;

    // Another principal has its own budget, until the process is full.
    let (_, other) = app.api_key_with_roles(&["admin"]).await;
    let open_other = || open_with(other.clone());
    let mut other_held = Vec::new();
    for _ in 0..2 {
        let response = open_other().await;
        assert_eq!(response.status(), StatusCode::OK);
        other_held.push(response);
    }
    assert_problem(
        open_other().await,
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_streams",
    )
    .await;

    // Closing a stream frees its place (the server notices the closed connection).
    drop(held.pop());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let response = open().await;
        if response.status() == StatusCode::OK {
            held.push(response);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "a closed stream frees its place"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Another tenant's admin sees none of acme's parked streams or errors and may not rebuild; an
/// operator sees them, and a tenant's admin cannot make itself one.
pub(crate) async fn operator_scope(app: &TestApp, parked: &str) {
    let other_admin = app.admin_key_of("globex").await;
    let as_other = |method: Method, path: &str| {
        app.anonymous(method, path)
            .header("x-api-key", &other_admin)
    };
    let overview: Value = as_other(Method::GET, "/api/v1/admin/projections")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let users = overview["projections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "users")
        .unwrap();
    assert_eq!(users["parked_streams"], 0, "{users}");
    assert!(users["last_error"].is_null(), "{users}");
    let listed: Value = as_other(Method::GET, "/api/v1/admin/projections/users/parked")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed, json!([]));
    for key in [&other_admin, &app.admin_key] {
        let rebuild = app
            .anonymous(Method::POST, "/api/v1/admin/projections/users/rebuild")
            .header("x-api-key", key)
            .send()
            .await
            .unwrap();
        assert_problem(rebuild, StatusCode::FORBIDDEN, "forbidden").await;
    }
    let retry_elsewhere = app
        .post(&format!(
            "/api/v1/admin/projections/users/parked/{parked}/retry?tenant=globex"
        ))
        .send()
        .await
        .unwrap();
    assert_problem(retry_elsewhere, StatusCode::FORBIDDEN, "forbidden").await;
    let granted = app
        .post_json(
            "/api/v1/api-keys",
            &json!({ "name": "escalate", "roles": ["operator"] }),
        )
        .await;
    assert_eq!(granted.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let operator = app.operator_key().await;
    let listed: Value = app
        .anonymous(Method::GET, "/api/v1/admin/projections/users/parked")
        .header("x-api-key", &operator)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|stream| stream["aggregate_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [format!("acme:{parked}")]);
}

#[tokio::test]
async fn names_with_bidirectional_or_invisible_characters_are_refused_with_a_field_error() {
    let app = spawn_app_with(|_| {}).await;
    for (name, code_point) in [("Ada\u{202E}ecalevol", "U+202E"), ("Ada\u{200B}", "U+200B")] {
        let response = app.register_user("bidi@example.org", name).await;
        let problem = assert_problem(
            response,
            reqwest::StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
        let field = &problem["errors"][0];
        assert_eq!(field["field"], "display_name", "{problem}");
        assert!(
            field["message"].as_str().unwrap().contains(code_point),
            "{problem}"
        );
    }
    let created = app
        .post_json(
            "/api/v1/api-keys",
            &json!({ "name": "ci\u{2066}", "roles": ["worker"] }),
        )
        .await;
    assert_eq!(created.status(), reqwest::StatusCode::UNPROCESSABLE_ENTITY);
}
