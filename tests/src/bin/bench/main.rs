//! `just bench`: load scenarios against a release build of the backend, each next to a baseline
//! measured in the same run, reported as a table, `target/bench/report.json` and
//! `target/bench/report.md`.
//!
//! The backend runs as its own process (so its CPU and peak RSS are its own), against a fresh
//! database and JetStream stream, only on 127.0.0.1. Load comes from this small client because
//! the requests vary (unique emails, idempotency keys, ids). The store scenarios (rebuild,
//! store growth) run in a second database with no backend attached, so the relay does not
//! publish their bulk history.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::unwrap_used,
    clippy::expect_used
)]

mod baseline;
mod fanout;
mod load;
mod prices;
mod report;
mod setup;
mod store;
mod streams;
mod system;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use uuid::Uuid;

use baseline::Baseline;
use load::{Row, Target};
use report::{Breakdown, Report};
use setup::{drop_database, fresh_databases, start_backend, with_database};
use store::Statements;
use system::{peak_rss_mib, CpuMeter};

/// How long each timed scenario runs.
const RUN: Duration = Duration::from_secs(10);
/// The backend's default snapshot interval (`commands.snapshot_every_events`).
const SNAPSHOT_EVERY: u64 = commands::bus::DEFAULT_SNAPSHOT_EVERY;
/// Events the rebuild scenario rebuilds from (users of ten events each).
const REBUILD_EVENTS: i64 = 1_000_000;
/// Events stored before the second append measurement of the store-growth scenario.
const GROWN_STORE_EVENTS: i64 = 10_000_000;
/// Events per read in the rebuild and its raw-read baseline.
const FEED_BATCH: i64 = 5_000;
/// Target languages of the submitted jobs (and of the filtered job list).
const LANGUAGES: [&str; 4] = ["de", "fr", "pt-BR", "ja"];
/// Partitions of every projection (the backend's default).
const PARTITIONS: u32 = 4;
/// The tenant of the bench's key and of its bulk history.
const TENANT: &str = "bench";

