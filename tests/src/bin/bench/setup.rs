//! Databases for a run, the backend under test as its own process, and the recovery scenario
//! (`kill -9` of one of two backends mid-burst).

use std::path::Path;
use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection};
use tests::process::{BackendProcess, Launch};
use tests::recovery::{kill_during_burst, Burst};

use crate::load::{Row, Target};
use crate::system::CpuMeter;
use crate::TENANT;

/// The recovery bound the hardening issue sets: readable within 5 s of the kill.
const RECOVERY_BOUND: Duration = Duration::from_secs(5);

pub fn with_database(url: &str, database: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("database URL has a scheme");
    let (authority, _) = rest.split_once('/').unwrap_or((rest, ""));
    format!("{scheme}://{authority}/{database}")
}

/// Drops earlier bench databases and creates `names` afresh.
pub async fn fresh_databases(database_url: &str, names: &[&str]) {
    let mut admin = PgConnection::connect(&with_database(database_url, "postgres"))
        .await
        .unwrap();
    let old: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'bench\\_%'")
            .fetch_all(&mut admin)
            .await
            .unwrap();
    for name in old {
        sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .execute(&mut admin)
            .await
            .unwrap();
    }
    for name in names {
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut admin)
            .await
            .unwrap();
    }
}

pub async fn drop_database(database_url: &str, name: &str) {
    let mut admin = PgConnection::connect(&with_database(database_url, "postgres"))
        .await
        .unwrap();
    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .execute(&mut admin)
        .await;
}

/// How the bench runs backends on `database_url`, publishing to a stream of the run `run`.
fn launch(backend: &Path, database_url: &str, nats_url: &str, run: &str) -> Launch {
    Launch::new(backend, database_url, nats_url, &format!("BENCH_{run}"))
        .env("APP_DATABASE__MAX_CONNECTIONS", "40")
        .env(
            "APP_DOCUMENTS__LOCAL_PATH",
            &format!("target/bench/documents-{run}"),
        )
}

/// Starts the backend on `database_url` with `env` added to its configuration; returns the
/// process and a client's view of it.
pub async fn start_backend(
    backend: &Path,
    database_url: &str,
    nats_url: &str,
    run: &str,
    env: &[(&str, &str)],
) -> (BackendProcess, Target) {
    let launch = env.iter().fold(
        launch(backend, database_url, nats_url, run),
        |launch, (name, value)| launch.env(name, value),
    );
    let server = launch.start().await;
    let key = launch.create_admin_key(TENANT);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(128)
        .build()
        .unwrap();
    let target = Target {
        base: server.base.clone(),
        key,
        client,
        pid: server.pid,
        meter: CpuMeter::new(Some(server.pid)),
    };
    (server, target)
}

/// `kill -9` of the backend that relays and owns every partition, in the middle of a burst of 16
/// clients, with a second backend on the same store: the time until every event stored before
/// the kill is applied, next to the bound.
pub async fn recovery_after_kill(
    backend: &Path,
    database_url: &str,
    nats_url: &str,
    run: &str,
) -> Row {
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .connect(database_url)
        .await
        .unwrap();
    eventstore_migrations::MIGRATOR.run(&pool).await.unwrap();
    let launch = launch(backend, database_url, nats_url, run);
    let key = launch.create_admin_key(TENANT);
    let burst = Burst {
        writers: 16,
        writes_each: 500,
        kill_after_applied: 2_000,
    };
    let recovery = kill_during_burst(&launch, &pool, &key, burst, Duration::from_secs(60)).await;
    drop(recovery.survivor);
    pool.close().await;
    let mut row = Row::new(
        "time to readable after kill -9",
        burst.writers,
        vec![recovery.readable_after],
        0,
        recovery.readable_after,
    );
    row.operations = recovery.accepted;
    row.per_second = 0.0;
    row.ratio_to_baseline =
        Some(recovery.readable_after.as_secs_f64() / RECOVERY_BOUND.as_secs_f64());
    row.baseline = Some(format!("the bound, {} s", RECOVERY_BOUND.as_secs()));
    row
}
