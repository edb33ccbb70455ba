//! Given/when/then for every asset command in every state and every kind of bar report, and the
//! property that no import sequence ever loses a bar.

use chrono::{DateTime, Duration, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use proptest::prelude::*;
use rust_decimal::Decimal;
use uuid::Uuid;

use super::*;
use crate::aggregate::{replay, Decider, Guarded, Rejection, Versioned};

type GivenAsset = TestFramework<Versioned<Asset>>;
type GivenSeries = TestFramework<Versioned<PriceSeries>>;

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 0, 0, 0).unwrap()
}
fn listed() -> AssetEvent {
    AssetEvent::AssetListed {
        symbol: Symbol::parse("acme").unwrap(),
        exchange: Exchange::parse("XNAS").unwrap(),
        currency: Currency::parse("usd").unwrap(),
        kind: AssetKind::Stock,
        name: AssetName::parse("Acme").unwrap(),
        at: at(),
    }
}
fn list() -> AssetCommand {
    AssetCommand::List {
        symbol: Symbol::parse("ACME").unwrap(),
        exchange: Exchange::parse("xnas").unwrap(),
        currency: Currency::parse("USD").unwrap(),
        kind: AssetKind::Stock,
        name: AssetName::parse("Acme").unwrap(),
        at: at(),
    }
}
fn rename(symbol: &str) -> AssetCommand {
    AssetCommand::Rename {
        symbol: Symbol::parse(symbol).unwrap(),
        name: AssetName::parse("Acme").unwrap(),
        at: at(),
    }
}
fn asset(command: AssetCommand) -> Guarded<AssetCommand> {
    Guarded::new(command)
}

#[test]
fn list_an_asset_with_normalised_codes() {
    GivenAsset::with(())
        .given_no_previous_events()
        .when(asset(list()))
        .then_expect_events(vec![listed()]);
}

#[test]
fn listing_twice_is_a_conflict() {
    GivenAsset::with(())
        .given(vec![listed()])
        .when(asset(list()))
        .then_expect_error(Rejection::Domain(AssetError::AlreadyListed));
}

#[test]
fn an_unlisted_asset_is_not_found() {
    for command in [rename("ACM"), AssetCommand::Delist { at: at() }] {
        GivenAsset::with(())
            .given_no_previous_events()
            .when(asset(command))
            .then_expect_error(Rejection::Domain(AssetError::NotFound));
    }
}

#[test]
fn rename_and_delist_a_listed_asset() {
    GivenAsset::with(())
        .given(vec![listed()])
        .when(asset(rename("ACM")))
        .then_expect_events(vec![AssetEvent::AssetRenamed {
            symbol: Symbol::parse("ACM").unwrap(),
            name: AssetName::parse("Acme").unwrap(),
            at: at(),
        }]);
    GivenAsset::with(())
        .given(vec![listed()])
        .when(asset(rename("ACME")))
        .then_expect_error(Rejection::Domain(AssetError::Unchanged));
    GivenAsset::with(())
        .given(vec![listed()])
        .when(asset(AssetCommand::Delist { at: at() }))
        .then_expect_events(vec![AssetEvent::AssetDelisted { at: at() }]);
}

#[test]
fn a_delisted_asset_changes_no_more() {
    let delisted = vec![listed(), AssetEvent::AssetDelisted { at: at() }];
    for command in [rename("ACM"), AssetCommand::Delist { at: at() }] {
        GivenAsset::with(())
            .given(delisted.clone())
            .when(asset(command))
            .then_expect_error(Rejection::Domain(AssetError::Delisted));
    }
    GivenAsset::with(())
        .given(delisted)
        .when(asset(list()))
        .then_expect_error(Rejection::Domain(AssetError::AlreadyListed));
}

#[test]
fn values_are_checked_and_named() {
    assert_eq!(Symbol::parse("brk.b").unwrap().as_str(), "BRK.B");
    assert_eq!(Symbol::parse("").unwrap_err().field, "symbol");
    assert_eq!(Symbol::parse("A B").unwrap_err().field, "symbol");
    assert_eq!(Currency::parse("US").unwrap_err().field, "currency");
    assert_eq!(Currency::parse("U5D").unwrap_err().field, "currency");
    assert_eq!(Exchange::parse("X-NAS").unwrap_err().field, "exchange");
    let d = |v: i64| Decimal::new(v, 0);
    assert_eq!(
        Bar::new(d(2), d(1), d(1), d(1), d(0)),
        Err(BarError::OutOfRange)
    );
    assert_eq!(
        Bar::new(d(1), d(3), d(2), d(1), d(0)),
        Err(BarError::OutOfRange)
    );
    assert_eq!(
        Bar::new(d(1), d(1), d(1), d(1), d(-1)),
        Err(BarError::Negative)
    );
    let written_twice =
        Bar::new(Decimal::new(150, 2), d(2), d(1), Decimal::new(15, 1), d(7)).unwrap();
    assert_eq!(
        written_twice,
        Bar::new(Decimal::new(15, 1), d(2), d(1), Decimal::new(1500, 3), d(7)).unwrap()
    );
    assert_eq!(Interval::by_name("1h"), Some(Interval::Hour));
    assert!(Interval::Hour.aligned(at() + Duration::hours(5)));
    assert!(!Interval::Hour.aligned(at() + Duration::minutes(5)));
    assert_eq!(
        Interval::Hour.period_of(at() + Duration::days(3)),
        Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap()
    );
    assert_eq!(
        Interval::Day.period_of(at()),
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
    );
}

