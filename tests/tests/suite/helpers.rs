//! The test harness: services, fresh databases, `spawn_app()` and a typed `TestApp`.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use api::config::{LogFormat, Secret, Settings};
use api::startup::Application;
use async_nats::jetstream;
use reqwest::{Response, StatusCode};
use serde_json::Value;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::OnceCell;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Where the shared services are.
#[derive(Clone)]
pub struct Services {
    pub database_url: String,
    pub nats_url: String,
}

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `DATABASE_URL`/`NATS_URL` from the environment, else what `just services` wrote.
pub fn services() -> Services {
    let from_env = |key: &str| std::env::var(key).ok().filter(|v| !v.is_empty());
    if let (Some(database_url), Some(nats_url)) = (from_env("DATABASE_URL"), from_env("NATS_URL")) {
        return Services {
            database_url,
            nats_url,
        };
    }
    let path = workspace_root().join(".local/services.env");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!("no DATABASE_URL/NATS_URL and no {path:?}: run `./.ci/just services` (or `just test`) first")
    });
    let value = |key: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(&format!("export {key}=")))
            .unwrap_or_else(|| panic!("{key} missing from {path:?}"))
            .to_owned()
    };
    Services {
        database_url: value("DATABASE_URL"),
        nats_url: value("NATS_URL"),
    }
}

/// `url` with its database name replaced.
pub fn with_database(url: &str, database: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("database URL has a scheme");
    let (authority, tail) = rest.split_once('/').unwrap_or((rest, ""));
    let query = tail
        .split_once('?')
        .map(|(_, q)| format!("?{q}"))
        .unwrap_or_default();
    format!("{scheme}://{authority}/{database}{query}")
}

/// The migrated template, created once per migration set across all test processes.
async fn template() -> &'static str {
    static TEMPLATE: OnceCell<String> = OnceCell::const_new();
    TEMPLATE
        .get_or_init(|| async {
            let fingerprint = eventstore_migrations::MIGRATOR
                .iter()
                .flat_map(|m| m.checksum.iter().copied())
                .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
                    (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
                });
            let name = format!("tmpl_{fingerprint:016x}");
            let admin_url = with_database(&services().database_url, "postgres");
            let mut admin = PgConnection::connect(&admin_url)
                .await
                .expect("connect to Postgres");
            // nextest runs each test in its own process: serialise template creation.
            sqlx::query("SELECT pg_advisory_lock(727274)")
                .execute(&mut admin)
                .await
                .unwrap();
            let exists: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                    .bind(&name)
                    .fetch_one(&mut admin)
                    .await
                    .unwrap();
            if !exists {
                // Built under another name and renamed, so a crash never leaves a half-migrated
                // template behind.
                let building = format!("{name}_building");
                sqlx::query(&format!("DROP DATABASE IF EXISTS {building}"))
                    .execute(&mut admin)
                    .await
                    .unwrap();
                sqlx::query(&format!("CREATE DATABASE {building}"))
                    .execute(&mut admin)
                    .await
                    .unwrap();
                let mut conn = PgConnection::connect(&with_database(&admin_url, &building))
                    .await
                    .unwrap();
                eventstore_migrations::MIGRATOR
                    .run(&mut conn)
                    .await
                    .expect("migrations apply");
                conn.close().await.unwrap();
                sqlx::query(&format!("ALTER DATABASE {building} RENAME TO {name}"))
                    .execute(&mut admin)
                    .await
                    .unwrap();
            }
            sqlx::query("SELECT pg_advisory_unlock(727274)")
                .execute(&mut admin)
                .await
                .unwrap();
            name
        })
        .await
}

/// A fresh, migrated database; returns its URL.
pub async fn fresh_database() -> String {
    let template = template().await;
    let name = format!("test_{}", Uuid::new_v4().simple());
    let admin_url = with_database(&services().database_url, "postgres");
    let mut admin = PgConnection::connect(&admin_url).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE {name} TEMPLATE {template}"))
        .execute(&mut admin)
        .await
        .expect("clone the template database");
    with_database(&admin_url, &name)
}

