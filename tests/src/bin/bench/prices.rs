//! The asset-prices scenarios: a million one-minute bars imported through the import path (the
//! stand-in provider, the backend's importer, `PriceSeries` commands, the relay, the prices
//! projection) next to the same rows inserted straight into the read model by one statement;
//! then ranges of 10,000 bars paged through the API and weekly aggregates of four weeks, each
//! next to the same queries run by the bench on the read model without HTTP.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use projections::prices::{Period, Range};
use serde_json::{json, Value};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use tests::provider::StandInProvider;
use uuid::Uuid;

use crate::load::{Row, Target};
use crate::setup::start_backend;
use crate::{RUN, TENANT};

/// Bars imported.
pub const BARS: i64 = 1_000_000;
/// Bars per import run (a month of minutes, about): the history is asked for as 24 imports.
const BARS_PER_IMPORT: i64 = 43_200;
/// Bars of one range query (ten pages of the largest size).
const RANGE_BARS: i64 = 10_000;
/// The largest page.
const PAGE: i64 = 1_000;
/// Clients of the query scenarios: two cores serve them.
const CLIENTS: usize = 4;
/// The provider's key.
const API_KEY: &str = "bench-provider-key";
/// The symbol imported.
const SYMBOL: &str = "BNCH";

/// The first bar's start: a Monday, so weeks align with the history.
fn start() -> DateTime<Utc> {
    "2023-01-02T00:00:00Z".parse().unwrap()
}

/// The start of minute `n` of the history.
fn minute(n: i64) -> DateTime<Utc> {
    start() + chrono::Duration::minutes(n)
}