fn key() -> SeriesKey {
    SeriesKey {
        asset: Uuid::from_u128(1),
        interval: Interval::Day,
        period: Interval::Day.period_of(at()),
    }
}
fn day(n: i64) -> DateTime<Utc> {
    Interval::Day.period_of(at()) + Duration::days(n)
}
fn close(value: i64) -> Bar {
    let v = Decimal::new(value, 0);
    Bar::new(v, v, v, v, Decimal::ONE).unwrap()
}
fn source() -> ImportSource {
    ImportSource {
        provider: "test".to_owned(),
        import_id: Uuid::from_u128(2),
    }
}
fn record(bars: &[(i64, i64)]) -> Guarded<PriceSeriesCommand> {
    Guarded::new(PriceSeriesCommand::Record {
        key: key(),
        bars: bars
            .iter()
            .map(|(n, value)| Reported {
                time: day(*n),
                bar: close(*value),
            })
            .collect(),
        source: source(),
        at: at(),
    })
}
fn recorded(bars: &[(i64, i64)]) -> PriceSeriesEvent {
    PriceSeriesEvent::BarsRecorded {
        bars: bars
            .iter()
            .map(|(n, value)| Reported {
                time: day(*n),
                bar: close(*value),
            })
            .collect(),
        source: source(),
        at: at(),
    }
}
fn started() -> PriceSeriesEvent {
    PriceSeriesEvent::SeriesStarted {
        key: key(),
        at: at(),
    }
}

#[test]
fn first_bars_start_the_series_in_time_order() {
    GivenSeries::with(())
        .given_no_previous_events()
        .when(record(&[(2, 12), (1, 11)]))
        .then_expect_events(vec![started(), recorded(&[(1, 11), (2, 12)])]);
}

#[test]
fn the_same_bars_again_change_nothing_and_new_ones_are_added() {
    let history = vec![started(), recorded(&[(1, 11), (2, 12)])];
    GivenSeries::with(())
        .given(history.clone())
        .when(record(&[(1, 11), (2, 12)]))
        .then_expect_events(vec![]);
    GivenSeries::with(())
        .given(history)
        .when(record(&[(2, 12), (3, 13)]))
        .then_expect_events(vec![recorded(&[(3, 13)])]);
}

#[test]
fn changed_values_are_corrections_that_keep_the_old_ones() {
    GivenSeries::with(())
        .given(vec![started(), recorded(&[(1, 11), (2, 12)])])
        .when(record(&[(2, 20), (4, 14)]))
        .then_expect_events(vec![
            recorded(&[(4, 14)]),
            PriceSeriesEvent::BarsCorrected {
                corrections: vec![Correction {
                    time: day(2),
                    previous: close(12),
                    bar: close(20),
                }],
                source: source(),
                at: at(),
            },
        ]);
}

#[test]
fn fewer_bars_than_before_remove_none() {
    let history = vec![started(), recorded(&[(1, 11), (2, 12), (3, 13)])];
    GivenSeries::with(())
        .given(history.clone())
        .when(record(&[(2, 12)]))
        .then_expect_events(vec![]);
    let series = replay::<PriceSeries>(&history);
    assert_eq!(series.state().bars.len(), 3);
}

