//! A tenant's settings as its callers meet them: quotas that refuse with a problem naming
//! them, limits and policies that take effect on the next request, without a restart.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_app, spawn_app_with, wait_until};
use crate::tenants::{call, own_tenant, set_settings, suspend_acme};

#[tokio::test]
async fn the_jobs_per_day_quota_refuses_the_next_job_naming_itself() {
    let app = spawn_app().await;
    let operator = app.operator_key().await;
    set_settings(&app, &operator, json!({"quota_jobs_per_day": 1})).await;
    let document = app.uploaded_document(&app.admin_key).await;
    app.submitted_job(&app.admin_key, &document).await;
    wait_until("usage counts the job", Duration::from_secs(30), || async {
        own_tenant(&app).await["usage"]["jobs_today"] == 1
    })
    .await;
    let refused = app
        .post_json(
            "/api/v1/jobs",
            &json!({"kind": "translation", "source_language": "en", "target_language": "de",
                    "document_id": document}),
        )
        .await;
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=86_400).contains(&retry_after),
        "until the next UTC day: {retry_after}"
    );
    let problem = assert_problem(refused, StatusCode::TOO_MANY_REQUESTS, "quota_exceeded").await;
    assert_eq!(problem["errors"][0]["field"], "quota_jobs_per_day");
    // Raising the quota takes effect on the next request.
    set_settings(&app, &operator, json!({"quota_jobs_per_day": 2})).await;
    app.submitted_job(&app.admin_key, &document).await;
    app.stop().await;
}

#[tokio::test]
async fn the_stored_bytes_quota_refuses_an_upload_that_does_not_fit() {
    let app = spawn_app().await;
    let operator = app.operator_key().await;
    // `uploaded_document` stores 14 bytes.
    set_settings(&app, &operator, json!({"quota_stored_bytes": 20})).await;
    app.uploaded_document(&app.admin_key).await;
    wait_until(
        "usage counts the document",
        Duration::from_secs(30),
        || async { own_tenant(&app).await["usage"]["stored_bytes"] == 14 },
    )
    .await;
    let over = app
        .upload(&app.admin_key, b"Hello, world.\n".to_vec(), "text/plain")
        .await;
    let problem = assert_problem(over, StatusCode::UNPROCESSABLE_ENTITY, "quota_exceeded").await;
    assert_eq!(problem["errors"][0]["field"], "quota_stored_bytes");
    let fits = app
        .upload(&app.admin_key, b"Hi.\n".to_vec(), "text/plain")
        .await;
    assert_eq!(fits.status(), StatusCode::CREATED);
    wait_until("usage counts both", Duration::from_secs(30), || async {
        own_tenant(&app).await["usage"]["stored_bytes"] == 18
    })
    .await;
    let full = app
        .upload(&app.admin_key, b"Hi.\n".to_vec(), "text/plain")
        .await;
    assert_problem(full, StatusCode::UNPROCESSABLE_ENTITY, "quota_exceeded").await;
    app.stop().await;
}

#[tokio::test]
async fn settings_take_effect_without_a_restart() {
    let app = spawn_app_with(|settings| settings.rate_limit.enabled = true).await;
    let operator = app.operator_key().await;
    let document = app.uploaded_document(&app.admin_key).await;
    set_settings(
        &app,
        &operator,
        json!({"job_max_attempts": 1, "job_lease_secs": 45, "document_max_bytes": 10}),
    )
    .await;
    // Jobs are submitted with the tenant's attempts, claimed with its lease.
    let job = app.submitted_job(&app.admin_key, &document).await;
    let view: Value = app
        .get(&format!("/api/v1/jobs/{job}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(view["job"]["max_attempts"], 1, "{view}");
    let (_, worker) = app.api_key_with_roles(&["worker"]).await;
    let claimed = call(
        &app,
        &worker,
        Method::POST,
        "/api/v1/worker/claim",
        Some(json!({"kinds": ["translation"]})),
    )
    .await;
    assert_eq!(claimed.status(), StatusCode::OK);
    let claimed: Value = claimed.json().await.unwrap();
    let expires: chrono::DateTime<chrono::Utc> = claimed["lease_expires_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let lease = expires - chrono::Utc::now();
    assert!(
        lease <= chrono::TimeDelta::seconds(45) && lease > chrono::TimeDelta::seconds(30),
        "{lease}"
    );
    // Uploads are held to the tenant's own limit.
    let large = app
        .upload(&app.admin_key, b"Hello, world.\n".to_vec(), "text/plain")
        .await;
    assert_problem(large, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    // A rate of the tenant's own: two commands a minute, the third refused.
    set_settings(&app, &operator, json!({"commands_per_minute": 2})).await;
    let mut statuses = Vec::new();
    for n in 0..3 {
        let response = app
            .post_json(
                "/api/v1/users",
                &json!({"email": format!("u{n}@acme.example"), "display_name": "U"}),
            )
            .await;
        statuses.push(response.status());
    }
    assert_eq!(
        statuses,
        [
            StatusCode::CREATED,
            StatusCode::CREATED,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
    app.stop().await;
}

#[tokio::test]
async fn a_tenants_settings_narrow_its_document_types_and_can_close_its_public_pages() {
    let app = spawn_app().await;
    let operator = app.operator_key().await;
    set_settings(&app, &operator, json!({"document_types": ["pdf"]})).await;
    let text = app
        .upload(&app.admin_key, b"Hello, world.\n".to_vec(), "text/plain")
        .await;
    assert_problem(
        text,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "content_type_not_allowed",
    )
    .await;
    let duplicates = call(
        &app,
        &operator,
        Method::PUT,
        "/api/v1/admin/tenants/acme/settings",
        Some(json!({"document_types": ["pdf", "pdf"]})),
    )
    .await;
    assert_problem(duplicates, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body").await;
    let none = call(
        &app,
        &operator,
        Method::PUT,
        "/api/v1/admin/tenants/acme/settings",
        Some(json!({"document_types": []})),
    )
    .await;
    let problem = assert_problem(none, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "document_types");

    // The admin opens the public pages; the tenant's settings close them, and so does a
    // suspension, at once; both lifted, they are open again.
    let opened = app
        .request(Method::PUT, "/api/v1/community/settings")
        .json(&json!({"public_pages": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(opened.status(), StatusCode::OK);
    let public = || async {
        app.anonymous(Method::GET, "/api/v1/public/acme/categories")
            .send()
            .await
            .unwrap()
    };
    wait_until("the public pages open", Duration::from_secs(30), || async {
        public().await.status() == StatusCode::OK
    })
    .await;
    set_settings(&app, &operator, json!({"public_community_pages": false})).await;
    assert_problem(
        public().await,
        StatusCode::NOT_FOUND,
        "public_pages_not_found",
    )
    .await;
    set_settings(&app, &operator, json!({})).await;
    assert_eq!(public().await.status(), StatusCode::OK);
    let suspended = suspend_acme(&app, &operator, "review").await;
    assert_eq!(suspended.status(), StatusCode::OK);
    assert_problem(
        public().await,
        StatusCode::NOT_FOUND,
        "public_pages_not_found",
    )
    .await;
    app.stop().await;
}
