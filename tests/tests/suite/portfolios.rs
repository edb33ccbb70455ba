//! Portfolios over HTTP: trades recorded (late and out of order too, never selling short, only
//! in the portfolio's currency), holdings with realised and unrealised gain at average cost, daily
//! valuations with the time-weighted return, and both recomputed when a bar is corrected.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_app, TestApp};

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
    let bars: Vec<Value> = closes
        .iter()
        .map(|(n, close)| {
            json!({"time": day(*n), "open": close.to_string(), "high": (close + 1).to_string(),
                   "low": (close - 1).to_string(), "close": close.to_string(), "volume": "1000"})
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
