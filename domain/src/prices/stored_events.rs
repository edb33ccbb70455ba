//! The stored form of every asset and price-series event (see `crate::stored_check`).

use rust_decimal::Decimal;

use super::*;
use crate::stored_check::{at, id, stored_events_test};

fn bar(close: i64) -> Bar {
    Bar::new(
        Decimal::new(close * 100 - 50, 2),
        Decimal::new(close * 100 + 125, 2),
        Decimal::new(close * 100 - 75, 2),
        Decimal::new(close * 100, 2),
        Decimal::new(1_250_000, 0),
    )
    .expect("a valid bar")
}

fn source() -> ImportSource {
    ImportSource {
        provider: "twelvedata".to_owned(),
        import_id: id(9),
    }
}

fn asset_samples() -> Vec<AssetEvent> {
    vec![
        AssetEvent::AssetListed {
            symbol: Symbol::parse("ACME").expect("valid"),
            exchange: Exchange::parse("XNAS").expect("valid"),
            currency: Currency::parse("USD").expect("valid"),
            kind: AssetKind::Stock,
            name: AssetName::parse("Acme Corporation").expect("valid"),
            at: at(0),
        },
        AssetEvent::AssetRenamed {
            symbol: Symbol::parse("ACM").expect("valid"),
            name: AssetName::parse("Acme Corp.").expect("valid"),
            at: at(1),
        },
        AssetEvent::AssetDelisted { at: at(2) },
    ]
}

fn series_samples() -> Vec<PriceSeriesEvent> {
    let key = SeriesKey {
        asset: id(1),
        interval: Interval::Day,
        period: at(0),
    };
    vec![
        PriceSeriesEvent::SeriesStarted { key, at: at(0) },
        PriceSeriesEvent::BarsRecorded {
            bars: vec![Reported {
                time: at(0),
                bar: bar(101),
            }],
            source: source(),
            at: at(1),
        },
        PriceSeriesEvent::BarsCorrected {
            corrections: vec![Correction {
                time: at(0),
                previous: bar(101),
                bar: bar(102),
            }],
            source: source(),
            at: at(2),
        },
    ]
}

stored_events_test! {
    fn asset_events_are_stored_under_their_event_types() for AssetEvent {
        snapshot: "asset_events",
        former_tags: [],
        samples: asset_samples(),
    }
}

stored_events_test! {
    fn price_series_events_are_stored_under_their_event_types() for PriceSeriesEvent {
        snapshot: "price_series_events",
        former_tags: [],
        samples: series_samples(),
    }
}

fn import_samples() -> Vec<PriceImportEvent> {
    vec![
        PriceImportEvent::ImportRequested {
            key: ImportKey {
                asset: id(1),
                interval: Interval::Day,
                from: at(0),
                to: at(86_400 * 30),
            },
            provider: "twelvedata".to_owned(),
            at: at(0),
        },
        PriceImportEvent::ImportStarted {
            attempt: 1,
            lease_until: at(60),
            at: at(1),
        },
        PriceImportEvent::ImportProgressed {
            fetched: 20,
            recorded_until: at(86_400 * 20),
            lease_until: at(62),
            at: at(2),
        },
        PriceImportEvent::ImportFailed {
            attempt: 1,
            error: "provider answered 503".to_owned(),
            retry_at: at(30),
            at: at(3),
        },
        PriceImportEvent::ImportCompleted {
            fetched: 30,
            at: at(40),
        },
        PriceImportEvent::ImportAbandoned {
            attempt: 5,
            error: "provider answered 401".to_owned(),
            at: at(50),
        },
    ]
}

stored_events_test! {
    fn price_import_events_are_stored_under_their_event_types() for PriceImportEvent {
        snapshot: "price_import_events",
        former_tags: [],
        samples: import_samples(),
    }
}

fn schedule_samples() -> Vec<RefreshScheduleEvent> {
    vec![
        RefreshScheduleEvent::RefreshScheduled {
            asset: id(1),
            interval: Interval::Hour,
            rhythm: Rhythm::new(60, 48).expect("valid"),
            at: at(0),
        },
        RefreshScheduleEvent::RefreshUnscheduled {
            asset: id(1),
            interval: Interval::Hour,
            at: at(1),
        },
    ]
}

stored_events_test! {
    fn refresh_schedule_events_are_stored_under_their_event_types() for RefreshScheduleEvent {
        snapshot: "refresh_schedule_events",
        former_tags: [],
        samples: schedule_samples(),
    }
}

fn portfolio_samples() -> Vec<PortfolioEvent> {
    vec![
        PortfolioEvent::PortfolioOpened {
            name: AssetName::parse("Retirement").expect("valid"),
            currency: Currency::parse("USD").expect("valid"),
            at: at(0),
        },
        PortfolioEvent::TradeRecorded {
            trade: Trade {
                id: id(5),
                asset: id(1),
                side: Side::Buy,
                quantity: Decimal::new(10, 0),
                price: Decimal::new(18715, 2),
                time: at(1),
            },
            at: at(2),
        },
    ]
}

stored_events_test! {
    fn portfolio_events_are_stored_under_their_event_types() for PortfolioEvent {
        snapshot: "portfolio_events",
        former_tags: [],
        samples: portfolio_samples(),
    }
}
