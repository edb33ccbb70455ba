//! Given/when/then for every portfolio command in every state, and the property that no
//! sequence of accepted trades, recorded in any order, ever leaves a holding negative.

use chrono::{DateTime, Duration, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use proptest::prelude::*;
use rust_decimal::Decimal;
use uuid::Uuid;

use super::*;
use crate::aggregate::{Decider, Guarded, Rejection, Versioned};

type Given = TestFramework<Versioned<Portfolio>>;

fn day(n: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::days(n)
}

fn opened() -> PortfolioEvent {
    PortfolioEvent::PortfolioOpened {
        name: AssetName::parse("Retirement").unwrap(),
        currency: Currency::parse("USD").unwrap(),
        at: day(0),
    }
}

fn trade(n: u128, side: Side, quantity: i64, on: i64) -> Trade {
    Trade {
        id: Uuid::from_u128(n),
        asset: Uuid::from_u128(1),
        side,
        quantity: Decimal::new(quantity, 0),
        price: Decimal::new(100, 0),
        time: day(on),
    }
}

fn record(trade: Trade) -> Guarded<PortfolioCommand> {
    Guarded::new(PortfolioCommand::RecordTrade { trade, at: day(30) })
}

fn recorded(trade: Trade) -> PortfolioEvent {
    PortfolioEvent::TradeRecorded { trade, at: day(30) }
}

#[test]
fn a_portfolio_is_opened_once() {
    Given::with(())
        .given_no_previous_events()
        .when(Guarded::new(PortfolioCommand::Open {
            name: AssetName::parse("Retirement").unwrap(),
            currency: Currency::parse("USD").unwrap(),
            at: day(0),
        }))
        .then_expect_events(vec![opened()]);
    Given::with(())
        .given(vec![opened()])
        .when(Guarded::new(PortfolioCommand::Open {
            name: AssetName::parse("Again").unwrap(),
            currency: Currency::parse("EUR").unwrap(),
            at: day(1),
        }))
        .then_expect_error(Rejection::Domain(PortfolioError::AlreadyOpen));
    Given::with(())
        .given_no_previous_events()
        .when(record(trade(1, Side::Buy, 10, 1)))
        .then_expect_error(Rejection::Domain(PortfolioError::NotFound));
}

#[test]
fn trades_are_recorded_once_and_checked() {
    Given::with(())
        .given(vec![opened()])
        .when(record(trade(1, Side::Buy, 10, 1)))
        .then_expect_events(vec![recorded(trade(1, Side::Buy, 10, 1))]);
    Given::with(())
        .given(vec![opened(), recorded(trade(1, Side::Buy, 10, 1))])
        .when(record(trade(1, Side::Buy, 10, 1)))
        .then_expect_error(Rejection::Domain(PortfolioError::DuplicateTrade));
    for invalid in [trade(2, Side::Buy, 0, 1), {
        let mut negative = trade(2, Side::Buy, 1, 1);
        negative.price = Decimal::new(-1, 0);
        negative
    }] {
        Given::with(())
            .given(vec![opened()])
            .when(record(invalid))
            .then_expect_error(Rejection::Domain(PortfolioError::InvalidTrade));
    }
}

#[test]
fn nothing_is_sold_short_even_by_a_trade_recorded_late() {
    // Bought 10 on day 1, sold 9 on day 5: a sale of 1 dated day 3 is fine (1 is left), one
    // of 1 dated day 0 (before the buy) is not, and neither is a sale of 2 on day 6.
    let history = vec![
        opened(),
        recorded(trade(1, Side::Buy, 10, 1)),
        recorded(trade(2, Side::Sell, 9, 5)),
    ];
    Given::with(())
        .given(history.clone())
        .when(record(trade(3, Side::Sell, 1, 3)))
        .then_expect_events(vec![recorded(trade(3, Side::Sell, 1, 3))]);
    Given::with(())
        .given(history.clone())
        .when(record(trade(3, Side::Sell, 1, 0)))
        .then_expect_error(Rejection::Domain(PortfolioError::Oversold { time: day(0) }));
    Given::with(())
        .given(history)
        .when(record(trade(3, Side::Sell, 2, 6)))
        .then_expect_error(Rejection::Domain(PortfolioError::Oversold { time: day(6) }));
}

proptest! {
    #[test]
    fn accepted_trades_in_any_order_never_leave_a_holding_negative(
        trades in prop::collection::vec((any::<bool>(), 1_i64..20, 0_i64..30), 1..40)
    ) {
        let mut state = Portfolio::default();
        state.evolve(&opened());
        let mut accepted = Vec::new();
        for (n, (buy, quantity, on)) in trades.into_iter().enumerate() {
            let side = if buy { Side::Buy } else { Side::Sell };
            let trade = trade(n as u128 + 1, side, quantity, on);
            let command = PortfolioCommand::RecordTrade { trade, at: day(30) };
            if let Ok(events) = state.decide(command) {
                for event in &events {
                    state.evolve(event);
                }
                accepted.push(trade);
            }
        }
        accepted.sort_by_key(super::metrics::trade_order);
        let mut held = Decimal::ZERO;
        for trade in &accepted {
            held += trade.signed_quantity();
            prop_assert!(held >= Decimal::ZERO);
        }
        let positions = super::positions(&accepted);
        prop_assert_eq!(
            positions.get(&Uuid::from_u128(1)).map_or(Decimal::ZERO, |p| p.quantity),
            held
        );
    }
}

#[test]
fn a_trade_is_worth_at_most_ten_to_the_twentieth_and_a_portfolio_holds_at_most_1000_assets() {
    let worth = |quantity: Decimal| Trade {
        quantity,
        ..trade(2, Side::Buy, 1, 1)
    };
    // Price 100: a quantity of 10^18 is worth exactly the limit, one more is over it.
    let at_limit = Decimal::from_i128_with_scale(10_i128.pow(18), 0);
    Given::with(())
        .given(vec![opened()])
        .when(record(worth(at_limit)))
        .then_expect_events(vec![recorded(worth(at_limit))]);
    Given::with(())
        .given(vec![opened()])
        .when(record(worth(at_limit + Decimal::ONE)))
        .then_expect_error(Rejection::Domain(PortfolioError::InvalidTrade));

    let in_asset = |n: u128| Trade {
        asset: Uuid::from_u128(1_000 + n),
        ..trade(n, Side::Buy, 1, 1)
    };
    let mut full = vec![opened()];
    full.extend((0..Portfolio::MAX_ASSETS as u128).map(|n| recorded(in_asset(n))));
    Given::with(())
        .given(full.clone())
        .when(record(in_asset(Portfolio::MAX_ASSETS as u128)))
        .then_expect_error(Rejection::Domain(PortfolioError::TooManyAssets));
    // More of an asset it holds is still a trade.
    let more = Trade {
        id: Uuid::from_u128(99_999),
        ..in_asset(0)
    };
    Given::with(())
        .given(full)
        .when(record(more))
        .then_expect_events(vec![recorded(more)]);
}
