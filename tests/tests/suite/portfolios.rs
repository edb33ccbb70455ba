//! Portfolios over HTTP: trades recorded (late and out of order too, never selling short, only
//! in the portfolio's currency), holdings with realised and unrealised gain at average cost, daily
//! valuations with the time-weighted return, and both recomputed when a bar is corrected; the
//! stored valuations match the computed ones.

use std::time::Duration;

use api::rebuild::FeedSource;
use projections::prices::{daily_valuations, Valued, VALUER_LOCK};
use projections::registry::Registered;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_app, wait_until, TestApp};

fn day(n: i64) -> String {
    (chrono::DateTime::parse_from_rfc3339("2026-02-02T00:00:00Z").unwrap()
        + chrono::Duration::days(n))
    .to_utc()
    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn at(n: i64, hours: i64) -> String {
    (chrono::DateTime::parse_from_rfc3339(&day(n)).unwrap() + chrono::Duration::hours(hours))
        .to_utc()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Lists an asset priced in `currency`; returns its id.
async fn asset(app: &TestApp, symbol: &str, currency: &str) -> String {
    let response = app
        .post_json(
            "/api/v1/assets",
            &json!({"symbol": symbol, "exchange": "XNAS", "currency": currency, "kind": "stock",
                    "name": symbol}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    body["aggregate_id"].as_str().unwrap().to_owned()
}

/// Records daily bars closing at `closes[d]` on day `d`; returns the last series' token.
async fn closes(app: &TestApp, asset: &str, closes: &[(i64, i64)]) -> String {
    let text: Vec<(i64, String)> = closes
        .iter()
        .map(|(n, close)| (*n, close.to_string()))
        .collect();
    let text: Vec<(i64, &str)> = text.iter().map(|(n, close)| (*n, close.as_str())).collect();
    closes_of(app, asset, &text).await
}

/// Records daily bars opening, closing, and in between at `closes[d]` on day `d`; returns the
/// last series' token.
async fn closes_of(app: &TestApp, asset: &str, closes: &[(i64, &str)]) -> String {
    let bars: Vec<Value> = closes
        .iter()
        .map(|(n, close)| {
            json!({"time": day(*n), "open": close, "high": close, "low": close, "close": close,
                   "volume": "1000"})
        })
        .collect();
    let response = app
        .post_json(
            &format!("/api/v1/assets/{asset}/bars"),
            &json!({"interval": "1day", "bars": bars}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["series"][0]["consistency_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn trade(app: &TestApp, portfolio: &str, body: Value) -> reqwest::Response {
    app.post_json(&format!("/api/v1/portfolios/{portfolio}/trades"), &body)
        .await
}

/// Records each of `trades` (each accepted) and waits until the portfolio shows the last;
/// returns its token.
async fn recorded(app: &TestApp, portfolio: &str, trades: &[Value]) -> String {
    let mut token = String::new();
    for body in trades {
        let response = trade(app, portfolio, body.clone()).await;
        assert_eq!(response.status(), StatusCode::OK, "{body}");
        token = response.json::<Value>().await.unwrap()["consistency_token"]
            .as_str()
            .unwrap()
            .to_owned();
    }
    read(app, &format!("/api/v1/portfolios/{portfolio}"), &token).await;
    token
}

/// GETs `path` after the command of `token` is visible.
async fn read(app: &TestApp, path: &str, token: &str) -> Value {
    let response = app
        .request(Method::GET, path)
        .header("x-consistency-token", token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    response.json().await.unwrap()
}

#[tokio::test]
async fn holdings_gains_and_the_time_weighted_return_follow_the_trades_and_corrections() {
    let app = spawn_app().await;
    let aapl = asset(&app, "AAPL", "USD").await;
    let history: Vec<(i64, i64)> = (0..10).map(|n| (n, 100 + n)).collect();
    let token = closes(&app, &aapl, &history).await;
    let opened = app
        .post_json(
            "/api/v1/portfolios",
            &json!({"name": "Retirement", "currency": "USD"}),
        )
        .await;
    assert_eq!(opened.status(), StatusCode::CREATED);
    let portfolio = opened.json::<Value>().await.unwrap()["aggregate_id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Bought 10 at 100 on day 0 and 10 at 104 on day 4 (average 102); the sale of 5 at 107 on
    // day 7 is recorded first: a late record of earlier trades is fine.
    let trades = [
        ("sell", "5", "107", at(7, 15)),
        ("buy", "10", "100", at(0, 15)),
        ("buy", "10", "104", at(4, 15)),
    ];
    let mut sold_first = true;
    for (side, quantity, price, time) in trades {
        let response = trade(
            &app,
            &portfolio,
            json!({"asset_id": aapl, "side": side, "quantity": quantity, "price": price, "time": time}),
        )
        .await;
        if sold_first {
            // Nothing is held before the buys are recorded: selling first is refused.
            assert_problem(response, StatusCode::CONFLICT, "oversold").await;
            sold_first = false;
            continue;
        }
        assert_eq!(response.status(), StatusCode::OK);
    }
    let response = trade(
        &app,
        &portfolio,
        json!({"asset_id": aapl, "side": "sell", "quantity": "5", "price": "107", "time": at(7, 15)}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let token_trades = response.json::<Value>().await.unwrap()["consistency_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let oversold = trade(
        &app,
        &portfolio,
        json!({"asset_id": aapl, "side": "sell", "quantity": "16", "price": "108", "time": at(8, 15)}),
    )
    .await;
    assert_problem(oversold, StatusCode::CONFLICT, "oversold").await;
    let euro = asset(&app, "SAP", "EUR").await;
    let mismatch = trade(
        &app,
        &portfolio,
        json!({"asset_id": euro, "side": "buy", "quantity": "1", "price": "1", "time": at(1, 15)}),
    )
    .await;
    let problem = assert_problem(
        mismatch,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(problem["errors"][0]["code"], "currency_mismatch");

    // As of the end of day 9: 15 held at a cost of 15 × 102, 5 × (107 − 102) realised, valued
    // at day 9's close of 109 (as of day 9 noon it was day 8's: day 9 had not closed).
    read(&app, &format!("/api/v1/assets/{aapl}"), &token).await;
    let shown = read(
        &app,
        &format!("/api/v1/portfolios/{portfolio}?as_of={}", day(10)),
        &token_trades,
    )
    .await;
    let holding = &shown["holdings"][0];
    assert_eq!(shown["trades"], json!(3));
    assert_eq!(holding["quantity"], json!("15"));
    assert_eq!(holding["cost"], json!("1530"));
    assert_eq!(holding["realised_gain"], json!("25"));
    assert_eq!(holding["price"], json!("109"));
    assert_eq!(holding["value"], json!("1635"));
    assert_eq!(holding["unrealised_gain"], json!("105"));
    let noon = read(
        &app,
        &format!("/api/v1/portfolios/{portfolio}?as_of={}", at(9, 12)),
        &token_trades,
    )
    .await;
    assert_eq!(noon["holdings"][0]["price"], json!("108"));

    // Trades at the day's close leave each day's return the asset's: 109 / 100 − 1.
    let path = format!(
        "/api/v1/portfolios/{portfolio}/valuation?from={}&to={}",
        day(0),
        day(10)
    );
    let valuation = read(&app, &path, &token_trades).await;
    assert_eq!(
        valuation["days"].as_array().unwrap().len(),
        11,
        "the base and ten days"
    );
    assert_eq!(valuation["days"][1]["flow"], json!("1000"));
    assert_eq!(valuation["days"][10]["value"], json!("1635"));
    assert_eq!(valuation["time_weighted_return"], json!("0.09"));

    // Day 9's close is corrected to 118: the holding and the return follow at once.
    let corrected = closes(&app, &aapl, &[(9, 118)]).await;
    let shown = read(
        &app,
        &format!("/api/v1/portfolios/{portfolio}?as_of={}", day(10)),
        &corrected,
    )
    .await;
    assert_eq!(shown["holdings"][0]["value"], json!("1770"));
    let valuation = read(&app, &path, &corrected).await;
    assert_eq!(valuation["time_weighted_return"], json!("0.18"));

    let bad = app
        .get(&format!(
            "/api/v1/portfolios/{portfolio}/valuation?from={}&to={}",
            at(0, 1),
            day(3)
        ))
        .await;
    assert_problem(bad, StatusCode::BAD_REQUEST, "invalid_query").await;
}

/// The days of `[from, to)` as the model answers them, with where they came from.
async fn days(
    app: &TestApp,
    portfolio: &str,
    from: i64,
    to: i64,
) -> (Valued, Vec<(String, String)>) {
    let parse = |n| {
        chrono::DateTime::parse_from_rfc3339(&day(n))
            .unwrap()
            .to_utc()
    };
    let (valued, series) = daily_valuations(
        &app.pool,
        "acme",
        portfolio.parse().unwrap(),
        parse(from),
        parse(to),
    )
    .await
    .unwrap();
    let days = series
        .into_iter()
        .map(|(_, v)| (v.value.to_string(), v.flow.to_string()))
        .collect();
    (valued, days)
}

fn expected(days: &[(&str, &str)]) -> Vec<(String, String)> {
    days.iter()
        .map(|(value, flow)| ((*value).to_owned(), (*flow).to_owned()))
        .collect()
}

#[tokio::test]
async fn stored_valuations_follow_trades_and_corrections_and_match_the_computed_ones() {
    let app = spawn_app().await;
    let aapl = asset(&app, "AAPL", "USD").await;
    let history: Vec<(i64, i64)> = (0..10).map(|n| (n, 100 + n)).collect();
    let bars = closes(&app, &aapl, &history).await;
    read(&app, &format!("/api/v1/assets/{aapl}"), &bars).await;
    let opened = app
        .post_json(
            "/api/v1/portfolios",
            &json!({"name": "Stored", "currency": "USD"}),
        )
        .await;
    assert_eq!(opened.status(), StatusCode::CREATED);
    let portfolio = opened.json::<Value>().await.unwrap()["aggregate_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let trades = [
        ("buy", "10", "100", at(0, 15)),
        ("buy", "10", "104", at(4, 15)),
        ("sell", "5", "107", at(7, 15)),
    ]
    .map(|(side, quantity, price, time)| {
        json!({"asset_id": aapl, "side": side, "quantity": quantity, "price": price, "time": time})
    });
    recorded(&app, &portfolio, &trades).await;

    // Stored: one day from the first trade's to the last close's; before it nothing is held,
    // after it the last value holds with no flow (days -3 to 12, the first the base).
    valued(&app).await;
    let stored: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM read_models.portfolio_valuations WHERE portfolio_id = $1::uuid",
    )
    .bind(&portfolio)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(stored, 10, "days 0 to 9");
    let before = expected(&[("0", "0"), ("0", "0"), ("0", "0")]);
    let held = [
        ("1000", "1000"),
        ("1010", "0"),
        ("1020", "0"),
        ("1030", "0"),
        ("2080", "1040"),
        ("2100", "0"),
        ("2120", "0"),
        ("1605", "-535"),
        ("1620", "0"),
        ("1635", "0"),
    ];
    let after = expected(&[("1635", "0"), ("1635", "0"), ("1635", "0")]);
    let (valued_from, shown) = days(&app, &portfolio, -2, 13).await;
    assert_eq!(valued_from, Valued::Stored);
    assert_eq!(shown, [before.clone(), expected(&held), after].concat());

    // Day 2's close corrected down to 90 and day 9's up to 118: answered at once, computed
    // while the valuer is held off, then stored with the same days.
    let mut holding_off = app.pool.acquire().await.unwrap();
    sqlx::query("SELECT pg_advisory_lock(hashtextextended($1, 0))")
        .bind(VALUER_LOCK)
        .execute(&mut *holding_off)
        .await
        .unwrap();
    closes(&app, &aapl, &[(2, 90)]).await;
    let corrected = closes(&app, &aapl, &[(9, 118)]).await;
    let path = format!(
        "/api/v1/portfolios/{portfolio}/valuation?from={}&to={}",
        day(-2),
        day(13)
    );
    let answered = read(&app, &path, &corrected).await;
    let mut now_held = held;
    now_held[2] = ("900", "0");
    now_held[9] = ("1770", "0");
    let after = expected(&[("1770", "0"), ("1770", "0"), ("1770", "0")]);
    let want = [before.clone(), expected(&now_held), after].concat();
    let from_api: Vec<(String, String)> = answered["days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["value"].as_str().unwrap().to_owned(),
                d["flow"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(from_api, want);
    assert_eq!(
        days(&app, &portfolio, -2, 13).await,
        (Valued::Computed, want.clone())
    );
    // Days before the corrected ones are still served from the store.
    assert_eq!(
        days(&app, &portfolio, -2, 2).await,
        (Valued::Stored, want[..5].to_vec())
    );
    sqlx::query("SELECT pg_advisory_unlock(hashtextextended($1, 0))")
        .bind(VALUER_LOCK)
        .execute(&mut *holding_off)
        .await
        .unwrap();
    valued(&app).await;
    assert_eq!(days(&app, &portfolio, -2, 13).await, (Valued::Stored, want));

    // A trade after the last close extends the stored days; the close of day 9 still prices it.
    let response = trade(
        &app,
        &portfolio,
        json!({"asset_id": aapl, "side": "buy", "quantity": "1", "price": "120", "time": at(11, 15)}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let token = response.json::<Value>().await.unwrap()["consistency_token"]
        .as_str()
        .unwrap()
        .to_owned();
    read(&app, &format!("/api/v1/portfolios/{portfolio}"), &token).await;
    valued(&app).await;
    let (valued_from, shown) = days(&app, &portfolio, 9, 13).await;
    assert_eq!(valued_from, Valued::Stored);
    assert_eq!(
        shown,
        expected(&[
            ("1620", "0"),
            ("1770", "0"),
            ("1770", "0"),
            ("1888", "120"),
            ("1888", "0")
        ])
    );

    // A rebuild of the prices read models replays every trade and bar: the valuer stores the
    // same days again.
    let stored = days(&app, &portfolio, -2, 13).await;
    Registered::by_name("prices")
        .unwrap()
        .rebuild(
            &app.pool,
            &FeedSource::new(app.pool.clone()),
            100,
            &mut |_| {},
        )
        .await
        .unwrap();
    valued(&app).await;
    assert_eq!(days(&app, &portfolio, -2, 13).await, stored);
}

#[tokio::test]
async fn a_value_beyond_28_digits_is_a_clear_error_for_its_days_only() {
    let app = spawn_app().await;
    let asset = asset(&app, "HUGE", "USD").await;
    let opened = app
        .post_json(
            "/api/v1/portfolios",
            &json!({"name": "Huge", "currency": "USD"}),
        )
        .await;
    let portfolio = opened.json::<Value>().await.unwrap()["aggregate_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // 10^15 bought at 1 on day 0 closes at 10^15 on day 1: worth 10^30 until all of it is sold
    // on day 2 (trades themselves are refused when their cost is beyond 28 digits).
    let big = "1000000000000000";
    let bars = closes_of(&app, &asset, &[(1, big)]).await;
    read(&app, &format!("/api/v1/assets/{asset}"), &bars).await;
    let trades = [("buy", at(0, 15)), ("sell", at(2, 15))].map(|(side, time)| {
        json!({"asset_id": asset, "side": side, "quantity": big, "price": "1", "time": time})
    });
    let token = recorded(&app, &portfolio, &trades).await;
    // The valuer cannot store such days: it leaves the portfolio computed when asked.
    valued(&app).await;
    let covering = app
        .get(&format!(
            "/api/v1/portfolios/{portfolio}/valuation?from={}&to={}",
            day(0),
            day(4)
        ))
        .await;
    assert_problem(
        covering,
        StatusCode::UNPROCESSABLE_ENTITY,
        "value_out_of_range",
    )
    .await;
    let unvaluable: i64 =
        sqlx::query_scalar("SELECT count(*) FROM read_models.valuation_marks WHERE unvaluable")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(unvaluable, 1);
    let after = read(
        &app,
        &format!(
            "/api/v1/portfolios/{portfolio}/valuation?from={}&to={}",
            day(4),
            day(6)
        ),
        &token,
    )
    .await;
    assert_eq!(after["days"][1]["value"], json!("0"));
    assert_eq!(
        days(&app, &portfolio, 4, 6).await.0,
        Valued::Computed,
        "never served from days the valuer could not store"
    );

    // Day 1's close corrected to 1: the valuer stores every day again, from the first it could
    // not store before.
    let corrected = closes_of(&app, &asset, &[(1, "1")]).await;
    read(&app, &format!("/api/v1/assets/{asset}"), &corrected).await;
    valued(&app).await;
    let unvaluable: i64 =
        sqlx::query_scalar("SELECT count(*) FROM read_models.valuation_marks WHERE unvaluable")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(unvaluable, 0);
    assert_eq!(
        days(&app, &portfolio, 0, 4).await,
        (
            Valued::Stored,
            expected(&[
                ("0", "0"),
                (big, big),
                (big, "0"),
                ("0", "-1000000000000000"),
                ("0", "0")
            ])
        )
    );
}

/// Waits until the valuer has taken every mark (but those it leaves for unvaluable portfolios):
/// the stored days are current.
async fn valued(app: &TestApp) {
    wait_until(
        "the valuer takes every mark",
        Duration::from_secs(30),
        || async {
            let pending: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM read_models.valuation_marks WHERE NOT unvaluable",
            )
            .fetch_one(&app.pool)
            .await
            .unwrap();
            pending == 0
        },
    )
    .await;
}