/// Settings for a test: fresh database, unique stream and prefix, port 0, fast polling.
pub async fn test_settings() -> Settings {
    let services = services();
    let unique = Uuid::new_v4().simple().to_string();
    let mut settings = Settings::default();
    settings.database.url = Secret::new(fresh_database().await);
    settings.database.migrate_on_start = false;
    settings.database.max_connections = 12;
    settings.nats.url = Secret::new(services.nats_url);
    settings.nats.stream = format!("T_{unique}");
    settings.nats.subject_prefix = format!("t{unique}");
    settings.nats.max_age_secs = 3600;
    settings.documents.local_path = std::env::temp_dir()
        .join(format!("cqrs-test-documents-{unique}"))
        .display()
        .to_string();
    settings.http.port = 0;
    settings.relay.poll_interval_ms = 50;
    settings.queries.consistency_wait_ms = 10_000;
    settings.log.format = LogFormat::Text;
    // Tests that exercise limits switch them back on.
    settings.rate_limit.enabled = false;
    settings.auth.jwt_hs256_secret = Secret::new(JWT_HS256_SECRET);
    settings.auth.jwt_rs256_public_key_pem = Secret::new(fixture("jwt-test-rs256.pub.pem"));
    settings.log.filter = "warn".to_owned();
    settings.audit.signing_key =
        Secret::new(commands::audit::sealer::SigningKey::generate("cqrs-test.local").0);
    settings.audit.poll_interval_ms = 50;
    settings
}

/// The HS256 secret configured in tests.
pub const JWT_HS256_SECRET: &str = "test-only-hs256-secret-of-at-least-32-bytes";

/// A test fixture file's content.
pub fn fixture(name: &str) -> String {
    std::fs::read_to_string(workspace_root().join("tests/fixtures").join(name)).unwrap()
}