/// Runs the prices scenarios against a backend of their own on `database_url`; appends their
/// rows.
pub async fn scenarios(
    backend: &Path,
    database_url: &str,
    nats_url: &str,
    run: &str,
    rows: &mut Vec<Row>,
) {
    let provider = StandInProvider::start(API_KEY).await;
    provider.generate(SYMBOL, "1min", start(), Duration::from_secs(60), BARS);
    let env = [
        ("APP_PRICES__PROVIDER_URL", provider.url.as_str()),
        ("APP_PRICES__PROVIDER_API_KEY", API_KEY),
        ("APP_PRICES__POLL_MS", "100"),
    ];
    let (mut server, target) = start_backend(backend, database_url, nats_url, run, &env).await;
    let pool = PgPoolOptions::new()
        .max_connections(CLIENTS as u32 + 1)
        .connect(database_url)
        .await
        .unwrap();
    let listed: Value = target
        .post(
            "/api/v1/assets",
            &json!({"symbol": SYMBOL, "exchange": "XBEN", "currency": "USD", "kind": "stock",
                    "name": "Bench Inc."}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let asset: Uuid = listed["aggregate_id"].as_str().unwrap().parse().unwrap();

    eprintln!("bench: importing {BARS} one-minute bars through the import path...");
    let raw = raw_insert(&pool).await;
    let cpu = target.meter.read();
    let (imported, elapsed) = import_all(&target, &pool, asset).await;
    let mut row = Row::rate(
        "import 1-min bars (provider -> importer -> store -> projection)",
        imported,
        elapsed,
    );
    row.cpu = Some(target.meter.since(&cpu));
    row.peak_rss_mib = Some(crate::system::peak_rss_mib(target.pid));
    rows.push(row.against_throughput(&raw));
    rows.push(raw);

    eprintln!("bench: ranges of {RANGE_BARS} bars and weekly aggregates...");
    let target = Arc::new(target);
    let pool = Arc::new(pool);
    let sql = range_sql(&target, &pool, asset).await;
    let t = target.clone();
    let api = target
        .run(
            "query: 10,000-bar range (10 pages of 1,000)",
            CLIENTS,
            RUN,
            move |n| {
                let t = t.clone();
                async move { range_api(&t, asset, n).await }
            },
        )
        .await;
    rows.push(api.against_latency(&sql));
    rows.push(sql);
    let p = pool.clone();
    let weekly_sql = target
        .run(
            "SQL alone: weekly aggregates of 4 weeks",
            CLIENTS,
            RUN,
            move |n| {
                let p = p.clone();
                async move {
                    let (from, to) = weeks(n);
                    let range = series(asset, from, to);
                    projections::prices::aggregate(&p, range, Period::Week, None, 10)
                        .await
                        .is_ok_and(|weeks| weeks.len() == 4)
                }
            },
        )
        .await;
    let t = target.clone();
    let weekly = target
        .run(
            "query: weekly aggregates of 4 weeks (40,320 bars)",
            CLIENTS,
            RUN,
            move |n| {
                let (from, to) = weeks(n);
                let path = format!(
                    "/api/v1/assets/{asset}/aggregates?interval=1min&period=week&from={}&to={}",
                    from.format("%Y-%m-%dT%H:%M:%SZ"),
                    to.format("%Y-%m-%dT%H:%M:%SZ")
                );
                let request = t.get(&path);
                async move {
                    let Ok(response) = request.send().await else {
                        return false;
                    };
                    let page: Option<Value> = response.json().await.ok();
                    page.is_some_and(|page| page["items"].as_array().is_some_and(|w| w.len() == 4))
                }
            },
        )
        .await;
    rows.push(weekly.against_latency(&weekly_sql));
    rows.push(weekly_sql);
    server.kill().await;
}

/// The series of `asset`'s one-minute bars in `[from, to)`.
fn series<'a>(asset: Uuid, from: DateTime<Utc>, to: DateTime<Utc>) -> Range<'a> {
    Range {
        tenant: TENANT,
        asset,
        interval: "1min",
        from: Some(from),
        to: Some(to),
    }
}

/// The `n`th range of [`RANGE_BARS`] bars: spread over the whole history.
fn range_of(n: u64) -> (DateTime<Utc>, DateTime<Utc>) {
    let first = (n as i64 * 7_919 * 61) % (BARS - RANGE_BARS);
    (minute(first), minute(first + RANGE_BARS))
}

/// The `n`th four whole weeks of the history.
fn weeks(n: u64) -> (DateTime<Utc>, DateTime<Utc>) {
    let week = 7 * 24 * 60;
    let whole = BARS / week;
    let first = (n as i64 * 7) % (whole - 4);
    (minute(first * week), minute((first + 4) * week))
}

/// One range of [`RANGE_BARS`] bars read through the API, page by page; whether every bar came.
async fn range_api(target: &Target, asset: Uuid, n: u64) -> bool {
    let (from, to) = range_of(n);
    let mut path = format!(
        "/api/v1/assets/{asset}/bars?interval=1min&limit={PAGE}&from={}&to={}",
        from.format("%Y-%m-%dT%H:%M:%SZ"),
        to.format("%Y-%m-%dT%H:%M:%SZ")
    );
    let base = path.clone();
    let mut read = 0;
    loop {
        let Ok(response) = target.get(&path).send().await else {
            return false;
        };
        let Ok(page) = response.json::<Value>().await else {
            return false;
        };
        read += page["items"].as_array().map_or(0, Vec::len) as i64;
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("{base}&after={}", cursor.replace('+', "%2B")),
            None => return read == RANGE_BARS,
        }
    }
}

/// The same ranges read by the bench straight from the read model, page by page.
async fn range_sql(target: &Arc<Target>, pool: &Arc<PgPool>, asset: Uuid) -> Row {
    let p = pool.clone();
    target
        .run(
            "SQL alone: 10,000-bar range (10 pages of 1,000)",
            CLIENTS,
            RUN,
            move |n| {
                let p = p.clone();
                async move {
                    let (from, to) = range_of(n);
                    // Pages as the route reads them: one more bar than the page says whether
                    // another page follows.
                    let (mut after, mut read) = (None, 0);
                    loop {
                        let range = series(asset, from, to);
                        let Ok(mut page) =
                            projections::prices::bars(&p, range, after, PAGE + 1).await
                        else {
                            return false;
                        };
                        let more = page.len() as i64 > PAGE;
                        page.truncate(PAGE as usize);
                        read += page.len() as i64;
                        match page.last() {
                            Some(last) if more => after = Some(last.time),
                            _ => return read == RANGE_BARS,
                        }
                    }
                }
            },
        )
        .await
}

/// Asks for the whole history as imports of [`BARS_PER_IMPORT`] bars and waits until the
/// projection holds every bar; the bars held and the time taken.
async fn import_all(target: &Target, pool: &PgPool, asset: Uuid) -> (u64, Duration) {
    let started = Instant::now();
    let (mut first, mut requested) = (0, 0_i64);
    while first < BARS {
        let last = (first + BARS_PER_IMPORT).min(BARS);
        let body = json!({"interval": "1min", "from": minute(first), "to": minute(last)});
        let response = target
            .post(&format!("/api/v1/assets/{asset}/imports"), &body)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "import request: {}",
            response.text().await.unwrap_or_default()
        );
        first = last;
        requested += 1;
    }
    // Polled lightly, so the watching does not load Postgres: the import runs' status until
    // all completed, then the bars held every 2 s (at most 2 s of the time taken).
    let deadline = Instant::now() + Duration::from_secs(1_800);
    let mut imports_done = false;
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        if !imports_done {
            let completed: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM read_models.price_imports
                  WHERE tenant_id = $1 AND status = 'completed'",
            )
            .bind(TENANT)
            .fetch_one(pool)
            .await
            .unwrap();
            imports_done = completed == requested;
        }
        if imports_done {
            let held: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM read_models.price_bars
                  WHERE tenant_id = $1 AND asset_id = $2 AND interval = '1min'",
            )
            .bind(TENANT)
            .bind(asset)
            .fetch_one(pool)
            .await
            .unwrap();
            if held == BARS {
                return (held as u64, started.elapsed());
            }
        }
        let failed: Option<String> = sqlx::query_scalar(
            "SELECT last_error FROM read_models.price_imports
              WHERE tenant_id = $1 AND status = 'abandoned' LIMIT 1",
        )
        .bind(TENANT)
        .fetch_optional(pool)
        .await
        .unwrap()
        .flatten();
        assert!(failed.is_none(), "an import was abandoned: {failed:?}");
        assert!(
            Instant::now() < deadline,
            "the import did not finish within 30 minutes"
        );
    }
}

