//! Price imports run by the backend's own importer against a stand-in provider (the real one is
//! a third party): a range fetched page by page and recorded, the same import asked again
//! changing nothing; a failing and a slow provider retried with backoff while the circuit
//! breaker holds requests back; a refused import abandoned, then asked again and completed; a
//! provider that changes its answer recorded as corrections naming the import.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tests::provider::{StandInProvider, Values};

use crate::helpers::{spawn_app_with, wait_until, TestApp};

pub(crate) const KEY: &str = "stand-in-key";

pub(crate) fn day(n: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap() + chrono::Duration::days(n)
}

/// Daily bars of days `days`, closing at 100 + the day (and `bump` more).
pub(crate) fn daily(days: std::ops::Range<i64>, bump: i64) -> Vec<(DateTime<Utc>, Values)> {
    days.map(|n| {
        let close = 100 + n + bump;
        (
            day(n),
            [
                format!("{}.50000", close - 1),
                format!("{}.00000", close + 2),
                format!("{}.00000", close - 3),
                format!("{close}.00000"),
                format!("{}", 1_000 + n),
            ],
        )
    })
    .collect()
}

pub(crate) async fn app_with(
    provider: &StandInProvider,
    tune: impl FnOnce(&mut api::config::PriceSettings),
) -> TestApp {
    let url = provider.url.clone();
    spawn_app_with(move |settings| {
        let prices = &mut settings.prices;
        prices.provider_url = url;
        prices.provider_api_key = api::config::Secret::new(KEY);
        prices.page_size = 50;
        prices.poll_ms = 50;
        prices.request_timeout_ms = 2_000;
        prices.retry_base_delay_ms = 100;
        prices.retry_max_delay_ms = 400;
        tune(prices);
    })
    .await
}

