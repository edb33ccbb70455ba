//! `just bench`: load scenarios against a release build of the backend, each next to a baseline
//! measured in the same run, reported as a table, `target/bench/report.json` and
//! `target/bench/report.md`.
//!
//! The backend runs as its own process (so its peak RSS is its own), against a fresh database
//! and JetStream stream, only on 127.0.0.1. Load comes from this small client because the
//! requests vary (unique emails, idempotency keys, ids).
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::unwrap_used,
    clippy::expect_used
)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

/// How long each timed scenario runs.
const RUN: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Serialize)]
struct Row {
    scenario: String,
    clients: usize,
    operations: u64,
    errors: u64,
    per_second: f64,
    p50_ms: f64,
    p95_ms: f64,
    p99_ms: f64,
    peak_server_rss_mib: f64,
    baseline: Option<String>,
    ratio_to_baseline: Option<f64>,
}

fn percentile(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}

fn summarize(
    scenario: &str,
    clients: usize,
    mut latencies: Vec<Duration>,
    errors: u64,
    elapsed: Duration,
    rss: f64,
) -> Row {
    latencies.sort();
    Row {
        scenario: scenario.to_owned(),
        clients,
        operations: latencies.len() as u64,
        errors,
        per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50_ms: percentile(&latencies, 0.50),
        p95_ms: percentile(&latencies, 0.95),
        p99_ms: percentile(&latencies, 0.99),
        peak_server_rss_mib: rss,
        baseline: None,
        ratio_to_baseline: None,
    }
}

/// The server process's peak resident set so far (VmHWM), in MiB.
fn peak_rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmHWM:"))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn with_database(url: &str, database: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("database URL has a scheme");
    let (authority, _) = rest.split_once('/').unwrap_or((rest, ""));
    format!("{scheme}://{authority}/{database}")
}

struct Target {
    base: String,
    key: String,
    client: reqwest::Client,
    /// Watches the read model for the latency scenario (a small pool: watching must not load
    /// Postgres more than the system under test does).
    watcher: sqlx::PgPool,
    pid: u32,
}

impl Target {
    fn post(&self, path: &str, body: &Value) -> reqwest::RequestBuilder {
        self.client
            .post(format!("{}{path}", self.base))
            .header("x-api-key", &self.key)
            .header("idempotency-key", Uuid::new_v4().to_string())
            .json(body)
    }

    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client
            .get(format!("{}{path}", self.base))
            .header("x-api-key", &self.key)
    }
}

