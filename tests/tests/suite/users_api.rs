//! The users slice over HTTP: commands, queries, read-your-writes, bad input, concurrency.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_app, spawn_app_with};

#[tokio::test]
async fn a_registered_user_is_visible_with_the_returned_token() {
    let app = spawn_app().await;
    let response = app.register_user("Ada.Lovelace@Example.org", "Ada").await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(response.headers()["etag"], "\"1\"");
    let body: Value = response.json().await.unwrap();
    let id = body["aggregate_id"].as_str().unwrap();
    assert_eq!(location, format!("/api/v1/users/{id}"));
    assert_eq!(body["version"], 1);

    // No sleep, no retry: the token makes the query wait for the projection.
    let response = app
        .get_user_with_token(id, body["consistency_token"].as_str().unwrap())
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let user: Value = response.json().await.unwrap();
    assert_eq!(user["id"], id);
    assert_eq!(user["email"], "ada.lovelace@example.org");
    assert_eq!(user["display_name"], "Ada");
    assert_eq!(user["status"], "active");
    assert_eq!(user["version"], 1);
}

#[tokio::test]
async fn every_command_changes_what_queries_show() {
    let app = spawn_app().await;
    let (id, _) = app.registered_user("grace@example.org", "Grace").await;

    let user = app
        .user_after(app.rename_user(&id, "Grace Hopper").await)
        .await;
    assert_eq!(
        (&user["display_name"], &user["version"]),
        (&json!("Grace Hopper"), &json!(2))
    );

    let deactivate = app
        .post_json(&format!("/api/v1/users/{id}/deactivate"), &json!({}))
        .await;
    let user = app.user_after(deactivate).await;
    assert_eq!(user["status"], "deactivated");

    // Acting on a deactivated user is refused by the aggregate.
    let response = app.rename_user(&id, "Amazing Grace").await;
    assert_problem(response, StatusCode::CONFLICT, "user_deactivated").await;

    let reactivate = app
        .post_json(&format!("/api/v1/users/{id}/reactivate"), &json!({}))
        .await;
    let user = app.user_after(reactivate).await;
    assert_eq!(
        (&user["status"], &user["version"]),
        (&json!("active"), &json!(4))
    );
    assert_eq!(app.user_events().await, 4);
}

#[tokio::test]
async fn pages_walk_every_user_once() {
    let app = spawn_app().await;
    let mut registered = Vec::new();
    let mut last_token = String::new();
    for n in 0..7 {
        let (id, token) = app
            .registered_user(&format!("user{n}@example.org"), &format!("User {n}"))
            .await;
        registered.push(id);
        last_token = token;
    }
    // Waiting for the last registration is not enough on its own (other streams may lag), so
    // wait for all of them before paging.
    app.wait_for_users_projection().await;
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut url = format!("/api/v1/users?limit=3&consistency_token={last_token}");
        if let Some(after) = &after {
            url.push_str(&format!("&after={after}"));
        }
        let page: Value = app.get(&url).await.json().await.unwrap();
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 3);
        seen.extend(items.iter().map(|u| u["id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(cursor) => after = Some(cursor.to_owned()),
            None => break,
        }
    }
    registered.sort();
    assert_eq!(seen, registered);

    for bad in [
        "limit=0",
        "limit=101",
        "limit=abc",
        "after=not-a-uuid",
        "colour=blue",
    ] {
        let response = app.get(&format!("/api/v1/users?{bad}")).await;
        let code = if bad.starts_with("limit=0") || bad.starts_with("limit=101") {
            "invalid_limit"
        } else {
            "invalid_query"
        };
        assert_problem(response, StatusCode::BAD_REQUEST, code).await;
    }
}