/// Waits until the users projection has applied `sequence` of every stream in `ids`.
async fn wait_projected(pool: &PgPool, ids: &[String], sequence: i64) {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let done: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM projection.stream_positions
              WHERE projection = 'users' AND aggregate_type = 'User'
                AND aggregate_id = ANY($1) AND last_sequence >= $2",
        )
        .bind(ids)
        .bind(sequence)
        .fetch_one(pool)
        .await
        .unwrap();
        if done == ids.len() as i64 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the users projection did not apply the bulk history within 5 minutes ({done} of {} streams)",
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until every projection has applied every stored event of its streams, so a scenario
/// does not measure the backlog of the one before it.
async fn wait_caught_up(pool: &PgPool) {
    let deadline = Instant::now() + Duration::from_secs(300);
    for projection in projections::registry::Registered::ALL {
        loop {
            let status = projections::status::status(
                pool,
                projection.name(),
                projection.aggregate_types(),
                PARTITIONS,
                "",
            )
            .await
            .unwrap();
            if status.events_behind == 0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{} is still {} events behind after 5 minutes",
                projection.name(),
                status.events_behind
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Registers users at `1 / fraction` of the 16-client create rate `create16` for `RUN` and
/// measures, for each, the time from the command's response until the read model's guard shows
/// its event. One watcher polls the guard for every outstanding command at once, every 5 ms.
async fn command_to_projection(
    target: &Arc<Target>,
    watcher: &PgPool,
    create16: f64,
    fraction: u32,
) -> Row {
    let rate = create16 / f64::from(fraction);
    type Pending = Arc<std::sync::Mutex<std::collections::HashMap<String, Instant>>>;
    let pending: Pending = Arc::default();
    let interval = Duration::from_secs_f64(1.0 / rate.max(1.0));
    let cpu = target.meter.read();
    let started = Instant::now();
    let mut commands = tokio::task::JoinSet::new();
    let mut next = Instant::now();
    let mut n = 0;
    let mut errors = 0;
    let mut latencies = Vec::new();
    // Every 5 ms: polling back to back kept one Postgres backend busy for the bench alone,
    // on a machine whose run queue already stretches every statement that needs CPU.
    let mut poll = tokio::time::interval(Duration::from_millis(5));
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let sending = started.elapsed() < RUN;
        let waiting = !pending.lock().unwrap().is_empty() || !commands.is_empty();
        if !sending && !waiting {
            break;
        }
        tokio::select! {
            // A fixed schedule (not sleep-after-send), so the offered rate holds.
            () = tokio::time::sleep_until(next.into()), if sending => {
                let (target, pending) = (target.clone(), pending.clone());
                commands.spawn(async move {
                    let body = json!({ "email": format!("lat-{n}-{}@bench.example", Uuid::new_v4().simple()), "display_name": "Lat" });
                    let response: Value = target.post("/api/v1/users", &body).send().await.ok()?.json().await.ok()?;
                    let stream = response["aggregate_id"].as_str()?;
                    pending.lock().unwrap().insert(format!("{TENANT}:{stream}"), Instant::now());
                    Some(())
                });
                n += 1;
                next += interval;
            }
            Some(sent) = commands.join_next(), if !commands.is_empty() => {
                if !matches!(sent, Ok(Some(()))) {
                    errors += 1;
                }
            }
            _ = poll.tick() => {
                let ids: Vec<String> = pending.lock().unwrap().keys().cloned().collect();
                if ids.is_empty() {
                    continue;
                }
                let applied: Vec<String> = sqlx::query_scalar(
                    "SELECT aggregate_id FROM projection.stream_positions
                      WHERE projection = 'users' AND aggregate_type = 'User' AND aggregate_id = ANY($1)",
                )
                .bind(&ids)
                // Planned with the ids at hand: a cached generic plan filtered every row.
                .persistent(false)
                .fetch_all(watcher)
                .await
                .unwrap();
                let mut pending = pending.lock().unwrap();
                for id in applied {
                    if let Some(answered) = pending.remove(&id) {
                        latencies.push(answered.elapsed());
                    }
                }
                let before = pending.len();
                pending.retain(|_, answered| answered.elapsed() < Duration::from_secs(10));
                errors += (before - pending.len()) as u64;
            }
        }
    }
    let mut row = Row::new("command -> projection latency", 1, latencies, errors, RUN);
    row.cpu = Some(target.meter.since(&cpu));
    row.peak_rss_mib = Some(peak_rss_mib(target.pid));
    let share = if fraction == 2 { "half" } else { "a quarter" };
    row.baseline = Some(format!(
        "offered load {rate:.0}/s ({share} of the 16-client create rate)"
    ));
    row
}

/// Runs the scenario behind `measure` with statement statistics reset before it, and returns
/// its row and where its time went.
async fn with_breakdown<Fut: std::future::Future<Output = Row>>(
    statements: Option<&Statements>,
    measure: Fut,
) -> (Row, Option<Breakdown>) {
    let Some(statements) = statements else {
        return (measure.await, None);
    };
    statements.reset().await;
    let stop = tokio_util::sync::CancellationToken::new();
    let sampler = tokio::spawn({
        let (statements, stop) = (statements.clone(), stop.clone());
        async move { statements.sample_waits(stop).await }
    });
    let row = measure.await;
    stop.cancel();
    let waits = sampler.await.unwrap();
    let mut breakdown = Breakdown::new(&row, &statements.top(200).await, 10);
    breakdown.session_states = waits;
    (row, Some(breakdown))
}

/// The backend's allocator, so what the bench runs in process (`audit verify`, rebuilds) is
/// measured as the backend runs it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let [_, command, database_url, port] = args.as_slice() {
        if command == "baseline-serve" {
            baseline::serve(database_url, port.parse().unwrap()).await;
            return;
        }
    }
    // `bench commands`: only the create scenarios and their baselines; `bench streams`: those
    // and the long streams (quick measurements while working on the command path); `bench
    // prices`: only the price import and price queries; `bench audit`: only sealing and
    // verifying the audit log, next to the raw feed read.
    let scope = args.get(1).map(String::as_str);
    if let Some(unknown) =
        scope.filter(|scope| !["commands", "streams", "prices", "audit"].contains(scope))
    {
        eprintln!(
            "bench: unknown scope {unknown:?}: use `commands`, `streams`, `prices`, `audit` or nothing for all"
        );
        std::process::exit(2);
    }
    let database_url =
        std::env::var("DATABASE_URL").expect("DATABASE_URL (the bench recipe sets it)");
    let nats_url = std::env::var("NATS_URL").expect("NATS_URL (the bench recipe sets it)");
    let backend = PathBuf::from(
        std::env::var("BENCH_BACKEND").unwrap_or_else(|_| "target/release/backend".into()),
    );
    let out = PathBuf::from("target/bench");
    std::fs::create_dir_all(&out).unwrap();
    let out = out.canonicalize().unwrap();
    let run = format!("b{}", &Uuid::new_v4().simple().to_string()[..8]);
    let live_db = format!("bench_{run}");
    let store_db = format!("bench_{run}_store");
    let prices_db = format!("bench_{run}_prices");
    let kill_db = format!("bench_{run}_kill");
    let framework_db = format!("bench_{run}_framework");
    fresh_databases(
        &database_url,
        &[&live_db, &store_db, &kill_db, &framework_db, &prices_db],
    )
    .await;
    let prices_url = with_database(&database_url, &prices_db);
    let prices_run = format!("{run}p");
    let mut rows = Vec::new();
    if scope == Some("prices") {
        prices::scenarios(&backend, &prices_url, &nats_url, &prices_run, &mut rows).await;
        for db in [&live_db, &store_db, &kill_db, &framework_db, &prices_db] {
            drop_database(&database_url, db).await;
        }
        finish(rows, Vec::new(), Vec::new(), &out);
        return;
    }
    let framework_url = with_database(&database_url, &framework_db);
    let live_url = with_database(&database_url, &live_db);
    let store_url = with_database(&database_url, &store_db);
    if scope == Some("audit") {
        let store = store::migrated(&store_url).await;
        store::fill_history(&store).await;
        let raw = store::raw_read_row(&store).await;
        rows.extend(store::audit_rows(&store, &raw).await);
        rows.push(raw);
        store.close().await;
        for db in [&live_db, &store_db, &kill_db, &framework_db, &prices_db] {
            drop_database(&database_url, db).await;
        }
        finish(rows, Vec::new(), Vec::new(), &out);
        return;
    }

    let mut breakdowns = Vec::new();
    let mut notes = Vec::new();

    let live_caps = [
        ("APP_HTTP__LIVE_STREAMS_PER_PRINCIPAL", "1100"),
        ("APP_HTTP__LIVE_STREAMS_PER_PROCESS", "1100"),
    ];
    let (mut server, target) =
        start_backend(&backend, &live_url, &nats_url, &run, &live_caps).await;
    let target = Arc::new(target);
    // The bench's own connections: watching the read model, bulk history and statistics (a
    // small pool: watching must not load Postgres more than the system under test does).
    let live = PgPoolOptions::new()
        .max_connections(4)
        .connect(&live_url)
        .await
        .unwrap();
    let statements = Statements::enable(&live).await;
    if statements.is_none() {
        notes.push(
            "pg_stat_statements is not loaded by this Postgres (start it with \
             shared_preload_libraries=pg_stat_statements, as `just services` does), so the \
             statement breakdowns are missing."
                .to_owned(),
        );
    }

    eprintln!(
        "bench: create commands, the framework baseline and pgbench at 1, 16 and 64 clients..."
    );
    let (framework_server, framework) = Baseline::start(&framework_url).await;
    let framework = Arc::new(framework);
    let (mut baseline16, mut framework16) = (None, None);
    for clients in [1, 16, 64] {
        let baseline = store::pgbench(&live_url, clients, RUN, &out);
        let f = framework.clone();
        let bare = framework
            .run(
                "framework baseline: create (cqrs-es + postgres-es alone)",
                clients,
                RUN,
                move |n| {
                    let body = json!({ "email": format!("f{clients}-{n}@bench.example"), "display_name": "Bench" });
                    Target::ok(f.post("/api/v1/users", &body))
                },
            )
            .await;
        let t = target.clone();
        let (row, breakdown) = with_breakdown(
            statements.as_ref().filter(|_| clients == 16),
            target.run("create command (register user)", clients, RUN, move |n| {
                let body = json!({ "email": format!("c{clients}-{n}@bench.example"), "display_name": "Bench" });
                Target::ok(t.post("/api/v1/users", &body))
            }),
        )
        .await;
        rows.push(row.against_both(&bare, &baseline));
        breakdowns.extend(breakdown);
        if clients == 16 {
            baseline16 = Some(baseline.clone());
            framework16 = Some(bare.clone());
        }
        rows.push(bare.against_throughput(&baseline));
        rows.push(baseline);
    }
    framework_server.stop().await;
    drop_database(&database_url, &framework_db).await;
    if let Some(scope) = scope {
        if scope == "streams" {
            streams::both_ways(
                server, &target, &live, &backend, &live_url, &nats_url, &run, &mut rows,
            )
            .await;
        } else {
            server.kill().await;
        }
        drop(live);
        for db in [&live_db, &store_db, &kill_db, &prices_db] {
            drop_database(&database_url, db).await;
        }
        finish(rows, breakdowns, notes, &out);
        return;
    }
    let (baseline16, framework16) = (baseline16.unwrap(), framework16.unwrap());
    let create16 = rows
        .iter()
        .find(|r| r.scenario.starts_with("create") && r.clients == 16)
        .unwrap()
        .per_second;

    eprintln!("bench: command -> projection latency...");
    wait_caught_up(&live).await;
    let (row, breakdown) = with_breakdown(
        statements.as_ref(),
        command_to_projection(&target, &live, create16, 2),
    )
    .await;
    rows.push(row);
    breakdowns.extend(breakdown);
    // The same at a quarter, to show how the latency depends on the load.
    wait_caught_up(&live).await;
    rows.push(command_to_projection(&target, &live, create16, 4).await);

    eprintln!("bench: submit-job commands...");
    let upload = target
        .client
        .post(format!("{}/api/v1/documents", target.base))
        .header("x-api-key", &target.key)
        .header("content-type", "text/plain")
        .body("A short text to translate.\n")
        .send()
        .await
        .unwrap();
    let document: Value = upload.json().await.unwrap();
    let document = document["document_id"].as_str().unwrap().to_owned();
    let (t, job_document) = (target.clone(), document.clone());
    let row = target
        .run("create command (submit job)", 16, RUN, move |n| {
            let language = LANGUAGES[n as usize % LANGUAGES.len()];
            let body = json!({
                "kind": "translation", "source_language": "en", "target_language": language,
                "document_id": document, "priority": n % 10,
            });
            Target::ok(t.post("/api/v1/jobs", &body))
        })
        .await;
    rows.push(row.against_both(&framework16, &baseline16));

    eprintln!(
        "bench: live job updates to {} SSE clients...",
        fanout::CLIENTS
    );
    let jetstream = async_nats::jetstream::new(async_nats::connect(&nats_url).await.unwrap());
    let stream_name = format!("BENCH_{run}");
    let consumers = || async {
        let mut stream = jetstream.get_stream(&stream_name).await.unwrap();
        stream.info().await.unwrap().state.consumer_count
    };
    wait_caught_up(&live).await;
    rows.push(fanout::sse_fanout(&target, &job_document, consumers).await);

    eprintln!("bench: 400 users with 15 events each (bulk), update commands...");
    let seeded = Arc::new(store::bulk_users(&live, TENANT, 400, 15).await.unwrap());
    wait_projected(&live, &seeded, 15).await;
    let ids: Arc<Vec<String>> = Arc::new(
        seeded
            .iter()
            .map(|id| id.split_once(':').unwrap().1.to_owned())
            .collect(),
    );
    let (t, i) = (target.clone(), ids.clone());
    let row = target
        .run("update command (rename, 15-20 events)", 16, RUN, move |n| {
            let id = &i[(n as usize * 7919) % i.len()];
            let body = json!({ "display_name": format!("Renamed {n}") });
            Target::ok(t.post(&format!("/api/v1/users/{id}/display-name"), &body))
        })
        .await;
    rows.push(row.against_both(&framework16, &baseline16));

    eprintln!("bench: queries...");
    let (t, i) = (target.clone(), ids.clone());
    rows.push(
        target
            .run("query: user by id", 16, RUN, move |n| {
                Target::ok(t.get(&format!(
                    "/api/v1/users/{}",
                    i[(n as usize * 7919) % i.len()]
                )))
            })
            .await,
    );
    let (t, i) = (target.clone(), ids.clone());
    rows.push(
        target
            .run("query: users page (20)", 16, RUN, move |n| {
                Target::ok(t.get(&format!(
                    "/api/v1/users?limit=20&after={}",
                    i[(n as usize * 31) % i.len()]
                )))
            })
            .await,
    );
    let t = target.clone();
    rows.push(
        target
            .run("query: jobs filtered page (20)", 16, RUN, move |n| {
                let language = LANGUAGES[n as usize % LANGUAGES.len()];
                Target::ok(t.get(&format!(
                    "/api/v1/jobs?status=queued&target_language={language}&limit=20"
                )))
            })
            .await,
    );

    streams::both_ways(
        server, &target, &live, &backend, &live_url, &nats_url, &run, &mut rows,
    )
    .await;
    drop(live);

    eprintln!("bench: kill -9 of one of two backends mid-burst...");
    let kill_url = with_database(&database_url, &kill_db);
    rows.push(setup::recovery_after_kill(&backend, &kill_url, &nats_url, &format!("{run}k")).await);
    drop_database(&database_url, &kill_db).await;

    eprintln!("bench: asset prices...");
    prices::scenarios(&backend, &prices_url, &nats_url, &prices_run, &mut rows).await;
    drop_database(&database_url, &prices_db).await;

    eprintln!("bench: store growth (empty store) and rebuild over {REBUILD_EVENTS} events...");
    let store = store::migrated(&store_url).await;
    let empty = store::pgbench(&store_url, 16, RUN, &out);
    store::fill_history(&store).await;
    let raw = store::raw_read_row(&store).await;
    let meter = CpuMeter::new(None);
    let cpu = meter.read();
    let (rebuilt, elapsed) = store::rebuild_users(&store, FEED_BATCH).await;
    let mut rebuild = Row::rate("rebuild users projection", rebuilt as u64, elapsed);
    rebuild.cpu = Some(meter.since(&cpu));
    rebuild.peak_rss_mib = Some(peak_rss_mib(std::process::id()));
    rows.push(rebuild.against_throughput(&raw));

    rows.extend(store::audit_rows(&store, &raw).await);
    rows.push(raw);

    eprintln!("bench: store growth: filling the store to {GROWN_STORE_EVENTS} events...");
    let filled = Instant::now();
    store::bulk_filler(&store, GROWN_STORE_EVENTS - REBUILD_EVENTS, 2)
        .await
        .unwrap();
    sqlx::query("VACUUM ANALYZE events")
        .execute(&store)
        .await
        .unwrap();
    eprintln!(
        "bench: filled in {:.0} s; appending again...",
        filled.elapsed().as_secs_f64()
    );
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&store)
        .await
        .unwrap();
    let mut grown = store::pgbench(&store_url, 16, RUN, &out);
    grown.scenario = format!("pgbench append, {stored} events stored");
    let mut empty = empty;
    empty.scenario = "pgbench append, empty store".to_owned();
    rows.push(empty.clone());
    rows.push(grown.against_latency(&empty));
    store.close().await;
    drop_database(&database_url, &store_db).await;
    notes.push(
        "Store growth is measured with the pgbench append (the command's statements) \
         rather than HTTP commands: a backend attached to the grown store would first relay \
         its whole bulk history to JetStream."
            .to_owned(),
    );

    drop_database(&database_url, &live_db).await;
    finish(rows, breakdowns, notes, &out);
}

/// Prints the table and writes the report files.
fn finish(rows: Vec<Row>, breakdowns: Vec<Breakdown>, notes: Vec<String>, out: &std::path::Path) {
    let report = Report {
        machine: system::machine(),
        seconds_per_timed_scenario: RUN.as_secs(),
        rows,
        breakdowns,
        notes,
    };
    println!("\n{}", report::table(&report.rows));
    report.write(out).unwrap();
    eprintln!("bench: wrote target/bench/report.json and target/bench/report.md");
}
