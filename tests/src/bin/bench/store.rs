//! Scenarios on the event store itself: the pgbench baseline, bulk history, rebuild against a
//! raw read of the same events, and what Postgres spent its time on.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde::Serialize;
use sqlx::PgPool;

use crate::load::Row;
use crate::system::{peak_rss_mib, CpuMeter};
use crate::{FEED_BATCH, REBUILD_EVENTS, TENANT};

/// pgbench with the statements of a create command: read one stream by primary key, then insert
/// one event row in its own transaction (as the command does, without BEGIN and COMMIT).
pub fn pgbench(database_url: &str, clients: usize, duration: Duration, out: &Path) -> Row {
    let script = out.join("append.sql");
    std::fs::write(
        &script,
        "\\set id random(1, 9000000000000000)\n\
         SELECT sequence, payload FROM events WHERE aggregate_type = 'PgBench' AND aggregate_id = 'pgbench:' || :id ORDER BY sequence;\n\
         INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         VALUES ('PgBench', 'pgbench:' || :id, 1, 'Appended', '1', '{\"Appended\":{}}', \
         '{\"request_id\":\"pgbench\",\"correlation_id\":\"pgbench\",\"causation_id\":\"pgbench\",\"actor\":\"system:pgbench\",\"tenant_id\":\"pgbench\",\"command\":\"Append\",\"recorded_at\":\"2026-01-01T00:00:00Z\"}');\n",
    )
    .expect("write the pgbench script");
    let prefix = format!("pgbench-{}", uuid::Uuid::new_v4().simple());
    let status = std::process::Command::new("pgbench")
        .args(["-n", "-f"])
        .arg(&script)
        .args(["-c", &clients.to_string(), "-j", "2", "-T"])
        .arg(duration.as_secs().max(1).to_string())
        .args(["-l", "--log-prefix", &prefix])
        .arg(database_url)
        .current_dir(out)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .status()
        .expect("pgbench runs (Debian package postgresql-client)");
    assert!(status.success(), "pgbench failed");
    let mut latencies = Vec::new();
    for entry in std::fs::read_dir(out).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if !name.starts_with(&prefix) {
            continue;
        }
        let log = std::fs::read_to_string(entry.path()).unwrap_or_default();
        // Each line: client_id transaction_no time_us script_no time_epoch time_us_part.
        latencies.extend(log.lines().filter_map(|line| {
            let micros = line.split_whitespace().nth(2)?.parse::<u64>().ok()?;
            Some(Duration::from_micros(micros))
        }));
        let _ = std::fs::remove_file(entry.path());
    }
    Row::new("pgbench append", clients, latencies, 0, duration)
}

pub use tests::bulk::users as bulk_users;

/// Seals the whole store into the audit log, `batch` events per transaction (no checkpoints):
/// events sealed and the time taken.
pub async fn seal_all(pool: &PgPool, batch: i64) -> (u64, Duration) {
    use commands::audit::sealer::{Sealer, SealerSettings};
    let settings = SealerSettings {
        origin: "bench.local".to_owned(),
        poll_interval: Duration::from_secs(1),
        batch,
        checkpoint_every: i64::MAX,
        checkpoint_interval: Duration::from_secs(3600),
    };
    let sealer = Sealer::new(pool.clone(), settings, None);
    let started = Instant::now();
    let mut sealed = 0;
    loop {
        let step = sealer.seal_once().await.expect("sealing");
        if step == 0 {
            return (sealed, started.elapsed());
        }
        sealed += step as u64;
    }
}

/// A pool on the store database at `url`, migrated, with room for a rebuild's lanes and its
/// bookkeeping.
pub async fn migrated(url: &str) -> PgPool {
    let store = sqlx::postgres::PgPoolOptions::new()
        .max_connections(8)
        .connect(url)
        .await
        .unwrap();
    eventstore_migrations::MIGRATOR.run(&store).await.unwrap();
    store
}