#[test]
fn misplaced_contradictory_or_foreign_bars_are_refused() {
    let misplaced = Guarded::new(PriceSeriesCommand::Record {
        key: key(),
        bars: vec![Reported {
            time: day(1) + Duration::hours(1),
            bar: close(1),
        }],
        source: source(),
        at: at(),
    });
    GivenSeries::with(())
        .given_no_previous_events()
        .when(misplaced)
        .then_expect_error(Rejection::Domain(PriceSeriesError::Misplaced {
            time: day(1) + Duration::hours(1),
            interval: Interval::Day,
        }));
    GivenSeries::with(())
        .given_no_previous_events()
        .when(record(&[(400, 1)]))
        .then_expect_error(Rejection::Domain(PriceSeriesError::Misplaced {
            time: day(400),
            interval: Interval::Day,
        }));
    GivenSeries::with(())
        .given_no_previous_events()
        .when(record(&[(1, 1), (1, 2)]))
        .then_expect_error(Rejection::Domain(PriceSeriesError::Contradictory {
            time: day(1),
        }));
    let foreign = Guarded::new(PriceSeriesCommand::Record {
        key: SeriesKey {
            asset: Uuid::from_u128(99),
            ..key()
        },
        bars: vec![],
        source: source(),
        at: at(),
    });
    GivenSeries::with(())
        .given(vec![started(), recorded(&[(1, 11)])])
        .when(foreign)
        .then_expect_error(Rejection::Domain(PriceSeriesError::WrongSeries));
    let many: Vec<(i64, i64)> = (0..1_001).map(|n| (n % 300, 1)).collect();
    GivenSeries::with(())
        .given_no_previous_events()
        .when(record(&many))
        .then_expect_error(Rejection::Domain(PriceSeriesError::TooMany));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() })]

    /// Random import sequences (repeats, corrections, overlaps, out of order) never lose a bar:
    /// every time ever reported is in the series with the last value reported for it, and the
    /// history holds every earlier distinct value in order.
    #[test]
    fn no_import_sequence_loses_a_bar(
        imports in prop::collection::vec(
            prop::collection::btree_map(0i64..40, 1i64..6, 0..15),
            1..12,
        )
    ) {
        let mut series = PriceSeries::default();
        let mut events = Vec::new();
        let mut last = std::collections::BTreeMap::new();
        let mut values: std::collections::BTreeMap<i64, Vec<i64>> = std::collections::BTreeMap::new();
        for import in &imports {
            let bars: Vec<(i64, i64)> = import.iter().rev().map(|(n, v)| (*n, *v)).collect();
            let decided = series.decide(record(&bars).command).expect("every import is valid");
            for event in &decided {
                series.evolve(event);
            }
            events.extend(decided);
            for (n, v) in import {
                last.insert(*n, *v);
                let seen = values.entry(*n).or_default();
                if seen.last() != Some(v) {
                    seen.push(*v);
                }
            }
        }
        let replayed = replay::<PriceSeries>(&events);
        prop_assert_eq!(replayed.state(), &series);
        let expected: std::collections::BTreeMap<DateTime<Utc>, Bar> =
            last.iter().map(|(n, v)| (day(*n), close(*v))).collect();
        prop_assert_eq!(&replayed.state().bars, &expected);
        // The history of each bar: recorded once, then each correction from the value before.
        let mut history: std::collections::BTreeMap<DateTime<Utc>, Vec<Bar>> = std::collections::BTreeMap::new();
        for event in &events {
            match event {
                PriceSeriesEvent::BarsRecorded { bars, .. } => {
                    for Reported { time, bar } in bars {
                        prop_assert!(history.insert(*time, vec![*bar]).is_none(), "recorded twice");
                    }
                }
                PriceSeriesEvent::BarsCorrected { corrections, .. } => {
                    for Correction { time, previous, bar } in corrections {
                        let seen = history.get_mut(time).expect("a correction of a recorded bar");
                        prop_assert_eq!(seen.last(), Some(previous));
                        seen.push(*bar);
                    }
                }
                PriceSeriesEvent::SeriesStarted { .. } => {}
            }
        }
        for (n, seen) in &values {
            let expected: Vec<Bar> = seen.iter().map(|v| close(*v)).collect();
            prop_assert_eq!(&history[&day(*n)], &expected);
        }
    }
}

#[test]
fn decimals_are_read_exactly_as_documented() {
    for good in [
        "0",
        "187.15",
        "0.000000000001",
        "9999999999999999.999999999999",
        "10",
    ] {
        assert_eq!(parse_decimal(good).unwrap().to_string(), good, "{good}");
    }
    for bad in [
        "",
        ".5",
        "5.",
        "01",
        "-1",
        "1e3",
        "1.0000000000001",
        "12345678901234567",
        " 1",
        "1,5",
        "+1",
        "1.2.3",
    ] {
        assert!(parse_decimal(bad).is_err(), "{bad}");
    }
}

#[test]
fn asset_kinds_are_named_as_they_are_stored() {
    for kind in AssetKind::ALL {
        assert_eq!(serde_json::json!(kind), serde_json::json!(kind.as_str()));
        assert_eq!(AssetKind::by_name(kind.as_str()), Some(kind));
    }
}
