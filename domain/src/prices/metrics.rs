//! A portfolio's metrics from its trades and the price history, in exact decimals: each
//! holding's quantity, remaining cost (average-cost method), realised and unrealised gain; and
//! the time-weighted return of a series of valuations with the cash flows between them.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use uuid::Uuid;

use super::Trade;

/// One asset's holding after a sequence of trades.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    /// The quantity held.
    pub quantity: Decimal,
    /// What the quantity held cost, at the average cost of the buys.
    pub cost: Decimal,
    /// Gains (or losses) taken by selling: the sell price less the average cost, per unit sold.
    pub realised: Decimal,
}

impl Position {
    /// The gain not taken yet, were the holding valued at `price`; `None` beyond 28 digits.
    pub fn unrealised(&self, price: Decimal) -> Option<Decimal> {
        self.quantity.checked_mul(price)?.checked_sub(self.cost)
    }
}

impl Position {
    /// The position after `trade` (of this asset): a buy adds its quantity at its cost, a sell
    /// takes quantity out at the average cost and realises the difference to its price.
    pub fn apply(&mut self, trade: &Trade) {
        match trade.side {
            super::Side::Buy => {
                self.quantity += trade.quantity;
                self.cost += trade.quantity * trade.price;
            }
            super::Side::Sell => {
                let average = if self.quantity.is_zero() {
                    Decimal::ZERO
                } else {
                    self.cost / self.quantity
                };
                let sold = trade.quantity.min(self.quantity);
                self.realised += sold * (trade.price - average);
                self.cost -= sold * average;
                self.quantity -= sold;
                if self.quantity.is_zero() {
                    self.cost = Decimal::ZERO;
                }
            }
        }
    }
}

/// Each asset's position after `trades`, applied in [`trade_order`]: by time; at one time,
/// buys before sells (trades at one instant are netted, as the portfolio checks them), then by
/// id.
pub fn positions(trades: &[Trade]) -> BTreeMap<Uuid, Position> {
    let mut ordered: Vec<&Trade> = trades.iter().collect();
    ordered.sort_by_key(|trade| trade_order(trade));
    let mut positions: BTreeMap<Uuid, Position> = BTreeMap::new();
    for trade in ordered {
        positions.entry(trade.asset).or_default().apply(trade);
    }
    positions
}

/// The order trades are applied in: by time; at one time buys first; then by id.
pub fn trade_order(trade: &Trade) -> (chrono::DateTime<chrono::Utc>, bool, Uuid) {
    (trade.time, trade.side == super::Side::Sell, trade.id)
}

/// A valuation at the end of one sub-period, and the net cash that came in during it (buys
/// positive, sells negative).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Valuation {
    /// The holdings' value at the end of the sub-period.
    pub value: Decimal,
    /// Money put in (bought) less money taken out (sold) during the sub-period.
    pub flow: Decimal,
}

/// The time-weighted return of consecutive valuations: the product of each sub-period's
/// growth `(value - flow) / previous value` (cash flows count at the end of their sub-period,
/// so a trade at the closing price leaves the sub-period's return the asset's), less one.
/// A sub-period that starts with nothing held grows by `value / flow` (from the money put
/// in to what it is worth at the end); one with nothing held and nothing put in is left out.
/// `None` when every one was, or beyond 28 digits.
pub fn time_weighted_return(valuations: &[Valuation]) -> Option<Decimal> {
    let mut growth: Option<Decimal> = None;
    for pair in valuations.windows(2) {
        let (before, after) = (pair[0], pair[1]);
        let period = if before.value > Decimal::ZERO {
            (after.value - after.flow).checked_div(before.value)?
        } else if after.flow > Decimal::ZERO {
            after.value.checked_div(after.flow)?
        } else {
            continue;
        };
        growth = Some(growth.unwrap_or(Decimal::ONE).checked_mul(period)?);
    }
    growth.map(|growth| (growth - Decimal::ONE).round_dp(12))
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::prices::Side;

    fn trade(n: u128, side: Side, quantity: i64, price: i64) -> Trade {
        Trade {
            id: Uuid::from_u128(n),
            asset: Uuid::from_u128(1),
            side,
            quantity: Decimal::new(quantity, 0),
            price: Decimal::new(price, 0),
            time: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
                + chrono::Duration::days(n as i64),
        }
    }

    #[test]
    fn average_cost_gives_realised_and_unrealised_gain() {
        // Buy 10 at 100, buy 10 at 120 (average 110), sell 5 at 130: realised 5 × 20 = 100.
        let trades = [
            trade(3, Side::Sell, 5, 130),
            trade(1, Side::Buy, 10, 100),
            trade(2, Side::Buy, 10, 120),
        ];
        let position = positions(&trades)[&Uuid::from_u128(1)];
        assert_eq!(position.quantity, Decimal::new(15, 0));
        assert_eq!(position.cost, Decimal::new(1650, 0));
        assert_eq!(position.realised, Decimal::new(100, 0));
        assert_eq!(
            position.unrealised(Decimal::new(140, 0)),
            Some(Decimal::new(450, 0))
        );
    }

    #[test]
    fn the_time_weighted_return_ignores_the_size_of_cash_flows() {
        let at = |value: i64, flow: i64| Valuation {
            value: Decimal::new(value, 0),
            flow: Decimal::new(flow, 0),
        };
        // 1000 put in is worth 1000 at the first day's end, grows 10 % to 1100; 1000 more put
        // in at the end of a day that grew 10 % again: 21 % whatever the amounts.
        let series = [at(0, 0), at(1000, 1000), at(1100, 0), at(2210, 1000)];
        assert_eq!(
            time_weighted_return(&series),
            Some(Decimal::new(21, 2)),
            "1.1 × 1.1 − 1"
        );
        // Selling everything at the day's value takes the money out: the return is the one
        // before.
        let sold = [at(0, 0), at(1000, 1000), at(1100, 0), at(0, -1100)];
        assert_eq!(time_weighted_return(&sold), Some(Decimal::new(1, 1)));
        // Bought for 1000, worth 950 at the first day's end: that day counts.
        assert_eq!(
            time_weighted_return(&[at(0, 0), at(950, 1000)]),
            Some(Decimal::new(-5, 2))
        );
        assert_eq!(time_weighted_return(&[at(0, 0), at(0, 0)]), None);
    }
}
