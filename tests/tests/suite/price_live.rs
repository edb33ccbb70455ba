//! An asset's bars over Server-Sent Events: new bars and corrections (with the values they
//! replaced) as they are recorded, only the followed asset and interval, resumed after
//! `Last-Event-ID` with nothing skipped or repeated.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_app, TestApp};
use crate::live::EventStream;
use crate::price_routes::{daily, listed, read_after, record};

/// Opens `path` with `key`, resuming after `last` when given.
async fn open(app: &TestApp, key: &str, path: &str, last: Option<u64>) -> reqwest::Response {
    let mut request = app.anonymous(Method::GET, path).header("x-api-key", key);
    if let Some(last) = last {
        request = request.header("last-event-id", last.to_string());
    }
    request.send().await.unwrap()
}

/// The next `bars` event, as (id, notice).
async fn next_bars(stream: &mut EventStream) -> (u64, Value) {
    let event = stream.next().await;
    assert_eq!(event.event, "bars", "{event:?}");
    (
        event.id.parse().unwrap(),
        serde_json::from_str(&event.data).unwrap(),
    )
}

/// The closes of a notice's bars, in order.
fn closes(notice: &Value) -> Vec<&str> {
    notice["bars"]
        .as_array()
        .unwrap()
        .iter()
        .map(|bar| bar["close"].as_str().unwrap())
        .collect()
}

/// Records daily `bars` of `asset` as the admin.
async fn recorded(app: &TestApp, asset: &str, bars: &[Value]) {
    let (status, body) = record(app, &app.admin_key, asset, bars).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// Records hourly bars of 2025-12-15 (hours `hours`, closing at 50) as the admin.
async fn hourly(app: &TestApp, asset: &str, hours: std::ops::Range<u32>) {
    let bars: Vec<Value> = hours
        .map(|hour| {
            json!({"time": format!("2025-12-15T{hour:02}:00:00Z"), "open": "50", "high": "51",
                   "low": "49", "close": "50", "volume": "10"})
        })
        .collect();
    let response = app
        .post_json(
            &format!("/api/v1/assets/{asset}/bars"),
            &json!({"interval": "1h", "bars": bars}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
}

/// A reader following an asset sees each recording once, in order: new bars, then a correction
/// with the values it replaced; another asset's bars and a report repeating recorded values send
/// nothing; a series started before anyone followed is named all the same; a client that
/// reconnects after its last id receives exactly what it missed, then live notices; a stream of
/// one interval carries only that interval's bars.
#[tokio::test]
async fn new_and_corrected_bars_are_streamed_live_and_resumed_after_the_last_event_id() {
    let app = spawn_app().await;
    let (_, reader) = app.api_key_with_roles(&["user"]).await;
    let (acme, other) = (listed(&app, "ACME").await, listed(&app, "OTHR").await);
    // A series started (and projected, so published) before the process followed anything:
    // the hub never saw it start, and it is not new.
    let (status, started) = record(&app, &app.admin_key, &acme, &[daily(0, 10_000)]).await;
    assert_eq!(status, StatusCode::OK);
    read_after(&app, &format!("/api/v1/assets/{acme}"), &started).await;
    let path = format!("/api/v1/assets/{acme}/bars/live");
    let mut live = EventStream::new(open(&app, &reader, &path, None).await);
    let mut days =
        EventStream::new(open(&app, &reader, &format!("{path}?interval=1day"), None).await);

    recorded(&app, &acme, &[daily(1, 10_100), daily(2, 10_200)]).await;
    recorded(&app, &other, &[daily(1, 500)]).await;
    // Unchanged values are nothing new; a changed close is a correction.
    recorded(&app, &acme, &[daily(2, 10_200)]).await;
    recorded(&app, &acme, &[daily(1, 10_150)]).await;

    let (first, notice) = next_bars(&mut live).await;
    assert_eq!(notice["asset_id"], acme.as_str());
    assert_eq!(notice["interval"], "1day");
    assert_eq!(notice["change"], "recorded");
    assert_eq!(notice["provider"], "api");
    assert_eq!(closes(&notice), ["101", "102"]);
    assert_eq!(notice["bars"][0]["time"], "2025-12-16T00:00:00Z");
    assert!(notice["bars"][0].get("previous").is_none(), "{notice}");
    let (last, notice) = next_bars(&mut live).await;
    assert!(last > first, "ids increase");
    assert_eq!(
        notice["change"], "corrected",
        "the other asset's bars are not here"
    );
    assert_eq!(closes(&notice), ["101.5"]);
    assert_eq!(notice["bars"][0]["previous"]["close"], "101");
    assert_eq!(notice["bars"][0]["previous"]["open"], "100.5");
    for expected in [first, last] {
        assert_eq!(
            next_bars(&mut days).await.0,
            expected,
            "the daily stream has both"
        );
    }
    drop(live);

    // While nobody listens on it: hourly bars and a new day. Once the daily stream shows the
    // day (it skips the hours), both are published, so the resumed client reads them from the
    // stream's backlog, not live.
    hourly(&app, &acme, 9..12).await;
    recorded(&app, &acme, &[daily(3, 10_300)]).await;
    let (day_published, notice) = next_bars(&mut days).await;
    assert_eq!(closes(&notice), ["103"]);
    let mut resumed = EventStream::new(open(&app, &reader, &path, Some(last)).await);
    let (missed_hours, notice) = next_bars(&mut resumed).await;
    assert!(missed_hours > last, "nothing already received comes again");
    assert_eq!(notice["interval"], "1h");
    assert_eq!(notice["bars"].as_array().unwrap().len(), 3);
    let (missed_day, notice) = next_bars(&mut resumed).await;
    assert_eq!(missed_day, day_published);
    assert_eq!(closes(&notice), ["103"]);
    // Then live again, on both.
    recorded(&app, &acme, &[daily(4, 10_400)]).await;
    let (live_day, notice) = next_bars(&mut resumed).await;
    assert_eq!(closes(&notice), ["104"]);
    assert_eq!(next_bars(&mut days).await.0, live_day);
}

/// What cannot be followed is refused before any stream opens, naming what was wrong.
#[tokio::test]
async fn an_unknown_asset_or_a_bad_parameter_is_refused_with_a_clear_problem() {
    let app = spawn_app().await;
    let (_, reader) = app.api_key_with_roles(&["user"]).await;
    let acme = listed(&app, "ACME").await;
    let missing = uuid::Uuid::now_v7();
    let cases = [
        (
            format!("/api/v1/assets/{missing}/bars/live"),
            None,
            StatusCode::NOT_FOUND,
            "asset_not_found",
        ),
        (
            format!("/api/v1/assets/{acme}/bars/live?interval=2h"),
            None,
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            format!("/api/v1/assets/{acme}/bars/live?since=1"),
            None,
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            format!("/api/v1/assets/{acme}/bars/live"),
            Some("soon"),
            StatusCode::BAD_REQUEST,
            "invalid_last_event_id",
        ),
    ];
    for (path, last, status, code) in cases {
        let mut request = app
            .anonymous(Method::GET, &path)
            .header("x-api-key", &reader);
        if let Some(last) = last {
            request = request.header("last-event-id", last);
        }
        assert_problem(request.send().await.unwrap(), status, code).await;
    }
    let anonymous = app.anonymous(Method::GET, &format!("/api/v1/assets/{acme}/bars/live"));
    assert_problem(
        anonymous.send().await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
}