#[tokio::test]
async fn bad_input_is_a_clear_problem_and_appends_nothing() {
    let app = spawn_app().await;
    let events_before = app.all_events().await;
    let send = |body: &'static str, content_type: &'static str| {
        app.post("/api/v1/users")
            .header("content-type", content_type)
            .body(body)
            .send()
    };

    // (body, content type, status, code, what the detail must name)
    let cases = [
        (
            "{\"email\": ",
            "application/json",
            StatusCode::BAD_REQUEST,
            "malformed_json",
            "JSON",
        ),
        (
            r#"{"email":"a@example.org","display_name":"A"}"#,
            "text/plain",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "application/json",
        ),
        (
            r#"{"display_name":"A"}"#,
            "application/json",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            "missing field `email`",
        ),
        (
            r#"{"email":42,"display_name":"A"}"#,
            "application/json",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            "invalid type",
        ),
        (
            r#"{"email":"a@example.org","display_name":"A","role":"admin"}"#,
            "application/json",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            "unknown field `role`",
        ),
    ];
    for (body, content_type, status, code, named) in cases {
        let problem = assert_problem(send(body, content_type).await.unwrap(), status, code).await;
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains(named), "{body:?}: {detail}");
    }

    let body = assert_problem(
        app.register_user("not-an-email", &"x".repeat(65)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["email", "display_name"]);
    assert_eq!(body["errors"][0]["code"], "invalid_email");
    assert_eq!(body["errors"][1]["code"], "display_name_length");
    let long_email = format!("{}@example.org", "a".repeat(300));
    assert_problem(
        app.register_user(&long_email, "A").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;

    let unknown = uuid::Uuid::now_v7();
    assert_problem(
        app.rename_user(&unknown.to_string(), "A").await,
        StatusCode::NOT_FOUND,
        "user_not_found",
    )
    .await;
    assert_problem(
        app.get(&format!("/api/v1/users/{unknown}")).await,
        StatusCode::NOT_FOUND,
        "user_not_found",
    )
    .await;
    assert_problem(
        app.get("/api/v1/users/12345").await,
        StatusCode::BAD_REQUEST,
        "invalid_id",
    )
    .await;
    assert_problem(
        app.rename_user("12345", "A").await,
        StatusCode::BAD_REQUEST,
        "invalid_id",
    )
    .await;
    assert_problem(
        app.post_json("/api/v1/users/not-a-uuid/deactivate", &json!({}))
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_id",
    )
    .await;
    assert_problem(
        app.get("/api/v1/nothing-here").await,
        StatusCode::NOT_FOUND,
        "route_not_found",
    )
    .await;
    assert_problem(
        app.request(reqwest::Method::DELETE, "/api/v1/users")
            .send()
            .await
            .unwrap(),
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    )
    .await;
    assert_problem(
        app.request(reqwest::Method::GET, &format!("/api/v1/users/{unknown}"))
            .header("x-consistency-token", "garbage")
            .send()
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
        "invalid_consistency_token",
    )
    .await;

    assert_eq!(
        app.user_events().await,
        0,
        "no bad request may append an event"
    );
    assert_eq!(
        app.all_events().await,
        events_before,
        "no bad request may append an event"
    );
}

#[tokio::test]
async fn concurrent_commands_on_one_user_one_wins_the_other_gets_409() {
    let app = spawn_app().await;
    let (id, _) = app.registered_user("edsger@example.org", "Edsger").await;
    let rename = |name: &'static str| {
        app.post(&format!("/api/v1/users/{id}/display-name"))
            .header("if-match", "\"1\"")
            .json(&json!({ "display_name": name }))
            .send()
    };
    let (first, second) = tokio::join!(rename("E. W. Dijkstra"), rename("Edsger Dijkstra"));
    let mut statuses = [first.unwrap(), second.unwrap()];
    statuses.sort_by_key(|r| r.status());
    let [winner, loser] = statuses;
    assert_eq!(winner.status(), StatusCode::OK);
    assert_eq!(loser.status(), StatusCode::CONFLICT);
    let body: Value = loser.json().await.unwrap();
    assert!(
        ["version_mismatch", "concurrent_modification"].contains(&body["code"].as_str().unwrap()),
        "{body}"
    );
    assert_eq!(app.user_events().await, 2);
}