/// Fills the store with the history the rebuild and the audit log are measured over:
/// [`REBUILD_EVENTS`] user events of the bench tenant, then vacuumed.
pub async fn fill_history(store: &PgPool) {
    bulk_users(store, TENANT, REBUILD_EVENTS / 10, 10)
        .await
        .unwrap();
    sqlx::query("VACUUM ANALYZE events")
        .execute(store)
        .await
        .unwrap();
}

/// The raw feed read of the store's `User` events (the ceiling of a rebuild and of `audit
/// verify`), with the CPU and memory it took.
pub async fn raw_read_row(store: &PgPool) -> Row {
    let meter = CpuMeter::new(None);
    let cpu = meter.read();
    let (read, elapsed) = raw_read(store, "User", FEED_BATCH).await;
    let mut raw = Row::rate(
        "raw feed read (the rebuild's ceiling)",
        read as u64,
        elapsed,
    );
    raw.cpu = Some(meter.since(&cpu));
    raw.peak_rss_mib = Some(peak_rss_mib(std::process::id()));
    raw
}

/// Sealing the store's events into the audit log, then `audit verify` of it, each against the
/// raw read.
pub async fn audit_rows(store: &PgPool, raw: &Row) -> Vec<Row> {
    eprintln!("bench: sealing and verifying the audit log over {REBUILD_EVENTS} events...");
    let (sealed, elapsed) = seal_all(store, FEED_BATCH).await;
    let mut seal = Row::rate("seal audit log (leaves + stored hashes)", sealed, elapsed);
    seal.peak_rss_mib = Some(peak_rss_mib(std::process::id()));
    let meter = CpuMeter::new(None);
    let cpu = meter.read();
    let (verified, elapsed) = verify_all(store, TENANT).await;
    let mut verify = Row::rate(
        "audit verify (leaves recomputed, tree rebuilt)",
        verified,
        elapsed,
    );
    verify.cpu = Some(meter.since(&cpu));
    verify.peak_rss_mib = Some(peak_rss_mib(std::process::id()));
    vec![seal.against_throughput(raw), verify.against_throughput(raw)]
}

/// `audit verify` of `tenant`'s sealed log: events verified and the time taken.
pub async fn verify_all(pool: &PgPool, tenant: &str) -> (u64, Duration) {
    let started = Instant::now();
    let verification = commands::audit::verify::verify(pool, tenant, None)
        .await
        .expect("verifying");
    assert!(
        verification.findings.is_empty(),
        "{:?}",
        verification.findings
    );
    (verification.stored, started.elapsed())
}

/// Fills the store with `events` small events of an aggregate type no projection reads, from
/// `connections` connections at once (history for the store-growth scenario).
pub async fn bulk_filler(pool: &PgPool, events: i64, connections: i64) -> Result<(), sqlx::Error> {
    let chunk = 500_000;
    let chunks = (events + chunk - 1) / chunk;
    let next = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(0));
    let mut workers = Vec::new();
    for _ in 0..connections {
        let (pool, next) = (pool.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let c = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if c >= chunks {
                    return Ok::<_, sqlx::Error>(());
                }
                let first = c * chunk;
                let last = (first + chunk).min(events) - 1;
                sqlx::query(
                    "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type,
                                         event_version, payload, metadata)
                     SELECT 'BenchFiller', 'bench:filler-' || (s / 10), s % 10 + 1, 'Filled', '1',
                            '{\"Filled\":{}}',
                            json_build_object('request_id', 'bulk', 'correlation_id', 'bulk',
                                              'causation_id', 'bulk', 'actor', 'system:bench',
                                              'tenant_id', 'bench', 'command', 'BulkLoad',
                                              'recorded_at', now())
                       FROM generate_series($1::bigint, $2::bigint) s",
                )
                .bind(first)
                .bind(last)
                .execute(&pool)
                .await?;
            }
        }));
    }
    for worker in workers {
        worker.await.expect("filler worker panicked")?;
    }
    Ok(())
}

