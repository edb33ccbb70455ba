//! The `Portfolio` aggregate: opened with a name and a currency, then trades recorded (buy or
//! sell a quantity of an asset at a price, at a time). Trades may be recorded late and out of
//! order (a broker's statement arrives days later), so the rule that nothing is sold short is
//! checked over the whole history in time order: no trade may leave a holding negative at any
//! time, including trades recorded after it but dated before.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{AssetName, Currency};
use crate::aggregate::Decider;
use crate::error::{DomainError, ErrorKind};

/// Buy or sell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// Quantity comes in.
    Buy,
    /// Quantity goes out.
    Sell,
}

/// One trade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trade {
    /// Its id (a client may retry with it: the same trade twice is refused).
    pub id: Uuid,
    /// The asset traded.
    pub asset: Uuid,
    /// Buy or sell.
    pub side: Side,
    /// How much: positive.
    pub quantity: Decimal,
    /// At what price per unit, in the portfolio's currency: not negative.
    pub price: Decimal,
    /// When it was executed.
    pub time: DateTime<Utc>,
}

impl Trade {
    /// The quantity with its sign: positive for a buy, negative for a sell.
    pub fn signed_quantity(&self) -> Decimal {
        match self.side {
            Side::Buy => self.quantity,
            Side::Sell => -self.quantity,
        }
    }
}

/// A portfolio's state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub enum Portfolio {
    /// Not opened.
    #[default]
    Unopened,
    /// Opened.
    Open {
        /// Its name.
        name: AssetName,
        /// The currency of its prices and values.
        currency: Currency,
        /// Each asset's quantity changes by time (several at one time are summed).
        changes: BTreeMap<Uuid, BTreeMap<DateTime<Utc>, Decimal>>,
        /// The ids of the trades recorded.
        trades: Vec<Uuid>,
    },
}

/// What can be asked of a portfolio.
#[derive(Debug, Clone, PartialEq)]
pub enum PortfolioCommand {
    /// Open it.
    Open {
        /// Its name.
        name: AssetName,
        /// The currency of its prices and values.
        currency: Currency,
        /// When.
        at: DateTime<Utc>,
    },
    /// Record a trade.
    RecordTrade {
        /// The trade.
        trade: Trade,
        /// When it is recorded.
        at: DateTime<Utc>,
    },
}

impl PortfolioCommand {
    /// The command's name as recorded in event metadata.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Open { .. } => "OpenPortfolio",
            Self::RecordTrade { .. } => "RecordTrade",
        }
    }
}

/// What happened to a portfolio. Stored forever; the serde tag is the `event_type()`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PortfolioEvent {
    /// Opened.
    PortfolioOpened {
        /// Its name.
        name: AssetName,
        /// Its currency.
        currency: Currency,
        /// When.
        at: DateTime<Utc>,
    },
    /// A trade was recorded.
    TradeRecorded {
        /// The trade.
        trade: Trade,
        /// When it was recorded.
        at: DateTime<Utc>,
    },
}

impl DomainEvent for PortfolioEvent {
    fn event_type(&self) -> String {
        match self {
            Self::PortfolioOpened { .. } => "PortfolioOpened",
            Self::TradeRecorded { .. } => "TradeRecorded",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

/// Why a portfolio command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortfolioError {
    /// Opening one that is open.
    #[error("the portfolio is open already")]
    AlreadyOpen,
    /// No such portfolio.
    #[error("no such portfolio")]
    NotFound,
    /// A quantity that is not positive, a negative price, or a trade worth more than
    /// [`Portfolio::MAX_TRADE_VALUE`].
    #[error(
        "the quantity must be positive, the price not negative, and their product at most 10^20"
    )]
    InvalidTrade,
    /// A trade in a new asset of a portfolio holding [`Portfolio::MAX_ASSETS`] assets.
    #[error("a portfolio trades at most 1000 assets")]
    TooManyAssets,
    /// A trade with this id is recorded already.
    #[error("this trade is recorded already")]
    DuplicateTrade,
    /// The trade would leave the holding negative at some time.
    #[error("the holding of the asset would be negative on {time}")]
    Oversold {
        /// The first time the holding would be negative.
        time: DateTime<Utc>,
    },
}

