//! The framework baseline: the create command (register a user) served by cqrs-es's
//! `CqrsFramework` over postgres-es with its stock schema, and nothing else: no
//! authentication, idempotency, metadata, relay, projections or read-your-writes. It runs as
//! its own process (the bench binary started with `baseline-serve`), so its CPU and memory
//! are its own, and is driven by the same client as the backend.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use chrono::Utc;
use domain::aggregate::{Guarded, Versioned};
use domain::identity::Roles;
use domain::users::{DisplayName, Email, User, UserCommand};
use postgres_es::{postgres_cqrs, PostgresCqrs};
use serde_json::{json, Value};
use sqlx::postgres::PgPoolOptions;
use uuid::Uuid;

use crate::load::Target;
use crate::system::CpuMeter;

/// postgres-es's own tables (its `db/init.sql`: events, and snapshots though unused here).
const STOCK_SCHEMA: [&str; 2] = [
    "CREATE TABLE events (
        aggregate_type text NOT NULL, aggregate_id text NOT NULL,
        sequence bigint CHECK (sequence >= 0) NOT NULL,
        event_type text NOT NULL, event_version text NOT NULL,
        payload json NOT NULL, metadata json NOT NULL,
        PRIMARY KEY (aggregate_type, aggregate_id, sequence))",
    "CREATE TABLE snapshots (
        aggregate_type text NOT NULL, aggregate_id text NOT NULL,
        last_sequence bigint CHECK (last_sequence >= 0) NOT NULL,
        current_snapshot bigint CHECK (current_snapshot >= 0) NOT NULL,
        payload json NOT NULL,
        PRIMARY KEY (aggregate_type, aggregate_id, last_sequence))",
];

type Cqrs = Arc<PostgresCqrs<Versioned<User>>>;

async fn register(State(cqrs): State<Cqrs>, Json(body): Json<Value>) -> (StatusCode, Json<Value>) {
    let parsed = (
        body["email"].as_str().map(Email::parse),
        body["display_name"].as_str().map(DisplayName::parse),
    );
    let (Some(Ok(email)), Some(Ok(display_name))) = parsed else {
        return (StatusCode::UNPROCESSABLE_ENTITY, Json(json!({})));
    };
    let id = Uuid::now_v7().to_string();
    let command = UserCommand::Register {
        email,
        display_name,
        roles: Roles::new(),
        at: Utc::now(),
    };
    match cqrs
        .execute_with_metadata(&id, Guarded::new(command), HashMap::new())
        .await
    {
        Ok(()) => (StatusCode::CREATED, Json(json!({ "aggregate_id": id }))),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({}))),
    }
}

/// Serves the baseline on `port` over `database_url` (whose schema it creates) until killed.
pub async fn serve(database_url: &str, port: u16) {
    let pool = PgPoolOptions::new()
        .max_connections(40)
        .connect(database_url)
        .await
        .unwrap();
    for statement in STOCK_SCHEMA {
        sqlx::query(statement).execute(&pool).await.unwrap();
    }
    let cqrs: Cqrs = Arc::new(postgres_cqrs(pool, Vec::new(), ()));
    let app = Router::new()
        .route("/api/v1/users", post(register))
        .with_state(cqrs);
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .unwrap();
    axum::serve(listener, app).await.unwrap();
}

/// The baseline server, started as a child process of this bench.
pub struct Baseline {
    child: tokio::process::Child,
}

impl Baseline {
    /// Starts the baseline over `database_url` (an empty database); returns it and a client's
    /// view of it.
    pub async fn start(database_url: &str) -> (Self, Target) {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let exe = std::env::current_exe().unwrap();
        let child = tokio::process::Command::new(Path::new(&exe))
            .args(["baseline-serve", database_url, &port.to_string()])
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let pid = child.id().unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "the framework baseline did not listen within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let target = Target {
            base,
            key: String::new(),
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(128)
                .build()
                .unwrap(),
            pid,
            meter: CpuMeter::new(Some(pid)),
        };
        (Self { child }, target)
    }

    /// Stops it.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}