/// Reads the whole feed in batches of `batch` through the same query a rebuild uses, keeping
/// the events of `aggregate_type`; returns how many and how long it took.
pub async fn raw_read(pool: &PgPool, aggregate_type: &str, batch: i64) -> (i64, Duration) {
    let started = Instant::now();
    let mut cursor = commands::feed::FeedCursor::default();
    let mut count = 0;
    loop {
        let events = commands::feed::read(pool, cursor, batch)
            .await
            .expect("read the feed");
        let Some(last) = events.last() else { break };
        cursor = commands::feed::FeedCursor::after(last);
        count += events
            .iter()
            .filter(|event| event.aggregate_type == aggregate_type)
            .count() as i64;
        if (events.len() as i64) < batch {
            break;
        }
    }
    (count, started.elapsed())
}

/// Rebuilds the users projection from the store; returns the events applied and the time.
pub async fn rebuild_users(pool: &PgPool, batch: i64) -> (i64, Duration) {
    let started = Instant::now();
    let source = api::rebuild::FeedSource::new(pool.clone());
    let rebuilt = projections::rebuild::rebuild(
        &projections::users::UsersProjection,
        pool,
        &source,
        batch,
        &mut |_| {},
    )
    .await
    .expect("rebuild the users projection");
    (rebuilt.events, started.elapsed())
}

/// One statement's share of Postgres's time during a scenario.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Statement {
    pub calls: i64,
    pub total_ms: f64,
    pub mean_ms: f64,
    pub query: String,
}

/// `pg_stat_statements` for one database, when the server loads it.
#[derive(Debug, Clone)]
pub struct Statements {
    pool: PgPool,
}

impl Statements {
    /// Enables the extension in the database behind `pool`; `None` if the server was started
    /// without `shared_preload_libraries=pg_stat_statements`.
    pub async fn enable(pool: &PgPool) -> Option<Self> {
        sqlx::query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            .execute(pool)
            .await
            .ok()?;
        let statements = Self { pool: pool.clone() };
        statements.reset().await.then_some(statements)
    }

    /// Forgets what was counted so far.
    pub async fn reset(&self) -> bool {
        sqlx::query("SELECT pg_stat_statements_reset()")
            .execute(&self.pool)
            .await
            .is_ok()
    }

    /// Samples what this database's active sessions are doing (running, or waiting on which
    /// lock or I/O) every 10 ms until `stop`; returns each state's share of the samples.
    pub async fn sample_waits(
        &self,
        stop: tokio_util::sync::CancellationToken,
    ) -> Vec<(String, f64)> {
        let mut counts = std::collections::HashMap::<String, i64>::new();
        while !stop.is_cancelled() {
            let rows: Vec<(String, i64)> = sqlx::query_as(
                "SELECT coalesce(wait_event_type || ':' || wait_event, 'running on CPU'), count(*)
                   FROM pg_stat_activity
                  WHERE state = 'active' AND pid <> pg_backend_pid()
                    AND datname = current_database()
                  GROUP BY 1",
            )
            .fetch_all(&self.pool)
            .await
            .unwrap_or_default();
            for (state, count) in rows {
                *counts.entry(state).or_default() += count;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let total = counts.values().sum::<i64>().max(1) as f64;
        let mut shares: Vec<(String, f64)> = counts
            .into_iter()
            .map(|(state, count)| (state, count as f64 / total))
            .collect();
        shares.sort_by(|a, b| b.1.total_cmp(&a.1));
        shares.truncate(8);
        shares
    }

    /// The statements of this database that took the most time since the last reset.
    pub async fn top(&self, limit: i64) -> Vec<Statement> {
        sqlx::query_as(
            "SELECT calls, total_exec_time AS total_ms, mean_exec_time AS mean_ms,
                    left(regexp_replace(query, '\\s+', ' ', 'g'), 140) AS query
               FROM pg_stat_statements
              WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
                AND query NOT LIKE '%pg_stat_statements%'
              ORDER BY total_exec_time DESC
              LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .unwrap_or_default()
    }
}