/// Runs `clients` loops of `operation` for `RUN`; returns latencies of successes and errors.
async fn timed<F, Fut>(clients: usize, operation: F) -> (Vec<Duration>, u64, Duration)
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let operation = Arc::new(operation);
    let counter = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (operation, counter, errors) = (operation.clone(), counter.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while started.elapsed() < RUN {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let began = Instant::now();
                if operation(n).await {
                    latencies.push(began.elapsed());
                } else {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    (all, errors.load(Ordering::Relaxed), started.elapsed())
}

async fn create_users(target: &Arc<Target>, clients: usize, run: &str) -> Row {
    let t = target.clone();
    let run = run.to_owned();
    let (latencies, errors, elapsed) = timed(clients, move |n| {
        let t = t.clone();
        let body = json!({ "email": format!("{run}-{clients}-{n}@bench.example"), "display_name": "Bench" });
        async move { t.post("/api/v1/users", &body).send().await.is_ok_and(|r| r.status().is_success()) }
    })
    .await;
    summarize(
        "create command (register user)",
        clients,
        latencies,
        errors,
        elapsed,
        peak_rss_mib(target.pid),
    )
}

/// Registers `count` users and gives each `events - 1` renames; returns their ids.
async fn seed_users(target: &Arc<Target>, count: usize, events: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for n in 0..count {
        let body = json!({ "email": format!("seed-{n}-{}@bench.example", Uuid::new_v4().simple()), "display_name": "Seed" });
        let response: Value = target
            .post("/api/v1/users", &body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        ids.push(response["aggregate_id"].as_str().unwrap().to_owned());
    }
    let ids = Arc::new(ids);
    let mut tasks = Vec::new();
    for chunk in 0..16 {
        let (target, ids) = (target.clone(), ids.clone());
        tasks.push(tokio::spawn(async move {
            for (i, id) in ids.iter().enumerate().filter(|(i, _)| i % 16 == chunk) {
                for rename in 1..events {
                    let body = json!({ "display_name": format!("Seed {i}.{rename}") });
                    target
                        .post(&format!("/api/v1/users/{id}/display-name"), &body)
                        .send()
                        .await
                        .unwrap();
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    Arc::try_unwrap(ids).unwrap()
}

async fn update_users(target: &Arc<Target>, clients: usize, ids: Arc<Vec<String>>) -> Row {
    let t = target.clone();
    let (latencies, errors, elapsed) = timed(clients, move |n| {
        let t = t.clone();
        let id = ids[(n as usize * 7919) % ids.len()].clone();
        let body = json!({ "display_name": format!("Renamed {n}") });
        async move {
            t.post(&format!("/api/v1/users/{id}/display-name"), &body)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        }
    })
    .await;
    summarize(
        "update command (rename, 10-20 events)",
        clients,
        latencies,
        errors,
        elapsed,
        peak_rss_mib(target.pid),
    )
}

async fn queries(target: &Arc<Target>, clients: usize, ids: Arc<Vec<String>>, list: bool) -> Row {
    let t = target.clone();
    let (latencies, errors, elapsed) = timed(clients, move |n| {
        let t = t.clone();
        let path = if list {
            format!(
                "/api/v1/users?limit=20&after={}",
                ids[(n as usize * 31) % ids.len()]
            )
        } else {
            format!("/api/v1/users/{}", ids[(n as usize * 7919) % ids.len()])
        };
        async move {
            t.get(&path)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        }
    })
    .await;
    let name = if list {
        "query: list page (20)"
    } else {
        "query: point lookup"
    };
    summarize(
        name,
        clients,
        latencies,
        errors,
        elapsed,
        peak_rss_mib(target.pid),
    )
}

/// Registers users at `rate` per second and measures, for each, the time from the command's
/// response until the read model's guard shows its version.
async fn command_to_projection(target: &Arc<Target>, rate: f64) -> Row {
    let interval = Duration::from_secs_f64(1.0 / rate.max(1.0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    let mut n = 0;
    while started.elapsed() < RUN {
        let target = target.clone();
        tasks.push(tokio::spawn(async move {
            let body = json!({ "email": format!("lat-{n}-{}@bench.example", Uuid::new_v4().simple()), "display_name": "Lat" });
            let response: Value = target.post("/api/v1/users", &body).send().await.ok()?.json().await.ok()?;
            let answered = Instant::now();
            let token = response["consistency_token"].as_str()?.to_owned();
            let (_, rest) = token.split_once(':')?;
            let (stream, _) = rest.rsplit_once(':')?;
            loop {
                let applied: Option<i64> = sqlx::query_scalar(
                    "SELECT last_sequence FROM projection.stream_positions WHERE projection = 'users' AND aggregate_id = $1",
                )
                .bind(stream)
                .fetch_optional(&target.watcher)
                .await
                .ok()?;
                if applied.is_some() {
                    return Some(answered.elapsed());
                }
                if answered.elapsed() > Duration::from_secs(10) {
                    return None;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }));
        n += 1;
        tokio::time::sleep(interval).await;
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for task in tasks {
        match task.await.unwrap() {
            Some(latency) => latencies.push(latency),
            None => errors += 1,
        }
    }
    let mut row = summarize(
        "command -> projection latency",
        1,
        latencies,
        errors,
        started.elapsed(),
        peak_rss_mib(target.pid),
    );
    row.baseline = Some(format!(
        "offered load {rate:.0}/s (half of the 16-client create rate)"
    ));
    row
}

/// pgbench with the same transaction shape as a create command: read one stream by primary
/// key, insert one event row, commit.
fn pgbench(database_url: &str, clients: usize, out: &Path) -> Row {
    let script = out.join("append.sql");
    std::fs::write(
        &script,
        "\\set id random(1, 9000000000000000)\n\
         BEGIN;\n\
         SELECT sequence, payload FROM events WHERE aggregate_type = 'PgBench' AND aggregate_id = 'pgbench:' || :id ORDER BY sequence;\n\
         INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         VALUES ('PgBench', 'pgbench:' || :id, 1, 'Appended', '1', '{\"Appended\":{}}', \
         '{\"request_id\":\"pgbench\",\"correlation_id\":\"pgbench\",\"causation_id\":\"pgbench\",\"actor\":\"system:pgbench\",\"tenant_id\":\"pgbench\",\"command\":\"Append\",\"recorded_at\":\"2026-01-01T00:00:00Z\"}');\n\
         COMMIT;\n",
    )
    .unwrap();
    let prefix = out.join(format!("pgbench-{clients}"));
    let status = std::process::Command::new("pgbench")
        .args(["-n", "-f"])
        .arg(&script)
        .args([
            "-c",
            &clients.to_string(),
            "-j",
            "2",
            "-T",
            &RUN.as_secs().to_string(),
            "-l",
            "--log-prefix",
        ])
        .arg(&prefix)
        .arg(database_url)
        .current_dir(out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("pgbench runs (Debian package postgresql-contrib or postgresql-client)");
    assert!(status.success(), "pgbench failed");
    let mut latencies = Vec::new();
    for entry in std::fs::read_dir(out).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with(&format!("pgbench-{clients}.")) {
            for line in std::fs::read_to_string(entry.path()).unwrap().lines() {
                // client_id transaction_no time script_no time_epoch time_us
                if let Some(us) = line
                    .split_whitespace()
                    .nth(2)
                    .and_then(|t| t.parse::<u64>().ok())
                {
                    latencies.push(Duration::from_micros(us));
                }
            }
            std::fs::remove_file(entry.path()).unwrap();
        }
    }
    summarize("baseline: pgbench append", clients, latencies, 0, RUN, 0.0)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn markdown(rows: &[Row]) -> String {
    let mut out = String::from(
        "| scenario | clients | ops | errors | ops/s | p50 ms | p95 ms | p99 ms | peak RSS MiB | vs baseline |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for r in rows {
        let ratio = match (&r.ratio_to_baseline, &r.baseline) {
            (Some(ratio), Some(baseline)) => format!("{ratio:.2}x {baseline}"),
            (None, Some(baseline)) => baseline.clone(),
            _ => String::new(),
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.0} | {} |\n",
            r.scenario,
            r.clients,
            r.operations,
            r.errors,
            r.per_second,
            r.p50_ms,
            r.p95_ms,
            r.p99_ms,
            r.peak_server_rss_mib,
            ratio
        ));
    }
    out
}

#[tokio::main]
async fn main() {
    let database_url =
        std::env::var("DATABASE_URL").expect("DATABASE_URL (the bench recipe sets it)");
    let nats_url = std::env::var("NATS_URL").expect("NATS_URL (the bench recipe sets it)");
    let backend = PathBuf::from(
        std::env::var("BENCH_BACKEND").unwrap_or_else(|_| "target/release/backend".into()),
    );
    let out = PathBuf::from("target/bench");
    std::fs::create_dir_all(&out).unwrap();
    let out = out.canonicalize().unwrap();
    let run = format!("b{}", Uuid::new_v4().simple().to_string().get(..8).unwrap());

    // A fresh database for this run (earlier bench databases are dropped).
    let admin_url = with_database(&database_url, "postgres");
    let mut admin = PgConnection::connect(&admin_url).await.unwrap();
    let old: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'bench_%'")
            .fetch_all(&mut admin)
            .await
            .unwrap();
    for name in old {
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut admin)
            .await
            .unwrap();
    }
    let database = format!("bench_{run}");
    sqlx::query(&format!("CREATE DATABASE {database}"))
        .execute(&mut admin)
        .await
        .unwrap();
    let bench_url = with_database(&database_url, &database);

    let port = free_port();
    let env = [
        ("DATABASE_URL", bench_url.clone()),
        ("NATS_URL", nats_url),
        ("APP_HTTP__PORT", port.to_string()),
        ("APP_NATS__STREAM", format!("BENCH_{run}")),
        ("APP_NATS__SUBJECT_PREFIX", format!("bench{run}")),
        ("APP_RATE_LIMIT__ENABLED", "false".to_owned()),
        ("APP_DATABASE__MAX_CONNECTIONS", "40".to_owned()),
        ("APP_LOG__FILTER", "warn".to_owned()),
    ];
    let mut server = tokio::process::Command::new(&backend)
        .arg("serve")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("start {backend:?}: {e}"));
    let pid = server.id().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(128)
        .build()
        .unwrap();
    let started = Instant::now();
    while client
        .get(format!("{base}/health/live"))
        .send()
        .await
        .is_err()
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the backend did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let key_output = std::process::Command::new(&backend)
        .args(["create-admin-key", "--tenant", "bench"])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stderr(Stdio::null())
        .output()
        .unwrap();
    let key = String::from_utf8(key_output.stdout)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_owned();
    let watcher = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .connect(&bench_url)
        .await
        .unwrap();
    let target = Arc::new(Target {
        base,
        key,
        client,
        watcher,
        pid,
    });

    let mut rows = Vec::new();
    eprintln!("bench: create commands and the pgbench baseline at 16 and 64 clients...");
    for clients in [16, 64] {
        let baseline = pgbench(&bench_url, clients, &out);
        let mut row = create_users(&target, clients, &run).await;
        row.ratio_to_baseline = Some(row.per_second / baseline.per_second);
        row.baseline = Some(format!("pgbench {:.0}/s", baseline.per_second));
        rows.push(baseline);
        rows.push(row);
    }
    eprintln!("bench: seeding 400 users with 15 events each...");
    let ids = Arc::new(seed_users(&target, 400, 15).await);
    eprintln!("bench: update commands...");
    let baseline = rows
        .iter()
        .find(|r| r.scenario.starts_with("baseline") && r.clients == 16)
        .cloned()
        .unwrap();
    let mut row = update_users(&target, 16, ids.clone()).await;
    row.ratio_to_baseline = Some(row.per_second / baseline.per_second);
    row.baseline = Some(format!("pgbench {:.0}/s", baseline.per_second));
    rows.push(row);
    eprintln!("bench: command -> projection latency...");
    let create16 = rows
        .iter()
        .find(|r| r.scenario.starts_with("create") && r.clients == 16)
        .unwrap()
        .per_second;
    rows.push(command_to_projection(&target, create16 / 2.0).await);
    eprintln!("bench: queries...");
    rows.push(queries(&target, 16, ids.clone(), false).await);
    rows.push(queries(&target, 16, ids, true).await);

    let _ = server.kill().await;
    let table = markdown(&rows);
    println!("\n{table}");
    let machine = format!(
        "{} cores, {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(
                |c| c.lines().find(|l| l.starts_with("model name")).map(|l| l
                    .split(':')
                    .nth(1)
                    .unwrap_or("")
                    .trim()
                    .to_owned())
            )
            .unwrap_or_default()
    );
    let report =
        json!({ "machine": machine, "run_seconds_per_scenario": RUN.as_secs(), "rows": rows });
    std::fs::write(
        out.join("report.json"),
        serde_json::to_string_pretty(&report).unwrap(),
    )
    .unwrap();
    let md = format!(
        "# Benchmark report\n\nMachine: {machine}. Each timed scenario runs {}s. Command throughput is \
         compared with pgbench running the same transaction shape on the same Postgres in the same run.\n\n{table}\n\
         Not measured yet (see the note on the benchmark issue): rebuild rate over 1M events, long \
         streams, store growth at 10M events, and the bottleneck analysis.\n",
        RUN.as_secs()
    );
    std::fs::write(out.join("report.md"), md).unwrap();
    eprintln!("bench: wrote target/bench/report.json and target/bench/report.md");
}