impl DomainError for PortfolioError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::NotFound => ErrorKind::NotFound,
            Self::AlreadyOpen | Self::DuplicateTrade => ErrorKind::Conflict,
            Self::InvalidTrade => ErrorKind::Invalid,
            Self::TooManyAssets => ErrorKind::Rejected,
            Self::Oversold { .. } => ErrorKind::Rejected,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::AlreadyOpen => "portfolio_already_open",
            Self::NotFound => "portfolio_not_found",
            Self::InvalidTrade => "invalid_trade",
            Self::TooManyAssets => "too_many_assets",
            Self::DuplicateTrade => "trade_already_recorded",
            Self::Oversold { .. } => "oversold",
        }
    }
}

impl Portfolio {
    /// The most a trade may be worth (quantity × price), so that sums of trades and values of
    /// holdings stay exact.
    pub const MAX_TRADE_VALUE: Decimal =
        Decimal::from_parts(1_661_992_960, 1_808_227_885, 5, false, 0);
    /// The most assets a portfolio trades.
    pub const MAX_ASSETS: usize = 1_000;
}

impl Decider for Portfolio {
    const TYPE: &'static str = "Portfolio";
    const SNAPSHOT_SCHEMA: u32 = 1;
    type Command = PortfolioCommand;
    type Event = PortfolioEvent;
    type Error = PortfolioError;

    fn decide(&self, command: PortfolioCommand) -> Result<Vec<PortfolioEvent>, PortfolioError> {
        match (self, command) {
            (Self::Unopened, PortfolioCommand::Open { name, currency, at }) => {
                Ok(vec![PortfolioEvent::PortfolioOpened { name, currency, at }])
            }
            (Self::Open { .. }, PortfolioCommand::Open { .. }) => Err(PortfolioError::AlreadyOpen),
            (Self::Unopened, PortfolioCommand::RecordTrade { .. }) => Err(PortfolioError::NotFound),
            (
                Self::Open {
                    changes, trades, ..
                },
                PortfolioCommand::RecordTrade { trade, at },
            ) => {
                let worth = trade.quantity.checked_mul(trade.price);
                if trade.quantity <= Decimal::ZERO
                    || trade.price < Decimal::ZERO
                    || worth.is_none_or(|worth| worth > Portfolio::MAX_TRADE_VALUE)
                {
                    return Err(PortfolioError::InvalidTrade);
                }
                if !changes.contains_key(&trade.asset) && changes.len() >= Portfolio::MAX_ASSETS {
                    return Err(PortfolioError::TooManyAssets);
                }
                if trades.contains(&trade.id) {
                    return Err(PortfolioError::DuplicateTrade);
                }
                let mut after = changes.get(&trade.asset).cloned().unwrap_or_default();
                *after.entry(trade.time).or_default() += trade.signed_quantity();
                let mut held = Decimal::ZERO;
                for (time, change) in after {
                    held += change;
                    if held < Decimal::ZERO {
                        return Err(PortfolioError::Oversold { time });
                    }
                }
                Ok(vec![PortfolioEvent::TradeRecorded { trade, at }])
            }
        }
    }

    fn evolve(&mut self, event: &PortfolioEvent) {
        match (self, event) {
            (this @ Self::Unopened, PortfolioEvent::PortfolioOpened { name, currency, .. }) => {
                *this = Self::Open {
                    name: name.clone(),
                    currency: currency.clone(),
                    changes: BTreeMap::new(),
                    trades: Vec::new(),
                };
            }
            (
                Self::Open {
                    changes, trades, ..
                },
                PortfolioEvent::TradeRecorded { trade, .. },
            ) => {
                *changes
                    .entry(trade.asset)
                    .or_default()
                    .entry(trade.time)
                    .or_default() += trade.signed_quantity();
                trades.push(trade.id);
            }
            // `decide` never produces any other pairing; history is applied as recorded.
            _ => {}
        }
    }
}
