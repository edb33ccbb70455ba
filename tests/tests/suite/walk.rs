//! The route × role walk, derived from the served OpenAPI document and the policy: nothing here
//! lists routes. Every documented operation either carries `x-action` (the policy action it
//! needs, written by the route's registration) or no security requirement at all (public).
//! Request bodies are the examples the document gives, so a new route is walked as soon as it
//! is registered.

use domain::identity::{Principal, Role, Roles, TenantId};
use domain::policy::{authorize, Action};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{assert_problem, spawn_app, TestApp};

/// One documented operation.
#[derive(Debug, Clone)]
pub struct Operation {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path template, e.g. `/api/v1/users/{id}`.
    pub path: String,
    /// Its first tag.
    pub tag: String,
    /// The action it needs; `None` for public operations.
    pub action: Option<Action>,
    /// The request body's media type and example, if it takes one.
    pub body: Option<(String, Value)>,
}

/// Every operation of the document `app` serves.
///
/// # Panics
/// When an operation is neither public nor names a known action, or a request body has no
/// example: both are defects of the document.
pub async fn operations(app: &TestApp) -> Vec<Operation> {
    let document: Value = app.get("/api/v1/openapi.json").await.json().await.unwrap();
    let mut operations = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let name = format!("{} {path}", method.to_uppercase());
            let action = operation.get("x-action").map(|name| {
                let name = name.as_str().unwrap();
                Action::by_name(name).unwrap_or_else(|| panic!("{name}: unknown action {name:?}"))
            });
            let secured = operation
                .get("security")
                .and_then(Value::as_array)
                .is_some_and(|requirements| !requirements.is_empty());
            assert_eq!(
                action.is_some(),
                secured,
                "{name}: an operation with credentials must name its action, and only those"
            );
            operations.push(Operation {
                method: method.to_uppercase(),
                path: path.clone(),
                tag: operation["tags"][0].as_str().unwrap_or_default().to_owned(),
                action,
                body: request_example(&document, operation, &name),
            });
        }
    }
    operations
}

/// The request body's example (a schema's `examples`, or the media type's `example`).
fn request_example(document: &Value, operation: &Value, name: &str) -> Option<(String, Value)> {
    let content = operation.get("requestBody")?["content"].as_object()?;
    let (media_type, body) = content.iter().next()?;
    let mut schema = &body["schema"];
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let schema_name = reference.trim_start_matches("#/components/schemas/");
        schema = &document["components"]["schemas"][schema_name];
    }
    let example = body
        .get("example")
        .or_else(|| schema.get("examples").and_then(|examples| examples.get(0)))
        .or_else(|| schema.get("example"))
        .unwrap_or_else(|| panic!("{name}: the request body has no example"));
    Some((media_type.clone(), example.clone()))
}

/// Someone else's resources: a job, a document, a post and a comment owned by another account
/// (and the post's category).
pub struct Owned {
    owner: String,
    job: String,
    document: String,
    category: String,
    post: String,
    comment: String,
    report: String,
    announcement: String,
    asset: String,
    portfolio: String,
    import: String,
}

impl Owned {
    /// Creates them in `app`'s tenant.
    pub async fn create(app: &TestApp) -> Self {
        let (owner, key) = app.api_key_with_roles(&["user"]).await;
        let document = app.uploaded_document(&key).await;
        let job = app.submitted_job(&key, &document).await;
        let [category, post, comment, report, announcement] =
            crate::community::written(app, &key).await;
        let [asset, portfolio, import] = priced(app).await;
        Self {
            owner,
            job,
            document,
            category,
            post,
            comment,
            report,
            announcement,
            asset,
            portfolio,
            import,
        }
    }

    /// The resource a prices path's `{id}` names, and the code of its absence.
    fn prices(&self, path: &str) -> (&String, &'static str) {
        if path.starts_with("/api/v1/portfolios/") {
            (&self.portfolio, "portfolio_not_found")
        } else if path.starts_with("/api/v1/price-imports/") {
            (&self.import, "import_not_found")
        } else {
            (&self.asset, "asset_not_found")
        }
    }
}

