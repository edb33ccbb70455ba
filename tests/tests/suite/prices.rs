//! Asset prices through the write side and the projection: bars recorded into the series of
//! their period, corrections keeping the values they replace, nothing lost when a provider
//! answers with fewer bars, bars stored in the partition of their year, and a rebuild that keeps
//! the partitioning.

use std::sync::Arc;
use std::time::Duration;

use api::rebuild::FeedSource;
use chrono::{DateTime, TimeZone, Utc};
use commands::bus::CommandBus;
use commands::prices::{PriceCommands, RecordError};
use commands::CommandContext;
use domain::identity::TenantId;
use domain::prices::{
    AssetCommand, AssetKind, AssetName, Bar, Currency, Exchange, ImportSource, Interval, Reported,
    Symbol,
};
use projections::registry::Registered;
use rust_decimal::Decimal;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::helpers::{spawn_app, wait_until, TestApp};

fn context(app: &TestApp) -> CommandContext {
    CommandContext {
        request_id: Uuid::now_v7().to_string(),
        correlation_id: Uuid::now_v7().to_string(),
        causation_id: Uuid::now_v7().to_string(),
        actor: "test:prices".to_owned(),
        tenant: TenantId::parse(&app.tenant).unwrap(),
        idempotency: None,
    }
}

fn day(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 0, 0, 0).unwrap()
}

/// A bar closing at `cents` / 100.
fn bar(cents: i64) -> Bar {
    let price = Decimal::new(cents, 2);
    Bar::new(
        price,
        price + Decimal::ONE,
        price - Decimal::ONE,
        price,
        Decimal::new(1000, 0),
    )
    .unwrap()
}

fn reported(bars: &[(DateTime<Utc>, i64)]) -> Vec<Reported> {
    bars.iter()
        .map(|(time, cents)| Reported {
            time: *time,
            bar: bar(*cents),
        })
        .collect()
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&app.pool).await.unwrap()
}

#[tokio::test]
async fn bars_are_recorded_corrected_never_lost_and_stored_by_year() {
    let app = spawn_app().await;
    let wakeup = Arc::new(Notify::new());
    let prices = PriceCommands::new(
        CommandBus::new(app.pool.clone(), wakeup.clone()),
        CommandBus::new(app.pool.clone(), wakeup.clone()),
        CommandBus::new(app.pool.clone(), wakeup.clone()),
        CommandBus::new(app.pool.clone(), wakeup.clone()),
        CommandBus::new(app.pool.clone(), wakeup),
    );
    let context = context(&app);
    let asset = Uuid::now_v7();
    let source = ImportSource {
        provider: "test".to_owned(),
        import_id: Uuid::now_v7(),
    };
    let list = AssetCommand::List {
        symbol: Symbol::parse("ACME").unwrap(),
        exchange: Exchange::parse("XNAS").unwrap(),
        currency: Currency::parse("USD").unwrap(),
        kind: AssetKind::Stock,
        name: AssetName::parse("Acme Corporation").unwrap(),
        at: Utc::now(),
    };
    prices
        .asset(&context, asset, None, list, Utc::now())
        .await
        .unwrap();

    // Three days across a new year: two series streams, two partitions.
    let first = reported(&[
        (day(2025, 12, 31), 10_000),
        (day(2026, 1, 2), 10_200),
        (day(2026, 1, 1), 10_100),
    ]);
    let outcomes = prices
        .record(&context, asset, Interval::Day, first, &source, Utc::now())
        .await
        .unwrap();
    assert_eq!(outcomes.len(), 2);
    wait_until(
        "the bars are projected",
        Duration::from_secs(30),
        || async { count(&app, "SELECT count(*) FROM read_models.price_bars").await == 3 },
    )
    .await;
    let partitions: Vec<String> = sqlx::query_scalar(
        "SELECT tableoid::regclass::text FROM read_models.price_bars ORDER BY time",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        partitions,
        [
            "read_models.price_bars_2025",
            "read_models.price_bars_2026",
            "read_models.price_bars_2026"
        ]
    );

    // The provider answers again with fewer bars and one changed value: nothing is removed,
    // the change is a correction that keeps the old close.
    let again = reported(&[(day(2026, 1, 2), 10_250)]);
    prices
        .record(&context, asset, Interval::Day, again, &source, Utc::now())
        .await
        .unwrap();
    wait_until(
        "the correction is projected",
        Duration::from_secs(30),
        || async { count(&app, "SELECT count(*) FROM read_models.price_corrections").await == 1 },
    )
    .await;
    assert_eq!(
        count(&app, "SELECT count(*) FROM read_models.price_bars").await,
        3
    );
    let (close, corrections): (String, i32) = sqlx::query_as(
        "SELECT close::text, corrections FROM read_models.price_bars WHERE time = $1",
    )
    .bind(day(2026, 1, 2))
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!((close.as_str(), corrections), ("102.5", 1));
    let previous: String =
        sqlx::query_scalar("SELECT previous ->> 'close' FROM read_models.price_corrections")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(previous, "102");

    // The same report again changes nothing: no new event anywhere.
    let events = count(
        &app,
        "SELECT count(*) FROM events WHERE aggregate_type = 'PriceSeries'",
    )
    .await;
    let same = reported(&[(day(2026, 1, 2), 10_250), (day(2025, 12, 31), 10_000)]);
    prices
        .record(&context, asset, Interval::Day, same, &source, Utc::now())
        .await
        .unwrap();
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM events WHERE aggregate_type = 'PriceSeries'"
        )
        .await,
        events
    );

    // A rebuild from the event store gives the same rows, in a table still partitioned by year.
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
    assert_eq!(
        count(&app, "SELECT count(*) FROM read_models.price_bars").await,
        3
    );
    assert_eq!(
        count(&app, "SELECT count(*) FROM read_models.price_corrections").await,
        1
    );
    let rebuilt: (String, i32) = sqlx::query_as(
        "SELECT close::text, corrections FROM read_models.price_bars WHERE time = $1",
    )
    .bind(day(2026, 1, 2))
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(rebuilt, ("102.5".to_owned(), 1));
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM pg_inherits WHERE inhparent = 'read_models.price_bars'::regclass"
        )
        .await,
        42
    );
    let partition: String = sqlx::query_scalar(
        "SELECT tableoid::regclass::text FROM read_models.price_bars WHERE time = $1",
    )
    .bind(day(2025, 12, 31))
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(partition, "read_models.price_bars_2025");

    // A delisted asset takes no more bars; its history stays.
    prices
        .asset(
            &context,
            asset,
            None,
            AssetCommand::Delist { at: Utc::now() },
            Utc::now(),
        )
        .await
        .unwrap();
    let refused = prices
        .record(
            &context,
            asset,
            Interval::Day,
            reported(&[(day(2026, 1, 5), 10_000)]),
            &source,
            Utc::now(),
        )
        .await;
    assert!(matches!(refused, Err(RecordError::Asset(_))), "{refused:?}");
    app.stop().await;
}
