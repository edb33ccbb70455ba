//! Tenants as operators and tenants' own callers meet them: provisioning with a first admin
//! key, settings that take effect without a restart, quotas that refuse with a problem naming
//! them, suspension that refuses credentials at once and loses nothing, and the command line.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_app, wait_until, TestApp, JWT_HS256_SECRET};
use tests::process::Launch;

/// `method path` with `key`, and `body` as JSON when given.
pub(crate) async fn call(
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
pub(crate) async fn set_settings(app: &TestApp, operator: &str, settings: Value) -> String {
    let response = call(
        app,
        operator,
        Method::PUT,
        "/api/v1/admin/tenants/acme/settings",
        Some(settings),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["consistency_token"].as_str().unwrap().to_owned()
}

/// Suspends tenant acme as `operator`, for `reason`.
pub(crate) async fn suspend_acme(app: &TestApp, operator: &str, reason: &str) -> reqwest::Response {
    call(
        app,
        operator,
        Method::POST,
        "/api/v1/admin/tenants/acme/suspend",
        Some(json!({ "reason": reason })),
    )
    .await
}

/// Reactivates tenant acme as `operator`.
pub(crate) async fn reactivate_acme(app: &TestApp, operator: &str) -> reqwest::Response {
    call(
        app,
        operator,
        Method::POST,
        "/api/v1/admin/tenants/acme/reactivate",
        None,
    )
    .await
}

/// Acme's own view (settings, status, usage), as its admin reads it; `null` until the tenants
/// read model has it.
pub(crate) async fn own_tenant(app: &TestApp) -> Value {
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
        "/api/v1/admin/tenants",
        Some(provision.clone()),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(
        response.headers()["location"],
        "/api/v1/admin/tenants/globex"
    );
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
        "/api/v1/admin/tenants",
        Some(provision),
    )
    .await;
    assert_problem(again, StatusCode::CONFLICT, "tenant_already_provisioned").await;

    // Every bad field is named.
    let invalid = call(
        &app,
        &operator,
        Method::POST,
        "/api/v1/admin/tenants",
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
        "/api/v1/admin/tenants/globex/settings",
        Some(json!({"quota_jobs_per_week": 1})),
    )
    .await;
    assert_problem(unknown, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body").await;

    // Only operators govern tenants; a tenant's admin reads only its own.
    for (method, path, body) in [
        (
            Method::POST,
            "/api/v1/admin/tenants",
            Some(json!({"tenant_id": "x", "display_name": "X"})),
        ),
        (Method::GET, "/api/v1/admin/tenants", None),
        (Method::GET, "/api/v1/admin/tenants/globex", None),
        (
            Method::POST,
            "/api/v1/admin/tenants/globex/suspend",
            Some(json!({"reason": "no"})),
        ),
    ] {
        let refused = call(&app, &app.admin_key, method, path, body).await;
        assert_problem(refused, StatusCode::FORBIDDEN, "forbidden").await;
    }

    // Operators list every tenant with its usage, in id order, a page at a time.
    wait_until(
        "both tenants are listed",
        Duration::from_secs(30),
        || async {
            let all: Value = call(&app, &operator, Method::GET, "/api/v1/admin/tenants", None)
                .await
                .json()
                .await
                .unwrap();
            all["items"]
                .as_array()
                .is_some_and(|items| items.len() == 2)
        },
    )
    .await;
    let first = call(
        &app,
        &operator,
        Method::GET,
        "/api/v1/admin/tenants?limit=1",
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
        "/api/v1/admin/tenants?after=acme",
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

    let suspended = suspend_acme(&app, &operator, "invoice 2026-11 overdue").await;
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
    wait_until(
        "the tenants read model shows the suspension",
        Duration::from_secs(30),
        || async {
            let view: Value = call(
                &app,
                &operator,
                Method::GET,
                "/api/v1/admin/tenants/acme",
                None,
            )
            .await
            .json()
            .await
            .unwrap();
            view["status"] == "suspended" && view["suspension_reason"] == "invoice 2026-11 overdue"
        },
    )
    .await;
    // Suspending twice is refused; nothing of the history went.
    let twice = suspend_acme(&app, &operator, "again").await;
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

    let reactivated = reactivate_acme(&app, &operator).await;
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
    let again = reactivate_acme(&app, &operator).await;
    assert_problem(again, StatusCode::CONFLICT, "tenant_not_suspended").await;
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

#[tokio::test]
async fn a_retried_provisioning_answers_with_its_first_outcome_and_the_key_it_issued_works() {
    let app = spawn_app().await;
    let operator = app.operator_key().await;
    let provision = |key: &'static str| {
        app.anonymous(Method::POST, "/api/v1/admin/tenants")
            .header("x-api-key", &operator)
            .header("idempotency-key", key)
            .json(&json!({"tenant_id": "globex", "display_name": "Globex"}))
            .send()
    };
    let first = provision("provision-globex").await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    let key = first["api_key"].as_str().unwrap().to_owned();
    let retry = provision("provision-globex").await.unwrap();
    assert_eq!(retry.status(), StatusCode::CREATED);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    let retry: Value = retry.json().await.unwrap();
    assert_eq!(retry["aggregate_id"], first["aggregate_id"]);
    assert!(
        retry.get("api_key").is_none(),
        "a key is shown once: {retry}"
    );
    let served = call(&app, &key, Method::GET, "/api/v1/users", None).await;
    assert_eq!(served.status(), StatusCode::OK);
    // One key was issued; a different request is a conflict, and issues none.
    let keys: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE aggregate_id LIKE 'globex:%' AND aggregate_type = 'ApiKey'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(keys, 1);
    let again = provision("another-key").await.unwrap();
    assert_problem(again, StatusCode::CONFLICT, "tenant_already_provisioned").await;
    app.stop().await;
}

#[tokio::test]
async fn users_of_a_suspended_tenant_are_refused_and_operators_keep_their_own_tenant() {
    let app = spawn_app().await;
    let operator = app.operator_key().await;
    let user = app.user_with_roles("ada@acme.example", &["user"]).await;
    let settings: api::config::AuthSettings = app.settings.auth.clone();
    assert_eq!(settings.jwt_hs256_secret.expose(), JWT_HS256_SECRET);
    let token = api::http::auth::mint_hs256_token(
        &settings,
        "acme",
        uuid::Uuid::parse_str(&user).unwrap(),
        chrono::Duration::minutes(5),
    )
    .unwrap();
    let as_user = || async {
        app.anonymous(Method::GET, &format!("/api/v1/users/{user}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
    };
    assert_eq!(as_user().await.status(), StatusCode::OK);
    let suspended = suspend_acme(&app, &operator, "review").await;
    assert_eq!(suspended.status(), StatusCode::OK);
    assert_problem(as_user().await, StatusCode::FORBIDDEN, "tenant_suspended").await;
    // A tenant with history (here `system`, where `operator_key` records operators) is not
    // provisioned over HTTP, which would hand the operator an admin key to its data; adopting it
    // is for the command line. And the operators' own tenant is not theirs to suspend.
    let adopted = call(
        &app,
        &operator,
        Method::POST,
        "/api/v1/admin/tenants",
        Some(json!({"tenant_id": "system", "display_name": "Operators"})),
    )
    .await;
    let problem = assert_problem(adopted, StatusCode::CONFLICT, "tenant_has_history").await;
    assert!(problem.get("api_key").is_none());
    let own = call(
        &app,
        &operator,
        Method::POST,
        "/api/v1/admin/tenants/system/suspend",
        Some(json!({"reason": "oops"})),
    )
    .await;
    assert_problem(own, StatusCode::CONFLICT, "own_tenant").await;
    // Reactivated, the read model clears the suspension.
    let reactivated = reactivate_acme(&app, &operator).await;
    let token: Value = reactivated.json().await.unwrap();
    let view = app
        .anonymous(Method::GET, "/api/v1/admin/tenants/acme")
        .header("x-api-key", &operator)
        .header(
            "x-consistency-token",
            token["consistency_token"].as_str().unwrap(),
        )
        .send()
        .await
        .unwrap();
    let view: Value = view.json().await.unwrap();
    assert_eq!(view["status"], "active");
    assert!(view.get("suspension_reason").is_none(), "{view}");
    assert_eq!(as_user().await.status(), StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn an_open_live_stream_ends_when_its_tenant_is_suspended() {
    let app = spawn_app().await;
    let operator = app.operator_key().await;
    let live = app.get("/api/v1/jobs/live").await;
    assert_eq!(live.status(), StatusCode::OK);
    let suspended = suspend_acme(&app, &operator, "review").await;
    assert_eq!(suspended.status(), StatusCode::OK);
    // The body ends (the server closes the stream) well within the deadline; an open stream
    // would run into it.
    tokio::time::timeout(Duration::from_secs(30), live.text())
        .await
        .expect("the stream ends after its tenant's suspension")
        .unwrap();
    app.stop().await;
}
