//! Asset prices over HTTP, as a dashboard and an importing worker use them: assets listed,
//! renamed and delisted; bars recorded, recorded again unchanged, corrected; a range paged with
//! its cursor; weekly and monthly aggregates checked against the bars; the latest price of many
//! assets; a bar's correction history; and who may do what.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_app, TestApp};

/// Lists an asset as the admin and waits until it reads back; returns its id.
pub(crate) async fn listed(app: &TestApp, symbol: &str) -> String {
    let response = app
        .post_json(
            "/api/v1/assets",
            &json!({"symbol": symbol, "exchange": "XNAS", "currency": "usd", "kind": "stock",
                    "name": format!("{symbol} Inc.")}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let body: Value = response.json().await.unwrap();
    let id = body["aggregate_id"].as_str().unwrap().to_owned();
    assert_eq!(location, format!("/api/v1/assets/{id}"));
    // Read back with its token: the asset's queries find it from here on.
    let shown = app
        .request(Method::GET, &location)
        .header(
            "x-consistency-token",
            body["consistency_token"].as_str().unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(shown.status(), StatusCode::OK);
    id
}

/// A daily bar of day `day` (0 = 2025-12-15) closing at `close` cents.
pub(crate) fn daily(day: i64, close: i64) -> Value {
    let time = chrono::DateTime::parse_from_rfc3339("2025-12-15T00:00:00Z").unwrap()
        + chrono::Duration::days(day);
    let cents = |value: i64| format!("{}.{:02}", value / 100, value % 100);
    json!({
        "time": time.to_utc().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "open": cents(close - 50),
        "high": cents(close + 100),
        "low": cents(close - 120),
        "close": cents(close),
        "volume": format!("{}", 1000 + day),
    })
}

/// A decimal as the API answers it: normalised, without trailing zeros (`399.50` is `399.5`).
fn normal(value: &Value) -> Value {
    let text = value.as_str().unwrap();
    if text.contains('.') {
        json!(text.trim_end_matches('0').trim_end_matches('.'))
    } else {
        value.clone()
    }
}

/// Records `bars` as `key`; returns the response's body.
pub(crate) async fn record(
    app: &TestApp,
    key: &str,
    asset: &str,
    bars: &[Value],
) -> (StatusCode, Value) {
    let response = app
        .client
        .post(app.url(&format!("/api/v1/assets/{asset}/bars")))
        .header("x-api-key", key)
        .json(&json!({"interval": "1day", "bars": bars}))
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

/// GETs `path` once with each token of a recording, so every series it wrote is visible; returns
/// the last answer.
pub(crate) async fn read_after(app: &TestApp, path: &str, recorded: &Value) -> Value {
    let mut last = Value::Null;
    for series in recorded["series"].as_array().unwrap() {
        let response = app
            .request(Method::GET, path)
            .header(
                "x-consistency-token",
                series["consistency_token"].as_str().unwrap(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        last = response.json().await.unwrap();
    }
    last
}

/// Every bar of a range, page by page.
async fn all_bars(app: &TestApp, asset: &str, limit: u32) -> Vec<Value> {
    let mut bars = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut path = format!("/api/v1/assets/{asset}/bars?interval=1day&limit={limit}");
        if let Some(after) = &after {
            path.push_str(&format!("&after={}", after.replace('+', "%2B")));
        }
        let page: Value = app.get(&path).await.json().await.unwrap();
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= limit as usize);
        bars.extend(items.iter().cloned());
        match page["next_cursor"].as_str() {
            Some(cursor) => after = Some(cursor.to_owned()),
            None => return bars,
        }
    }
}

#[tokio::test]
async fn assets_are_listed_renamed_and_delisted_with_their_history_kept() {
    let app = spawn_app().await;
    let asset = listed(&app, "aapl").await;
    let again = app
        .post_json(
            "/api/v1/assets",
            &json!({"symbol": "AAPL", "exchange": "xnas", "currency": "USD", "kind": "stock",
                    "name": "Apple again"}),
        )
        .await;
    assert_problem(again, StatusCode::CONFLICT, "asset_already_listed").await;
    let invalid = app
        .post_json(
            "/api/v1/assets",
            &json!({"symbol": "A B", "exchange": "XNAS", "currency": "DOLLARS", "kind": "bond",
                    "name": "Bad"}),
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
    assert_eq!(fields, ["symbol", "currency", "kind"]);

    let (status, recorded) = record(&app, &app.admin_key, &asset, &[daily(0, 18_715)]).await;
    assert_eq!(status, StatusCode::OK, "{recorded}");
    let renamed = app
        .post_json(
            &format!("/api/v1/assets/{asset}/rename"),
            &json!({"symbol": "APL", "name": "Apple"}),
        )
        .await;
    assert_eq!(renamed.status(), StatusCode::OK);
    let token = renamed.json::<Value>().await.unwrap()["consistency_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let shown: Value = app
        .request(Method::GET, &format!("/api/v1/assets/{asset}"))
        .header("x-consistency-token", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            &shown["symbol"],
            &shown["name"],
            &shown["currency"],
            &shown["exchange"]
        ),
        (
            &json!("APL"),
            &json!("Apple"),
            &json!("USD"),
            &json!("XNAS")
        )
    );
    let found: Value = app
        .get("/api/v1/assets?symbol=apl")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(found["items"][0]["id"], json!(asset));

    let delisted = app
        .post(&format!("/api/v1/assets/{asset}/delist"))
        .send()
        .await
        .unwrap();
    assert_eq!(delisted.status(), StatusCode::OK);
    let (status, refused) = record(&app, &app.admin_key, &asset, &[daily(1, 18_800)]).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(refused["code"], "asset_delisted");
    let bars = read_after(
        &app,
        &format!("/api/v1/assets/{asset}/bars?interval=1day"),
        &recorded,
    )
    .await;
    assert_eq!(bars["items"].as_array().unwrap().len(), 1, "history kept");

    let unknown = app
        .get("/api/v1/assets/0190a3c4-0000-7000-8000-000000000000")
        .await;
    assert_problem(unknown, StatusCode::NOT_FOUND, "asset_not_found").await;
}

#[tokio::test]
async fn bars_are_recorded_paged_aggregated_and_corrected_exactly() {
    let app = spawn_app().await;
    let asset = listed(&app, "MSFT").await;
    // 45 days across a year boundary: two series (one per year of daily bars).
    let bars: Vec<Value> = (0..45)
        .map(|day| daily(day, 40_000 + day * 37 % 500))
        .collect();
    let (status, recorded) = record(&app, &app.admin_key, &asset, &bars).await;
    assert_eq!(status, StatusCode::OK, "{recorded}");
    assert_eq!(recorded["series"].as_array().unwrap().len(), 2);
    read_after(
        &app,
        &format!("/api/v1/assets/{asset}/bars?interval=1day"),
        &recorded,
    )
    .await;

    // Paged with the cursor, in order, exact decimals as sent.
    let stored = all_bars(&app, &asset, 7).await;
    assert_eq!(stored.len(), 45);
    for (stored, sent) in stored.iter().zip(&bars) {
        for field in ["open", "high", "low", "close", "volume"] {
            assert_eq!(
                stored[field],
                normal(&sent[field]),
                "{field} of {}",
                sent["time"]
            );
        }
        assert_eq!(
            chrono::DateTime::parse_from_rfc3339(stored["time"].as_str().unwrap()).unwrap(),
            chrono::DateTime::parse_from_rfc3339(sent["time"].as_str().unwrap()).unwrap()
        );
    }

    // Recorded again unchanged: nothing appended.
    let (status, again) = record(&app, &app.admin_key, &asset, &bars).await;
    assert_eq!(status, StatusCode::OK);
    let versions = |body: &Value| -> Vec<Value> {
        body["series"]
            .as_array()
            .unwrap()
            .iter()
            .map(|series| series["version"].clone())
            .collect()
    };
    assert_eq!(versions(&again), versions(&recorded));

    // Monthly aggregates from the bars themselves.
    let monthly = read_after(
        &app,
        &format!("/api/v1/assets/{asset}/aggregates?interval=1day&period=month"),
        &recorded,
    )
    .await;
    let months = monthly["items"].as_array().unwrap();
    assert_eq!(months.len(), 2);
    let decimal = |value: &Value| value.as_str().unwrap().parse::<f64>().unwrap();
    let december = &bars[..17];
    assert_eq!(months[0]["bars"], json!(17));
    assert_eq!(months[0]["open"], normal(&december[0]["open"]));
    assert_eq!(months[0]["close"], normal(&december[16]["close"]));
    let highest = december
        .iter()
        .map(|bar| decimal(&bar["high"]))
        .fold(0.0, f64::max);
    assert_eq!(decimal(&months[0]["high"]), highest);
    let lowest = december
        .iter()
        .map(|bar| decimal(&bar["low"]))
        .fold(f64::MAX, f64::min);
    assert_eq!(decimal(&months[0]["low"]), lowest);
    let volume: i64 = december
        .iter()
        .map(|bar| bar["volume"].as_str().unwrap().parse::<i64>().unwrap())
        .sum();
    assert_eq!(months[0]["volume"], json!(volume.to_string()));
    assert_eq!(months[1]["bars"], json!(28));

    // Weekly, two per page: every bar in exactly one week, each week starting on a Monday.
    let mut weeks = Vec::new();
    let mut path = format!("/api/v1/assets/{asset}/aggregates?interval=1day&period=week&limit=2");
    loop {
        let page: Value = app.get(&path).await.json().await.unwrap();
        weeks.extend(page["items"].as_array().unwrap().iter().cloned());
        let Some(cursor) = page["next_cursor"].as_str() else {
            break;
        };
        path = format!(
            "/api/v1/assets/{asset}/aggregates?interval=1day&period=week&limit=2&after={}",
            cursor.replace('+', "%2B")
        );
    }
    let counted: i64 = weeks
        .iter()
        .map(|week| week["bars"].as_i64().unwrap())
        .sum();
    assert_eq!(counted, 45);
    for week in &weeks {
        let start = chrono::DateTime::parse_from_rfc3339(week["start"].as_str().unwrap()).unwrap();
        assert_eq!(chrono::Datelike::weekday(&start), chrono::Weekday::Mon);
    }

    // A correction keeps the values it replaced and names its source.
    let mut changed = bars[3].clone();
    changed["close"] = json!("401.01");
    let (status, corrected) = record(&app, &app.admin_key, &asset, &[changed.clone()]).await;
    assert_eq!(status, StatusCode::OK);
    let time = bars[3]["time"].as_str().unwrap().replace('+', "%2B");
    let history = read_after(
        &app,
        &format!("/api/v1/assets/{asset}/corrections?interval=1day&time={time}"),
        &corrected,
    )
    .await;
    assert_eq!(history["bar"]["close"], json!("401.01"));
    assert_eq!(history["bar"]["corrections"], json!(1));
    let corrections = history["corrections"].as_array().unwrap();
    assert_eq!(corrections.len(), 1);
    assert_eq!(
        corrections[0]["previous"]["close"],
        normal(&bars[3]["close"])
    );
    assert_eq!(corrections[0]["bar"]["close"], json!("401.01"));
    assert_eq!(corrections[0]["provider"], json!("api"));

    // The latest price of many assets in one query; one without bars is left out.
    let other = listed(&app, "NVDA").await;
    let (_, recorded_other) = record(&app, &app.admin_key, &other, &[daily(2, 12_000)]).await;
    let quiet = listed(&app, "IBM").await;
    let latest = read_after(
        &app,
        &format!("/api/v1/prices/latest?interval=1day&assets={asset},{other},{quiet}"),
        &recorded_other,
    )
    .await;
    let items = latest["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{latest}");
    for item in items {
        let expected = if item["asset_id"] == json!(asset) {
            &bars[44]
        } else {
            &daily(2, 12_000)
        };
        assert_eq!(item["bar"]["close"], normal(&expected["close"]));
    }
}

#[tokio::test]
async fn recording_is_checked_whole_and_only_admins_and_workers_record() {
    let app = spawn_app().await;
    let asset = listed(&app, "TSLA").await;
    let mut misplaced = daily(0, 20_000);
    misplaced["time"] = json!("2025-12-15T09:30:00Z");
    let (status, problem) =
        record(&app, &app.admin_key, &asset, &[daily(1, 20_000), misplaced]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["code"], "bar_misplaced");

    let mut unreadable = daily(0, 20_000);
    unreadable["open"] = json!("1e3");
    let mut impossible = daily(1, 20_000);
    impossible["high"] = json!("1.00");
    let (status, problem) = record(&app, &app.admin_key, &asset, &[unreadable, impossible]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let errors: Vec<(&str, &str)> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|error| {
            (
                error["field"].as_str().unwrap(),
                error["code"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        errors,
        [
            ("bars[0].open", "invalid_decimal"),
            ("bars[1]", "bar_out_of_range")
        ]
    );
    let bars: Value = app
        .get(&format!("/api/v1/assets/{asset}/bars?interval=1day"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(bars["items"], json!([]));
    let stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_type = 'PriceSeries'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(stored, 0, "nothing of a refused report is recorded");

    let (_, user) = app.api_key_with_roles(&["user"]).await;
    let (status, _) = record(&app, &user, &asset, &[daily(0, 20_000)]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, worker) = app.api_key_with_roles(&["worker"]).await;
    let (status, recorded) = record(&app, &worker, &asset, &[daily(0, 20_000)]).await;
    assert_eq!(status, StatusCode::OK, "{recorded}");
    let read = app
        .client
        .get(app.url(&format!("/api/v1/assets/{asset}/bars?interval=1day")))
        .header("x-api-key", &user)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), StatusCode::OK, "users read prices");

    let bad_range = app
        .get(&format!(
            "/api/v1/assets/{asset}/bars?interval=1day&from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z"
        ))
        .await;
    assert_problem(bad_range, StatusCode::BAD_REQUEST, "invalid_query").await;
    let bad_interval = app
        .get(&format!("/api/v1/assets/{asset}/bars?interval=2day"))
        .await;
    assert_problem(bad_interval, StatusCode::BAD_REQUEST, "invalid_query").await;
}