#[tokio::test]
async fn a_stale_if_match_is_a_409_and_a_malformed_one_a_400() {
    let app = spawn_app().await;
    let (id, _) = app.registered_user("barbara@example.org", "Barbara").await;
    assert_eq!(
        app.rename_user(&id, "Barbara Liskov").await.status(),
        StatusCode::OK
    );
    let with_if_match = |value: &'static str| {
        app.post(&format!("/api/v1/users/{id}/deactivate"))
            .header("if-match", value)
            .send()
    };
    assert_problem(
        with_if_match("\"1\"").await.unwrap(),
        StatusCode::CONFLICT,
        "version_mismatch",
    )
    .await;
    assert_problem(
        with_if_match("soon").await.unwrap(),
        StatusCode::BAD_REQUEST,
        "invalid_if_match",
    )
    .await;
    assert_eq!(
        with_if_match("\"2\"").await.unwrap().status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn an_email_is_registered_once_even_under_a_race() {
    let app = spawn_app().await;
    let attempts = futures::future::join_all((0..8).map(|n| {
        app.register_user(
            if n % 2 == 0 {
                "Alan@Example.org"
            } else {
                "alan@example.org"
            },
            "Alan",
        )
    }))
    .await;
    let created = attempts
        .iter()
        .filter(|r| r.status() == StatusCode::CREATED)
        .count();
    assert_eq!(created, 1);
    for response in attempts
        .into_iter()
        .filter(|r| r.status() != StatusCode::CREATED)
    {
        assert_problem(response, StatusCode::CONFLICT, "email_taken").await;
    }
    assert_eq!(app.user_events().await, 1);
}

#[tokio::test]
async fn a_query_never_answers_older_than_its_token() {
    let app = spawn_app_with(|settings| {
        settings.queries.consistency_wait_ms = 300;
        // No projection runs, so the read model can never catch up with the token.
        settings.projections.enabled = false;
    })
    .await;
    let (id, token) = app
        .registered_user("kathleen@example.org", "Kathleen")
        .await;
    let response = app.get_user_with_token(&id, &token).await;
    assert_eq!(response.headers()["retry-after"], "1");
    let body = assert_problem(
        response,
        StatusCode::SERVICE_UNAVAILABLE,
        "projection_behind",
    )
    .await;
    assert!(
        body["detail"].as_str().unwrap().contains("requires 1"),
        "{body}"
    );
}

#[tokio::test]
async fn request_ids_are_echoed_and_named_in_problems() {
    let app = spawn_app().await;
    let response = app
        .request(reqwest::Method::GET, "/api/v1/users/not-a-uuid")
        .header("x-request-id", "req-12345")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "req-12345");
    let body = assert_problem(response, StatusCode::BAD_REQUEST, "invalid_id").await;
    assert_eq!(body["request_id"], "req-12345");

    // A malformed id is replaced, never echoed.
    let response = app
        .anonymous(reqwest::Method::GET, "/health/live")
        .header("x-request-id", "bad id with spaces")
        .send()
        .await
        .unwrap();
    let echoed = response.headers()["x-request-id"].to_str().unwrap();
    assert_ne!(echoed, "bad id with spaces");
    assert!(
        uuid::Uuid::parse_str(echoed).is_ok(),
        "a generated id replaces it: {echoed}"
    );
}

#[tokio::test]
async fn metadata_is_stored_with_every_event() {
    let app = spawn_app().await;
    let response = app
        .post("/api/v1/users")
        .header("x-request-id", "req-meta-1")
        .header("x-correlation-id", "corr-42")
        .json(&json!({ "email": "meta@example.org", "display_name": "Meta" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let metadata: Value =
        sqlx::query_scalar("SELECT metadata::jsonb FROM events WHERE aggregate_type = 'User'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(metadata["request_id"], "req-meta-1");
    assert_eq!(metadata["correlation_id"], "corr-42");
    assert_eq!(metadata["causation_id"], "req-meta-1");
    assert!(
        metadata["actor"].as_str().unwrap().starts_with("key:"),
        "{metadata}"
    );
    assert_eq!(metadata["tenant_id"], "acme");
    assert_eq!(metadata["command"], "RegisterUser");
    assert!(metadata["recorded_at"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn health_and_openapi_are_served() {
    let app = spawn_app().await;
    let live: Value = app.get("/health/live").await.json().await.unwrap();
    assert_eq!(live["status"], "ok");
    let response = app.get("/health/ready").await;
    assert_eq!(response.status(), StatusCode::OK);
    let ready: Value = response.json().await.unwrap();
    assert_eq!(
        ready["checks"],
        json!({ "postgres": "ok", "nats": "ok", "migrations": "ok" })
    );
    let projections = app.get("/health/projections").await;
    assert_eq!(projections.status(), StatusCode::OK);

    let document: Value = app.get("/api/v1/openapi.json").await.json().await.unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1"));
    for path in [
        "/api/v1/users",
        "/api/v1/users/{id}",
        "/api/v1/users/{id}/display-name",
        "/api/v1/users/{id}/deactivate",
        "/api/v1/users/{id}/reactivate",
    ] {
        assert!(
            document["paths"][path].is_object(),
            "{path} missing from the OpenAPI document"
        );
    }
    // The interactive docs are served by the backend itself (no CDN), so they work offline.
    let docs = app.get("/docs/").await;
    assert_eq!(docs.status(), StatusCode::OK);
    let html = docs.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    assert!(
        !html.contains("https://"),
        "the docs page loads nothing from the network"
    );
    assert_eq!(
        app.get("/docs/swagger-ui-bundle.js").await.status(),
        StatusCode::OK
    );

    // Shutting down drains requests and stops the workers cleanly.
    app.stop().await;
}

#[tokio::test]
async fn the_event_store_refuses_to_rewrite_history() {
    let app = spawn_app().await;
    app.registered_user("history@example.org", "History").await;
    for statement in [
        "UPDATE events SET event_type = 'Forged'",
        "DELETE FROM events",
        "TRUNCATE events",
    ] {
        let error = sqlx::query(statement).execute(&app.pool).await.unwrap_err();
        assert!(
            error.to_string().contains("append-only"),
            "{statement}: {error}"
        );
    }
    assert_eq!(app.user_events().await, 1);
}