/// Lists `symbol` on XNAS and waits until it reads back; returns its id.
pub(crate) async fn asset(app: &TestApp, symbol: &str) -> String {
    let response = app
        .post_json(
            "/api/v1/assets",
            &json!({"symbol": symbol, "exchange": "XNAS", "currency": "USD", "kind": "stock",
                    "name": symbol}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    let shown = app
        .request(
            Method::GET,
            &format!("/api/v1/assets/{}", body["aggregate_id"].as_str().unwrap()),
        )
        .header(
            "x-consistency-token",
            body["consistency_token"].as_str().unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(shown.status(), StatusCode::OK);
    body["aggregate_id"].as_str().unwrap().to_owned()
}

/// Asks for the daily bars of days `[from, to)`; returns the import's location.
pub(crate) async fn import(app: &TestApp, asset: &str, from: i64, to: i64) -> String {
    let response = app
        .post_json(
            &format!("/api/v1/assets/{asset}/imports"),
            &json!({"interval": "1day", "from": day(from), "to": day(to)}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    response.headers()["location"].to_str().unwrap().to_owned()
}

/// Waits until the import at `location` is `status`; returns it.
pub(crate) async fn settled(app: &TestApp, location: &str, status: &str) -> Value {
    let found = std::sync::Mutex::new(Value::Null);
    wait_until(
        &format!("the import is {status}"),
        Duration::from_secs(60),
        || async {
            let response = app.get(location).await;
            if response.status() != StatusCode::OK {
                return false;
            }
            let body: Value = response.json().await.unwrap();
            let done = body["status"] == status;
            *found.lock().unwrap() = body;
            done
        },
    )
    .await;
    found.into_inner().unwrap()
}

pub(crate) async fn bars(app: &TestApp, asset: &str) -> Vec<Value> {
    let page: Value = app
        .get(&format!(
            "/api/v1/assets/{asset}/bars?interval=1day&limit=1000"
        ))
        .await
        .json()
        .await
        .unwrap();
    page["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn an_import_fetches_its_range_page_by_page_and_asking_again_changes_nothing() {
    let provider = StandInProvider::start(KEY).await;
    provider.put("AAPL", "1day", daily(0..130, 0));
    let app = app_with(&provider, |_| {}).await;
    let aapl = asset(&app, "AAPL").await;
    let location = import(&app, &aapl, 0, 120).await;
    let done = settled(&app, &location, "completed").await;
    assert_eq!(done["fetched"], json!(120));
    assert_eq!(done["attempts"], json!(1));
    assert_eq!(
        done["recorded_until"]
            .as_str()
            .map(|t| t.parse::<DateTime<Utc>>().unwrap()),
        Some(day(120))
    );
    assert_eq!(provider.requests(), 3, "three pages of at most 50");
    wait_until("every bar is readable", Duration::from_secs(30), || async {
        bars(&app, &aapl).await.len() == 120
    })
    .await;
    let stored = bars(&app, &aapl).await;
    assert_eq!(stored[0]["open"], json!("99.5"), "exact, normalised");
    assert_eq!(stored[119]["close"], json!("219"));

    let events = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM events WHERE aggregate_type IN ('PriceImport', 'PriceSeries')",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap()
    };
    let before = events().await;
    assert_eq!(
        import(&app, &aapl, 0, 120).await,
        location,
        "the same range is the same import"
    );
    // Asking again appended nothing (the answer came after the command decided), and a
    // completed import is never due: the importer has nothing to fetch.
    assert_eq!(events().await, before, "nothing appended");
    assert_eq!(provider.requests(), 3, "nothing fetched again");

    let listed: Value = app
        .get(&format!(
            "/api/v1/price-imports?asset={aapl}&status=completed"
        ))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_failing_or_slow_provider_is_retried_with_backoff_behind_its_breaker() {
    let provider = StandInProvider::start(KEY).await;
    provider.put("MSFT", "1day", daily(0..20, 0));
    // Down for three requests: two outages open the breaker, its first probe fails and opens it
    // again, the second probe succeeds and closes it.
    provider.fail_next(3);
    let cooldown = Duration::from_millis(1_000);
    let app = app_with(&provider, |prices| {
        prices.breaker_failures = 2;
        prices.breaker_cooldown_ms = 1_000;
    })
    .await;
    let msft = asset(&app, "MSFT").await;
    let breaker = |state: &'static str| {
        let app = &app;
        async move {
            let metrics = app
                .anonymous(Method::GET, "/metrics")
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            metrics.contains(&format!("price_provider_breaker{{state=\"{state}\"}} 1"))
        }
    };
    assert!(breaker("closed").await, "closed before any request");
    let location = import(&app, &msft, 0, 20).await;
    // Operators see it open in this process's metrics.
    wait_until(
        "metrics show the breaker open",
        Duration::from_secs(30),
        || breaker("open"),
    )
    .await;
    let done = settled(&app, &location, "completed").await;
    assert!(
        breaker("closed").await,
        "closed again by the probe that succeeded"
    );
    assert_eq!(done["attempts"], json!(4), "three failures, then success");
    assert!(
        done["last_error"].as_str().unwrap().contains("503"),
        "{done}"
    );
    // No request while the breaker is open: each probe comes a whole cooldown after the outage
    // that opened it (the backoff alone would retry after 100 to 400 ms).
    let arrivals = provider.arrivals();
    assert_eq!(arrivals.len(), 4, "one request per attempt: {arrivals:?}");
    assert!(arrivals[2] - arrivals[1] >= cooldown, "{arrivals:?}");
    assert!(arrivals[3] - arrivals[2] >= cooldown, "{arrivals:?}");

    // A provider slower than the request timeout fails the attempt; once it answers in time,
    // the retry completes.
    provider.delay(Duration::from_millis(2_500));
    let location = import(&app, &msft, 0, 10).await;
    wait_until(
        "a slow answer fails the attempt",
        Duration::from_secs(30),
        || async {
            let body: Value = app.get(&location).await.json().await.unwrap_or_default();
            body["last_error"]
                .as_str()
                .is_some_and(|error| error.contains("no answer in time"))
        },
    )
    .await;
    provider.delay(Duration::ZERO);
    let done = settled(&app, &location, "completed").await;
    assert!(done["attempts"].as_i64().unwrap() >= 2, "{done}");
}

#[tokio::test]
async fn a_refused_import_is_abandoned_and_asked_again_starts_over() {
    let provider = StandInProvider::start(KEY).await;
    let app = app_with(&provider, |prices| prices.max_attempts = 2).await;
    let nvda = asset(&app, "NVDA").await;
    let location = import(&app, &nvda, 0, 5).await;
    let abandoned = settled(&app, &location, "abandoned").await;
    assert_eq!(abandoned["attempts"], json!(2));
    assert!(
        abandoned["last_error"]
            .as_str()
            .unwrap()
            .contains("symbol not found"),
        "{abandoned}"
    );
    provider.put("NVDA", "1day", daily(0..5, 0));
    assert_eq!(import(&app, &nvda, 0, 5).await, location);
    let done = settled(&app, &location, "completed").await;
    assert_eq!(done["attempts"], json!(1), "asked again, it starts over");
    assert_eq!(done["fetched"], json!(5));
}

#[tokio::test]
async fn a_provider_that_changes_its_answer_leaves_corrections_naming_the_import() {
    let provider = StandInProvider::start(KEY).await;
    provider.put("TSLA", "1day", daily(0..10, 0));
    let app = app_with(&provider, |_| {}).await;
    let tsla = asset(&app, "TSLA").await;
    let first = import(&app, &tsla, 0, 10).await;
    settled(&app, &first, "completed").await;
    // The provider revises day 3 (and reports fewer bars than before: none is lost).
    provider.put("TSLA", "1day", daily(3..4, 1));
    let second = import(&app, &tsla, 3, 4).await;
    assert_ne!(second, first);
    settled(&app, &second, "completed").await;
    let second_id = second.rsplit('/').next().unwrap();
    let path = format!(
        "/api/v1/assets/{tsla}/corrections?interval=1day&time={}",
        day(3).to_rfc3339().replace('+', "%2B")
    );
    let history = std::sync::Mutex::new(Value::Null);
    wait_until(
        "the correction is readable",
        Duration::from_secs(30),
        || async {
            let body: Value = app.get(&path).await.json().await.unwrap_or_default();
            let corrected = body["corrections"]
                .as_array()
                .is_some_and(|all| all.len() == 1);
            *history.lock().unwrap() = body;
            corrected
        },
    )
    .await;
    let history = history.into_inner().unwrap();
    let correction = &history["corrections"][0];
    assert_eq!(correction["provider"], json!("twelvedata"));
    assert_eq!(correction["import_id"], json!(second_id));
    assert_eq!(correction["previous"]["close"], json!("103"));
    assert_eq!(correction["bar"]["close"], json!("104"));
    assert_eq!(bars(&app, &tsla).await.len(), 10, "nothing lost");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_import_cut_by_kill_9_is_taken_over_after_its_lease_and_records_each_bar_once() {
    use tests::process::Launch;

    let provider = StandInProvider::start(KEY).await;
    provider.put("AMZN", "1day", daily(0..60, 0));
    provider.delay(Duration::from_millis(400));
    // This process serves the requests; the importer (and relay and projections) run in
    // backend processes: the first is killed part-way through the import.
    let app = spawn_app_with(|settings| {
        settings.roles = api::config::Roles::parse("commands,queries").unwrap();
    })
    .await;
    let settings = &app.settings;
    let launch = Launch::new(
        &Launch::built_binary(),
        settings.database.url.expose(),
        settings.nats.url.expose(),
        &settings.nats.stream,
    )
    .env("APP_NATS__SUBJECT_PREFIX", &settings.nats.subject_prefix)
    .env(
        "APP_NATS__MAX_AGE_SECS",
        &settings.nats.max_age_secs.to_string(),
    )
    .env("APP_ROLES", "workers")
    .env("APP_PRICES__PROVIDER_URL", &provider.url)
    .env("APP_PRICES__PROVIDER_API_KEY", KEY)
    .env("APP_PRICES__PAGE_SIZE", "10")
    .env("APP_PRICES__POLL_MS", "50")
    .env("APP_PRICES__LEASE_SECS", "2")
    .env("APP_PRICES__REQUEST_TIMEOUT_MS", "1000");
    let mut first = launch.start().await;
    let amzn = asset(&app, "AMZN").await;
    let location = import(&app, &amzn, 0, 60).await;
    wait_until(
        "the first attempt recorded some pages",
        Duration::from_secs(60),
        || async {
            let body: Value = app.get(&location).await.json().await.unwrap_or_default();
            body["fetched"]
                .as_i64()
                .is_some_and(|fetched| (20..=30).contains(&fetched))
        },
    )
    .await;
    first.kill().await;
    let _second = launch.start().await;
    let done = settled(&app, &location, "completed").await;
    assert_eq!(
        done["attempts"],
        json!(2),
        "taken over once its lease ended: {done}"
    );
    assert_eq!(done["fetched"], json!(60));
    // The second attempt resumed where the first one's recording stood: it did not ask for
    // every page again (six pages of ten in all, the first attempt asked for at least two).
    assert!(provider.requests() < 8, "{} requests", provider.requests());
    wait_until("every bar is readable", Duration::from_secs(30), || async {
        bars(&app, &amzn).await.len() == 60
    })
    .await;
    // Each bar was recorded once: the second attempt resumed after the pages the first one
    // recorded, and a page fetched by both (the one cut by the kill) appended nothing again.
    let recorded: i64 = sqlx::query_scalar(
        "SELECT coalesce(sum(json_array_length(payload->'BarsRecorded'->'bars')), 0)::bigint
           FROM events WHERE aggregate_type = 'PriceSeries' AND event_type = 'BarsRecorded'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(recorded, 60);
    let corrected: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'BarsCorrected'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(corrected, 0);
}

#[tokio::test]
async fn a_scheduled_refresh_imports_the_last_completed_bars_and_can_be_stopped() {
    let provider = StandInProvider::start(KEY).await;
    let today = Utc::now()
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc();
    let recent: Vec<(DateTime<Utc>, Values)> = (1..=10)
        .map(|back| {
            let close = 50 + back;
            (
                today - chrono::Duration::days(back),
                [
                    format!("{close}"),
                    format!("{}", close + 1),
                    format!("{}", close - 1),
                    format!("{close}"),
                    "10".to_owned(),
                ],
            )
        })
        .collect();
    provider.put("META", "1day", recent);
    let app = app_with(&provider, |_| {}).await;
    let meta = asset(&app, "META").await;
    let scheduled = app
        .post_json(
            &format!("/api/v1/assets/{meta}/schedule"),
            &json!({"interval": "1day", "every_minutes": 1440, "lookback_bars": 5}),
        )
        .await;
    assert_eq!(scheduled.status(), StatusCode::OK);
    let token = scheduled.json::<Value>().await.unwrap()["consistency_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let schedules: Value = app
        .request(Method::GET, &format!("/api/v1/assets/{meta}/schedules"))
        .header("x-consistency-token", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(schedules["items"][0]["every_minutes"], json!(1440));

    // Due at once: the last five completed days (today's bar is still forming).
    wait_until("the refresh completed", Duration::from_secs(60), || async {
        let page: Value = app
            .get(&format!(
                "/api/v1/price-imports?asset={meta}&status=completed"
            ))
            .await
            .json()
            .await
            .unwrap_or_default();
        page["items"]
            .as_array()
            .is_some_and(|items| items.len() == 1)
    })
    .await;
    let page: Value = app
        .get(&format!("/api/v1/price-imports?asset={meta}"))
        .await
        .json()
        .await
        .unwrap();
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "one refresh until the next is due: {page}");
    let from: DateTime<Utc> = items[0]["from"].as_str().unwrap().parse().unwrap();
    let to: DateTime<Utc> = items[0]["to"].as_str().unwrap().parse().unwrap();
    assert_eq!((from, to), (today - chrono::Duration::days(5), today));
    assert_eq!(items[0]["fetched"], json!(5));

    let stop = |expected: StatusCode| {
        let app = &app;
        let meta = &meta;
        async move {
            let response = app
                .post_json(
                    &format!("/api/v1/assets/{meta}/unschedule"),
                    &json!({"interval": "1day"}),
                )
                .await;
            assert_eq!(response.status(), expected);
            response
        }
    };
    let stopped = stop(StatusCode::OK).await;
    let token = stopped.json::<Value>().await.unwrap()["consistency_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let schedules: Value = app
        .request(Method::GET, &format!("/api/v1/assets/{meta}/schedules"))
        .header("x-consistency-token", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(schedules["items"], json!([]));
    stop(StatusCode::NOT_FOUND).await;

    let invalid = app
        .post_json(
            &format!("/api/v1/assets/{meta}/schedule"),
            &json!({"interval": "1day", "every_minutes": 0, "lookback_bars": 6000}),
        )
        .await;
    let problem: Value = invalid.json().await.unwrap();
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|error| error["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["every_minutes", "lookback_bars"]);
}