/// An asset (with a bar), a portfolio (with a trade) and an import, listed, opened and asked
/// for by `app`'s admin; their ids.
async fn priced(app: &TestApp) -> [String; 3] {
    let id = |body: Value, field: &str| body[field].as_str().unwrap().to_owned();
    let created = |path: &'static str, body: Value| async move {
        let response = app.post_json(path, &body).await;
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json::<Value>().await.unwrap()
    };
    let listed = created(
        "/api/v1/assets",
        json!({"symbol": "WALK", "exchange": "XNAS", "currency": "USD", "kind": "stock",
               "name": "Walk Inc."}),
    )
    .await;
    let asset = id(listed.clone(), "aggregate_id");
    // The asset reads back before it is traded (as a client would see it listed).
    let shown = app
        .request(Method::GET, &format!("/api/v1/assets/{asset}"))
        .header("x-consistency-token", id(listed, "consistency_token"))
        .send()
        .await
        .unwrap();
    assert_eq!(shown.status(), StatusCode::OK);
    let bars = json!({"interval": "1day", "bars": [{"time": "2026-03-02T00:00:00Z",
        "open": "10", "high": "11", "low": "9", "close": "10.5", "volume": "100"}]});
    let recorded = app
        .post_json(&format!("/api/v1/assets/{asset}/bars"), &bars)
        .await;
    assert_eq!(recorded.status(), StatusCode::OK);
    let portfolio = id(
        created(
            "/api/v1/portfolios",
            json!({"name": "Walk", "currency": "USD"}),
        )
        .await,
        "aggregate_id",
    );
    let trade = json!({"asset_id": asset, "side": "buy", "quantity": "1", "price": "10",
                       "time": "2026-03-02T15:00:00Z"});
    let traded = app
        .post_json(&format!("/api/v1/portfolios/{portfolio}/trades"), &trade)
        .await;
    assert!(traded.status().is_success());
    let asked = app
        .post_json(
            &format!("/api/v1/assets/{asset}/imports"),
            &json!({"interval": "1day", "from": "2026-01-01T00:00:00Z",
                    "to": "2026-02-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(asked.status(), StatusCode::ACCEPTED);
    let import = asked.headers()["location"]
        .to_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    [asset, portfolio, import]
}

impl Owned {
    /// The resource a community path's `{id}` names, and the code of its absence.
    fn community(&self, path: &str) -> (&String, &'static str) {
        let rest = path.trim_start_matches("/api/v1/community/");
        match rest.split('/').next() {
            Some("posts") if rest.contains("{id}") => (&self.post, "post_not_found"),
            Some("comments") => (&self.comment, "comment_not_found"),
            Some("reports") => (&self.report, "report_not_found"),
            Some("members") if path.ends_with("/activity") => (&self.owner, "activity_not_found"),
            Some("members") => (&self.owner, "member_not_found"),
            Some("announcements") => (&self.announcement, "announcement_not_found"),
            _ => (&self.category, "category_not_found"),
        }
    }
}

/// The id an operation's `{id}` needs (by the resource its tag names), and the account the
/// action concerns.
async fn target(
    app: &TestApp,
    operation: &Operation,
    user: &str,
    owned: &Owned,
) -> (String, String) {
    match operation.tag.as_str() {
        "api-keys" => {
            let key = app.api_key_with_roles(&["worker"]).await.0;
            (key.clone(), key)
        }
        "jobs" | "worker"
            if operation.path.contains("{id}") && !operation.path.starts_with("/api/v1/users/") =>
        {
            (owned.job.clone(), owned.owner.clone())
        }
        "documents" => (owned.document.clone(), owned.owner.clone()),
        "community" => {
            let (id, _) = owned.community(&operation.path);
            let concerned = if id == &owned.category {
                user
            } else {
                &owned.owner
            };
            (id.clone(), concerned.to_owned())
        }
        _ => (user.to_owned(), user.to_owned()),
    }
}

/// Calls `operation` with `credential` (an API key), substituting `id` for `{id}`.
pub async fn call(
    app: &TestApp,
    credential: Option<&str>,
    operation: &Operation,
    id: &str,
) -> reqwest::Response {
    let method = Method::from_bytes(operation.method.as_bytes()).unwrap();
    let path = operation
        .path
        .replace("{id}", id)
        .replace("{name}", "users")
        .replace("{aggregate_type}", "User")
        .replace("{correlation_id}", id)
        // A tenant nobody provisioned: an operator's command on it is 404, and never suspends
        // the tenant the walk's own keys belong to.
        .replace("{tenant}", "walk-target");
    let mut request = app.anonymous(method, &path);
    if let Some(key) = credential {
        request = request.header("x-api-key", key);
    }
    match &operation.body {
        Some((media_type, example)) if media_type == "application/json" => {
            request = request.json(example);
        }
        Some((media_type, example)) => {
            let bytes = example
                .as_str()
                .map_or_else(|| example.to_string(), str::to_owned);
            request = request.header("content-type", media_type).body(bytes);
        }
        None => {}
    }
    request.send().await.unwrap()
}

/// Walks every protected operation of `app`'s document: anonymous calls get 401, and every
/// role gets exactly what the policy allows (403 otherwise, naming nobody). Returns the
/// operations walked.
pub async fn walk(app: &TestApp) -> Vec<Operation> {
    let operations: Vec<Operation> = operations(app)
        .await
        .into_iter()
        .filter(|operation| operation.action.is_some())
        .collect();
    let subject = app.user_with_roles("subject@example.org", &["user"]).await;
    let tenant = TenantId::parse(&app.tenant).unwrap();
    let owned = Owned::create(app).await;
    for operation in &operations {
        let (id, _) = target(app, operation, &subject, &owned).await;
        let response = call(app, None, operation, &id).await;
        assert_problem(response, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    }
    for role in Role::ALL {
        // Operator keys come only from the command line.
        let (key_id, key) = if role == Role::Operator {
            let (id, key) =
                api::bootstrap::create_operator_key(&app.settings, &app.tenant, "walk operator")
                    .await
                    .unwrap();
            (id.to_string(), key)
        } else {
            app.api_key_with_roles(&[role.as_str()]).await
        };
        let key_id = Uuid::parse_str(&key_id).unwrap();
        let principal = Principal::api_key(tenant.clone(), key_id, Roles::from([role]));
        for operation in &operations {
            let (Operation { method, path, .. }, Some(action)) = (operation, operation.action)
            else {
                continue;
            };
            let (id, concerned) = target(app, operation, &subject, &owned).await;
            let response = call(app, Some(&key), operation, &id).await;
            // A job list without an owner lists the caller's own jobs.
            let subject_id = if path == "/api/v1/jobs" && method == "GET" {
                Some(key_id)
            } else {
                Uuid::parse_str(&concerned).ok()
            };
            if authorize(&principal, action, subject_id).is_ok() {
                let status = response.status();
                assert!(
                    status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
                    "{role:?} may {method} {path} ({action}), got {status}: {}",
                    response.text().await.unwrap()
                );
            } else {
                let body = assert_problem(response, StatusCode::FORBIDDEN, "forbidden").await;
                assert!(!body.to_string().contains(&subject), "{body}");
            }
        }
    }
    operations
}

#[tokio::test]
async fn every_documented_operation_is_public_or_names_its_action_and_has_examples() {
    let app = spawn_app().await;
    let operations = operations(&app).await;
    let public: Vec<String> = operations
        .iter()
        .filter(|operation| operation.action.is_none())
        .map(|operation| format!("{} {}", operation.method, operation.path))
        .collect();
    assert_eq!(
        public,
        [
            "GET /api/v1/public/{tenant}/categories",
            "GET /api/v1/public/{tenant}/categories/{id}/posts",
            "GET /api/v1/public/{tenant}/posts/{id}",
            "GET /api/v1/public/{tenant}/posts/{id}/comments",
            "GET /health/live",
            "GET /health/projections",
            "GET /health/ready",
            "GET /metrics"
        ],
        "only health, metrics and the community's public pages are public"
    );
    for action in Action::all() {
        assert!(
            operations
                .iter()
                .any(|operation| operation.action == Some(action)),
            "no route needs {action}: an action of the policy that nothing enforces"
        );
    }
}

#[tokio::test]
async fn every_role_gets_exactly_what_the_policy_allows_on_every_route() {
    let app = spawn_app().await;
    let walked = walk(&app).await;
    assert!(
        walked.len() > 20,
        "the walk covered {} operations",
        walked.len()
    );
}

#[tokio::test]
async fn another_tenant_sees_404_on_every_route_and_learns_nothing() {
    let app = spawn_app().await;
    let user = app
        .user_with_roles("secret-person@example.org", &["user"])
        .await;
    let (key_id, _) = app.api_key_with_roles(&["worker"]).await;
    let other = app.admin_key_of("globex").await;
    let owned = Owned::create(&app).await;
    let mut checked = 0;
    for operation in operations(&app).await {
        let path = operation.path.as_str();
        // Worker routes refuse the other tenant's admin before any lookup (403, no role).
        if operation.action.is_none() || !path.contains("{id}") || operation.tag == "worker" {
            continue;
        }
        // The resource each known tag's `{id}` names; a route of a context added later is
        // called with a user's id and must still answer some `*_not_found`.
        let (id, code) = match operation.tag.as_str() {
            "api-keys" => (&key_id, Some("api_key_not_found")),
            "jobs" if path.ends_with("/usage") => (&owned.owner, Some("usage_not_found")),
            "jobs" => (&owned.job, Some("job_not_found")),
            "documents" => (&owned.document, Some("document_not_found")),
            "community" => {
                let (id, code) = owned.community(path);
                (id, Some(code))
            }
            "admin" => (&user, Some("stream_not_parked")),
            "users" => (&user, Some("user_not_found")),
            "prices" => {
                let (id, code) = owned.prices(path);
                (id, Some(code))
            }
            _ => (&user, None),
        };
        let response = call(&app, Some(&other), &operation, id).await;
        let method = &operation.method;
        assert!(
            response.headers().get("etag").is_none(),
            "{method} {path} leaks a version"
        );
        assert!(response.headers().get("location").is_none());
        let body = match code {
            Some(code) => assert_problem(response, StatusCode::NOT_FOUND, code).await,
            None => {
                assert_eq!(response.status(), StatusCode::NOT_FOUND, "{method} {path}");
                let body: Value = response.json().await.unwrap();
                let code = body["code"].as_str().unwrap_or_default();
                assert!(
                    code.ends_with("_not_found") || code == "stream_not_parked",
                    "{method} {path}: {body}"
                );
                body
            }
        }
        .to_string();
        assert!(!body.contains("secret-person"), "{method} {path}: {body}");
        checked += 1;
    }
    assert!(
        checked >= 10,
        "only {checked} routes with an id were checked"
    );
    let page: Value = app
        .anonymous(Method::GET, "/api/v1/users")
        .header("x-api-key", &other)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        !page.to_string().contains(&user),
        "another tenant's list shows our user: {page}"
    );
    // Nor do its lists of assets, imports and latest prices show ours.
    let asset = &owned.asset;
    for path in [
        "/api/v1/assets".to_owned(),
        "/api/v1/price-imports".to_owned(),
        format!("/api/v1/prices/latest?interval=1day&assets={asset}"),
    ] {
        let response = app
            .anonymous(Method::GET, &path)
            .header("x-api-key", &other)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body = response.text().await.unwrap();
        assert!(
            status.is_success() || status == StatusCode::NOT_FOUND,
            "{path}: {body}"
        );
        assert!(
            !body.contains(asset.as_str()) && !body.contains(owned.import.as_str()),
            "another tenant's {path} shows ours: {body}"
        );
    }
    // And tenant A's data is untouched by all of it.
    let mine: Value = app
        .get(&format!("/api/v1/users/{user}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(mine["email"], "secret-person@example.org");
}