/// A running backend and what a test needs to poke at it. Requests made through its helpers
/// carry the admin API key of `tenant`, bootstrapped at spawn.
pub struct TestApp {
    pub address: String,
    pub tenant: String,
    pub admin_key: String,
    pub client: reqwest::Client,
    pub pool: PgPool,
    pub jetstream: jetstream::Context,
    pub settings: Settings,
    pub relay: commands::relay::Relay,
    stop: CancellationToken,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

/// The whole backend with default test settings.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// The whole backend with settings adjusted by `customize`.
pub async fn spawn_app_with(customize: impl FnOnce(&mut Settings)) -> TestApp {
    let mut settings = test_settings().await;
    customize(&mut settings);
    spawn_with_settings(settings).await
}

/// The whole backend with exactly these settings, and an admin key for tenant `acme`.
pub async fn spawn_with_settings(settings: Settings) -> TestApp {
    spawn_with_routes(settings, api::routes::contexts()).await
}

/// The backend serving the routes of `contexts` (e.g. the registered ones plus a test's own).
pub async fn spawn_with_routes(settings: Settings, contexts: Vec<api::routes::Routes>) -> TestApp {
    api::telemetry::init(&settings.log);
    let application = Application::build_with(settings.clone(), contexts)
        .await
        .expect("application builds");
    let address = format!("http://127.0.0.1:{}", application.port());
    let relay = application.relay().clone();
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .connect(settings.database.url.expose())
        .await
        .unwrap();
    let nats = commands::jetstream::connect(settings.nats.url.expose())
        .await
        .unwrap();
    let tenant = "acme".to_owned();
    let (_, admin_key) = api::bootstrap::create_admin_key(&settings, &tenant, "test admin")
        .await
        .expect("bootstrap an admin key");
    let stop = CancellationToken::new();
    let stopped = stop.clone();
    let server =
        tokio::spawn(application.run_until_stopped(async move { stopped.cancelled().await }));
    TestApp {
        address,
        tenant,
        admin_key,
        client: reqwest::Client::new(),
        pool,
        jetstream: jetstream::new(nats),
        settings,
        relay,
        stop,
        server: Some(server),
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// A request carrying the admin key.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .header("x-api-key", &self.admin_key)
    }

    /// A request without credentials.
    pub fn anonymous(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, self.url(path))
    }

    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.request(reqwest::Method::POST, path)
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.post(path).json(body).send().await.unwrap()
    }

    pub async fn get(&self, path: &str) -> Response {
        self.request(reqwest::Method::GET, path)
            .send()
            .await
            .unwrap()
    }

    /// An operator key (created as from the command line), recorded in tenant `system`.
    pub async fn operator_key(&self) -> String {
        api::bootstrap::create_operator_key(&self.settings, "system", "test operator")
            .await
            .unwrap()
            .1
    }

    /// An admin key of another tenant (bootstrapped on demand).
    pub async fn admin_key_of(&self, tenant: &str) -> String {
        api::bootstrap::create_admin_key(&self.settings, tenant, "other tenant admin")
            .await
            .unwrap()
            .1
    }

    pub async fn register_user(&self, email: &str, display_name: &str) -> Response {
        self.post_json(
            "/api/v1/users",
            &serde_json::json!({ "email": email, "display_name": display_name }),
        )
        .await
    }

    /// Registers a user and returns its id and consistency token.
    pub async fn registered_user(&self, email: &str, display_name: &str) -> (String, String) {
        let response = self.register_user(email, display_name).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        (
            body["aggregate_id"].as_str().unwrap().to_owned(),
            body["consistency_token"].as_str().unwrap().to_owned(),
        )
    }

    /// Registers a user with `roles` and returns its id once the read model shows it.
    pub async fn user_with_roles(&self, email: &str, roles: &[&str]) -> String {
        let response = self
            .post_json(
                "/api/v1/users",
                &serde_json::json!({ "email": email, "display_name": "Someone", "roles": roles }),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        let id = body["aggregate_id"].as_str().unwrap().to_owned();
        self.user_seen_with(&id, body["consistency_token"].as_str().unwrap())
            .await;
        id
    }

    /// Uploads `bytes` with `key` (an API key).
    pub async fn upload(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> Response {
        self.anonymous(reqwest::Method::POST, "/api/v1/documents")
            .header("x-api-key", key)
            .header("content-type", content_type)
            .body(bytes)
            .send()
            .await
            .unwrap()
    }

    /// Uploads a small text document with `key` and returns its id.
    pub async fn uploaded_document(&self, key: &str) -> String {
        let response = self
            .upload(key, b"Hello, world.\n".to_vec(), "text/plain")
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        body["document_id"].as_str().unwrap().to_owned()
    }

    /// Submits an English→German translation of `document` with `key`; returns the job id
    /// once the jobs projection shows it.
    pub async fn submitted_job(&self, key: &str, document: &str) -> String {
        let response = self
            .anonymous(reqwest::Method::POST, "/api/v1/jobs")
            .header("x-api-key", key)
            .json(&serde_json::json!({
                "kind": "translation", "source_language": "en", "target_language": "de",
                "document_id": document,
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        let id = body["aggregate_id"].as_str().unwrap().to_owned();
        let token = body["consistency_token"].as_str().unwrap();
        let seen = self
            .request(reqwest::Method::GET, &format!("/api/v1/jobs/{id}"))
            .header("x-consistency-token", token)
            .send()
            .await
            .unwrap();
        assert_eq!(seen.status(), StatusCode::OK);
        id
    }

    /// Issues an API key with `roles` and returns `(key id, key)`.
    pub async fn api_key_with_roles(&self, roles: &[&str]) -> (String, String) {
        let response = self
            .post_json(
                "/api/v1/api-keys",
                &serde_json::json!({ "name": "test key", "roles": roles }),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        (
            body["aggregate_id"].as_str().unwrap().to_owned(),
            body["api_key"].as_str().unwrap().to_owned(),
        )
    }

    pub async fn rename_user(&self, id: &str, display_name: &str) -> Response {
        self.post_json(
            &format!("/api/v1/users/{id}/display-name"),
            &serde_json::json!({ "display_name": display_name }),
        )
        .await
    }

    pub async fn get_user_with_token(&self, id: &str, token: &str) -> Response {
        self.request(reqwest::Method::GET, &format!("/api/v1/users/{id}"))
            .header("x-consistency-token", token)
            .send()
            .await
            .unwrap()
    }

    /// The user as a query with `token` shows it (asserting 200).
    pub async fn user_seen_with(&self, id: &str, token: &str) -> Value {
        let response = self.get_user_with_token(id, token).await;
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "GET user {id} with token {token}"
        );
        response.json().await.unwrap()
    }

    /// The user a command's response body points at, read with its consistency token.
    pub async fn user_after(&self, command_response: Response) -> Value {
        assert!(
            command_response.status().is_success(),
            "command failed: {}",
            command_response.status()
        );
        let body: Value = command_response.json().await.unwrap();
        let id = body["aggregate_id"].as_str().unwrap();
        self.user_seen_with(id, body["consistency_token"].as_str().unwrap())
            .await
    }

    /// This test's JetStream stream.
    pub async fn stream(&self) -> jetstream::stream::Stream {
        self.jetstream
            .get_stream(&self.settings.nats.stream)
            .await
            .unwrap()
    }

    /// Events of users in the store (the bootstrap key's event is not one).
    pub async fn user_events(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_type = 'User'")
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    /// Events of document streams in the store.
    pub async fn document_events(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_type = 'Document'")
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    /// Files in this app's document store.
    pub fn stored_documents(&self) -> usize {
        fn count(dir: &std::path::Path) -> usize {
            std::fs::read_dir(dir).map_or(0, |entries| {
                entries
                    .flatten()
                    .map(|entry| match entry.file_type() {
                        Ok(kind) if kind.is_dir() => count(&entry.path()),
                        Ok(_) => 1,
                        Err(_) => 0,
                    })
                    .sum()
            })
        }
        count(std::path::Path::new(&self.settings.documents.local_path))
    }

    /// Every event in the store.
    pub async fn all_events(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    /// `(events_applied, duplicates_skipped)` of a projection.
    pub async fn projection_counts(&self, projection: &str) -> (i64, i64) {
        sqlx::query_as(
            "SELECT sum(events_applied)::bigint, sum(duplicates_skipped)::bigint
               FROM projection.progress WHERE projection = $1 HAVING count(*) > 0",
        )
        .bind(projection)
        .fetch_optional(&self.pool)
        .await
        .unwrap()
        .unwrap_or((0, 0))
    }

    /// Ends the process abruptly: its tasks are dropped mid-flight and its connections close
    /// without any goodbye, as when a process is killed.
    pub fn kill(mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }

    pub async fn stop(mut self) {
        self.stop.cancel();
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Waits until `condition` holds, failing with `what` after `deadline`.
pub async fn wait_until<F, Fut>(what: &str, deadline: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = tokio::time::Instant::now();
    loop {
        if condition().await {
            return;
        }
        assert!(
            started.elapsed() < deadline,
            "timed out after {deadline:?} waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Asserts a problem+json response with the given status and code; returns the body.
pub async fn assert_problem(response: Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(
        response.status(),
        status,
        "status for expected problem {code}"
    );
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], code, "problem body: {body}");
    assert_eq!(body["status"], status.as_u16());
    assert!(body["type"].as_str().unwrap().starts_with("/problems/"));
    assert!(!body["title"].as_str().unwrap().is_empty());
    assert!(!body["detail"].as_str().unwrap().is_empty());
    assert!(!body["request_id"].as_str().unwrap().is_empty());
    body
}
