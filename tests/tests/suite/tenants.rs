//! Tenants as operators and tenants' own callers meet them: provisioning with a first admin
//! key, settings that take effect without a restart, quotas that refuse with a problem naming
//! them, suspension that refuses credentials at once and loses nothing, and the command line.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_app, spawn_app_with, wait_until, TestApp};
use tests::process::Launch;

/// `method path` with `key`, and `body` as JSON when given.
async fn call(
    app: &TestApp,
    key: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let request = app.anonymous(method, path).header("x-api-key", key);
    let request = match body {
        Some(body) => request.json(&body),
        None => request,
    };
    request.send().await.unwrap()
}

/// Replaces acme's settings as `operator`; returns the command's consistency token.
async fn set_settings(app: &TestApp, operator: &str, settings: Value) -> String {
    let response = call(
        app,
        operator,
        Method::PUT,
        "/api/v1/tenants/acme/settings",
        Some(settings),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["consistency_token"].as_str().unwrap().to_owned()
}

/// Acme's own view (settings, status, usage), as its admin reads it; `null` until the tenants
/// read model has it.
async fn own_tenant(app: &TestApp) -> Value {
    let response = app.get("/api/v1/tenant").await;
    match response.status() {
        StatusCode::OK => response.json().await.unwrap(),
        StatusCode::NOT_FOUND => Value::Null,
        other => panic!("GET /api/v1/tenant answered {other}"),
    }
}

#[tokio::test]
async fn operators_provision_a_tenant_whose_first_admin_key_works_at_once() {
    let app = spawn_app().await;
    let operator = app.operator_key().await;
    let provision = json!({
        "tenant_id": "globex",
        "display_name": "Globex Corporation",
        "settings": {"quota_jobs_per_day": 50, "job_max_attempts": 2}
    });
    let response = call(
        &app,
        &operator,
        Method::POST,
        "/api/v1/tenants",
        Some(provision.clone()),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["location"], "/api/v1/tenants/globex");
    let body: Value = response.json().await.unwrap();
    let key = body["api_key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("globex."), "{key}");

    // The key is the tenant's admin: it registers a user at once, and reads its own tenant.
    let registered = call(
        &app,
        &key,
        Method::POST,
        "/api/v1/users",
        Some(json!({"email": "hank@globex.example", "display_name": "Hank"})),
    )
    .await;
    assert_eq!(registered.status(), StatusCode::CREATED);
    let own = app
        .anonymous(Method::GET, "/api/v1/tenant")
        .header("x-api-key", &key)
        .header(
            "x-consistency-token",
            body["consistency_token"].as_str().unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), StatusCode::OK);
    let own: Value = own.json().await.unwrap();
    assert_eq!(own["tenant_id"], "globex");
    assert_eq!(own["display_name"], "Globex Corporation");
    assert_eq!(own["status"], "active");
    assert_eq!(
        own["settings"],
        json!({"quota_jobs_per_day": 50, "job_max_attempts": 2})
    );
    assert_eq!(own["usage"], json!({"jobs_today": 0, "stored_bytes": 0}));

    // Twice is a conflict; nothing new is issued.
    let again = call(
        &app,
        &operator,
        Method::POST,
        "/api/v1/tenants",
        Some(provision),
    )
    .await;
    assert_problem(again, StatusCode::CONFLICT, "tenant_already_provisioned").await;

    // Every bad field is named.
    let invalid = call(
        &app,
        &operator,
        Method::POST,
        "/api/v1/tenants",
        Some(json!({
            "tenant_id": "no spaces",
            "display_name": "",
            "settings": {"job_max_attempts": 0, "job_lease_secs": 1}
        })),
    )
    .await;
    let problem = assert_problem(
        invalid,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|error| error["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "tenant_id",
            "display_name",
            "settings.job_max_attempts",
            "settings.job_lease_secs"
        ]
    );
    let unknown = call(
        &app,
        &operator,
        Method::PUT,
        "/api/v1/tenants/globex/settings",
        Some(json!({"quota_jobs_per_week": 1})),
    )
    .await;
    assert_problem(unknown, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body").await;

    // Only operators govern tenants; a tenant's admin reads only its own.
    for (method, path, body) in [
        (
            Method::POST,
            "/api/v1/tenants",
            Some(json!({"tenant_id": "x", "display_name": "X"})),
        ),
        (Method::GET, "/api/v1/tenants", None),
        (Method::GET, "/api/v1/tenants/globex", None),
        (
            Method::POST,
            "/api/v1/tenants/globex/suspend",
            Some(json!({"reason": "no"})),
        ),
    ] {
        let refused = call(&app, &app.admin_key, method, path, body).await;
        assert_problem(refused, StatusCode::FORBIDDEN, "forbidden").await;
    }

    // Operators list every tenant with its usage, in id order, a page at a time.
    let first = call(
        &app,
        &operator,
        Method::GET,
        "/api/v1/tenants?limit=1",
        None,
    )
    .await;
    assert_eq!(first.status(), StatusCode::OK);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["items"][0]["tenant_id"], "acme");
    assert_eq!(first["next_cursor"], "acme");
    let rest = call(
        &app,
        &operator,
        Method::GET,
        "/api/v1/tenants?after=acme",
        None,
    )
    .await;
    let rest: Value = rest.json().await.unwrap();
    assert_eq!(rest["items"][0]["tenant_id"], "globex");
    assert_eq!(rest["items"][0]["usage"]["jobs_today"], 0);
    assert!(rest["next_cursor"].is_null());
    app.stop().await;
}

#[tokio::test]
async fn a_suspended_tenant_is_refused_at_once_loses_nothing_and_comes_back_whole() {
    let app = spawn_app().await;
    let operator = app.operator_key().await;
    let (_, worker) = app.api_key_with_roles(&["worker"]).await;
    let document = app.uploaded_document(&app.admin_key).await;
    let job = app.submitted_job(&app.admin_key, &document).await;
    let other = app.admin_key_of("initech").await;
    let events_before: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_id LIKE 'acme:%'")
            .fetch_one(&app.pool)
            .await
            .unwrap();

    let suspended = call(
        &app,
        &operator,
        Method::POST,
        "/api/v1/tenants/acme/suspend",
        Some(json!({"reason": "invoice 2026-11 overdue"})),
    )
    .await;
    assert_eq!(suspended.status(), StatusCode::OK);

    // At once, with no wait for any projection: the admin, the worker and a JWT-less read.
    let refused = app.get("/api/v1/users").await;
    let problem = assert_problem(refused, StatusCode::FORBIDDEN, "tenant_suspended").await;
    assert!(problem["detail"].as_str().unwrap().contains("acme"));
    assert!(
        !problem["detail"].as_str().unwrap().contains("invoice"),
        "the reason is for operators"
    );
    let claim = call(
        &app,
        &worker,
        Method::POST,
        "/api/v1/worker/claim",
        Some(json!({"kinds": ["translation"]})),
    )
    .await;
    assert_problem(claim, StatusCode::FORBIDDEN, "tenant_suspended").await;
    // Another tenant is served as before.
    let served = call(&app, &other, Method::GET, "/api/v1/users", None).await;
    assert_eq!(served.status(), StatusCode::OK);
    // Operators see why.
    let listed = call(&app, &operator, Method::GET, "/api/v1/tenants/acme", None).await;
    assert_eq!(listed.status(), StatusCode::OK);
    wait_until(
        "the tenants read model shows the suspension",
        Duration::from_secs(30),
        || async {
            let view: Value = call(&app, &operator, Method::GET, "/api/v1/tenants/acme", None)
                .await
                .json()
                .await
                .unwrap();
            view["status"] == "suspended" && view["suspension_reason"] == "invoice 2026-11 overdue"
        },
    )
    .await;
    // Suspending twice is refused; nothing of the history went.
    let twice = call(
        &app,
        &operator,
        Method::POST,
        "/api/v1/tenants/acme/suspend",
        Some(json!({"reason": "again"})),
    )
    .await;
    assert_problem(twice, StatusCode::CONFLICT, "tenant_already_suspended").await;
    let events_after: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_id LIKE 'acme:%'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        events_after,
        events_before + 1,
        "only the suspension was added"
    );

    let reactivated = call(
        &app,
        &operator,
        Method::POST,
        "/api/v1/tenants/acme/reactivate",
        None,
    )
    .await;
    assert_eq!(reactivated.status(), StatusCode::OK);
    let served = app.get("/api/v1/users").await;
    assert_eq!(served.status(), StatusCode::OK);
    // The queued job waited, and is handed out now.
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
    assert_eq!(claimed["job_id"], job.as_str());
    let again = call(
        &app,
        &operator,
        Method::POST,
        "/api/v1/tenants/acme/reactivate",
        None,
    )
    .await;
    assert_problem(again, StatusCode::CONFLICT, "tenant_not_suspended").await;
    app.stop().await;
}

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
async fn operators_govern_tenants_from_the_command_line() {
    let app = spawn_app().await;
    let settings = &app.settings;
    let cli = Launch::new(
        &Launch::built_binary(),
        settings.database.url.expose(),
        settings.nats.url.expose(),
        &settings.nats.stream,
    )
    .env("APP_NATS__SUBJECT_PREFIX", &settings.nats.subject_prefix)
    .env("APP_DOCUMENTS__LOCAL_PATH", &settings.documents.local_path);

    let (ok, out, _) = cli
        .run(&[
            "tenants",
            "provision",
            "--tenant",
            "globex",
            "--name",
            "Globex",
            "--settings",
            r#"{"quota_jobs_per_day": 7}"#,
        ])
        .await;
    assert!(ok, "{out}");
    let key = out.lines().last().unwrap().trim().to_owned();
    assert!(key.starts_with("globex."), "{out}");
    let registered = call(
        &app,
        &key,
        Method::POST,
        "/api/v1/users",
        Some(json!({"email": "hank@globex.example", "display_name": "Hank"})),
    )
    .await;
    assert_eq!(registered.status(), StatusCode::CREATED);

    // A bad setting is named, and nothing changes.
    let (ok, _, err) = cli
        .run(&[
            "tenants",
            "settings",
            "--tenant",
            "globex",
            "--settings",
            r#"{"job_lease_secs": 1}"#,
        ])
        .await;
    assert!(!ok);
    assert!(
        err.contains("job_lease_secs must be 5 to 86400 seconds"),
        "{err}"
    );
    let (ok, out, _) = cli
        .run(&[
            "tenants",
            "settings",
            "--tenant",
            "globex",
            "--settings",
            r#"{"quota_jobs_per_day": 9}"#,
        ])
        .await;
    assert!(ok, "{out}");

    let (ok, out, _) = cli
        .run(&[
            "tenants", "suspend", "--tenant", "globex", "--reason", "audit",
        ])
        .await;
    assert!(ok, "{out}");
    let refused = call(&app, &key, Method::GET, "/api/v1/users", None).await;
    assert_problem(refused, StatusCode::FORBIDDEN, "tenant_suspended").await;

    wait_until(
        "the list shows the suspension and the settings",
        Duration::from_secs(30),
        || async {
            let (ok, out, _) = cli.run(&["tenants", "list"]).await;
            ok && out.lines().any(|line| {
                line.starts_with("globex ")
                    && line.contains("suspended")
                    && line.contains(r#"{"quota_jobs_per_day":9}"#)
            })
        },
    )
    .await;
    let (ok, out, _) = cli
        .run(&["tenants", "reactivate", "--tenant", "globex"])
        .await;
    assert!(ok, "{out}");
    let served = call(&app, &key, Method::GET, "/api/v1/users", None).await;
    assert_eq!(served.status(), StatusCode::OK);
    let (ok, _, err) = cli
        .run(&["tenants", "reactivate", "--tenant", "globex"])
        .await;
    assert!(!ok);
    assert!(err.contains("not suspended"), "{err}");
    app.stop().await;
}