/// The baseline: the same number of bars inserted by one statement (no provider, no events, no
/// projection) into a table of the read model's columns and indexes, dropped afterwards.
async fn raw_insert(pool: &PgPool) -> Row {
    sqlx::query("CREATE TABLE bench_raw_bars (LIKE read_models.price_bars INCLUDING ALL)")
        .execute(pool)
        .await
        .unwrap();
    let started = Instant::now();
    sqlx::query(
        "INSERT INTO bench_raw_bars (tenant_id, asset_id, interval, time, open, high, low, close,
                               volume, corrections, recorded_at, updated_at)
         SELECT $1, $2, '1min', $3 + n * interval '1 minute', 100 + n % 1000 / 100.0,
                101 + n % 1000 / 100.0, 99 + n % 1000 / 100.0, 100.5 + n % 1000 / 100.0,
                1000 + n % 7, 0, now(), now()
           FROM generate_series(0, $4 - 1) n",
    )
    .bind(TENANT)
    .bind(Uuid::new_v4())
    .bind(start())
    .bind(BARS)
    .execute(pool)
    .await
    .unwrap();
    let elapsed = started.elapsed();
    sqlx::query("DROP TABLE bench_raw_bars")
        .execute(pool)
        .await
        .unwrap();
    Row::rate(
        "raw insert of the same bars into the read model's table (one statement)",
        BARS as u64,
        elapsed,
    )
}
