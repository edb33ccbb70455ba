//! The values of the prices context: symbols, exchanges, currencies, intervals and bars, each
//! checked where it is made.

use std::fmt;

use chrono::{DateTime, Datelike, TimeZone, Timelike, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{DomainError, ErrorKind};
use crate::names::parse_name;

/// A value that breaks its rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {rule}")]
pub struct ValueError {
    /// The value, as named in requests.
    pub field: &'static str,
    /// What it must be.
    pub rule: &'static str,
}

impl DomainError for ValueError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Invalid
    }

    fn code(&self) -> &'static str {
        match self.field {
            "symbol" => "invalid_symbol",
            "exchange" => "invalid_exchange",
            "currency" => "invalid_currency",
            "decimal" => "invalid_decimal",
            _ => "invalid_name",
        }
    }
}

fn token(
    raw: &str,
    max: usize,
    extra: &[char],
    field: &'static str,
    rule: &'static str,
) -> Result<String, ValueError> {
    let upper = raw.to_ascii_uppercase();
    let ok = (1..=max).contains(&upper.len())
        && upper
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || extra.contains(&c));
    ok.then_some(upper).ok_or(ValueError { field, rule })
}

/// A ticker symbol: 1 to 20 of `A-Z`, `0-9`, `.`, `-`, `/`, `:`, upper-cased (`BRK.B`, `EUR/USD`);
/// lower-case letters are accepted and upper-cased.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Symbol(String);

impl Symbol {
    /// Parses a symbol.
    ///
    /// # Errors
    /// [`ValueError`] naming `symbol`.
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        token(
            raw,
            20,
            &['.', '-', '/', ':'],
            "symbol",
            "1 to 20 of A-Z, 0-9, '.', '-', '/', ':'",
        )
        .map(Self)
    }

    /// The symbol.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An exchange's code (a market identifier such as `XNAS`): 1 to 10 of `A-Z`, `0-9`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Exchange(String);

impl Exchange {
    /// Parses an exchange code.
    ///
    /// # Errors
    /// [`ValueError`] naming `exchange`.
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        token(raw, 10, &[], "exchange", "1 to 10 of A-Z, 0-9").map(Self)
    }

    /// The code.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An ISO 4217 currency code: three letters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Currency(String);

impl Currency {
    /// Parses a currency code.
    ///
    /// # Errors
    /// [`ValueError`] naming `currency`.
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let code = token(raw, 3, &[], "currency", "three letters (ISO 4217)")?;
        if code.len() == 3 && code.chars().all(|c| c.is_ascii_uppercase()) {
            Ok(Self(code))
        } else {
            Err(ValueError {
                field: "currency",
                rule: "three letters (ISO 4217)",
            })
        }
    }

    /// The code.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An asset's name as people read it: 1 to 200 characters, nothing invisible.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AssetName(String);

impl AssetName {
    /// The longest name, in characters.
    pub const MAX_CHARS: usize = 200;

    /// Parses a name.
    ///
    /// # Errors
    /// [`ValueError`] naming `name`.
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        parse_name(raw, 1..=Self::MAX_CHARS)
            .map(|name| Self(name.to_owned()))
            .map_err(|_| ValueError {
                field: "name",
                rule: "1 to 200 characters, no control or invisible characters",
            })
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What kind of asset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssetKind {
    /// A company's shares.
    Stock,
    /// An exchange-traded fund.
    Etf,
    /// An index (not tradable itself).
    Index,
    /// A currency pair.
    Forex,
    /// A crypto-currency.
    Crypto,
    /// A commodity.
    Commodity,
}

impl AssetKind {
    /// Every kind.
    pub const ALL: [AssetKind; 6] = [
        Self::Stock,
        Self::Etf,
        Self::Index,
        Self::Forex,
        Self::Crypto,
        Self::Commodity,
    ];

    /// Its name, as stored and as the API writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stock => "stock",
            Self::Etf => "etf",
            Self::Index => "index",
            Self::Forex => "forex",
            Self::Crypto => "crypto",
            Self::Commodity => "commodity",
        }
    }

    /// The kind named `name`, if any.
    pub fn by_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}

/// The length of one bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Interval {
    /// One minute.
    #[serde(rename = "1min")]
    Minute,
    /// Five minutes.
    #[serde(rename = "5min")]
    FiveMinutes,
    /// Fifteen minutes.
    #[serde(rename = "15min")]
    FifteenMinutes,
    /// Thirty minutes.
    #[serde(rename = "30min")]
    ThirtyMinutes,
    /// One hour.
    #[serde(rename = "1h")]
    Hour,
    /// One day.
    #[serde(rename = "1day")]
    Day,
}

impl Interval {
    /// Every interval, shortest first.
    pub const ALL: [Interval; 6] = [
        Self::Minute,
        Self::FiveMinutes,
        Self::FifteenMinutes,
        Self::ThirtyMinutes,
        Self::Hour,
        Self::Day,
    ];

    /// Its name, as providers and the API write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Minute => "1min",
            Self::FiveMinutes => "5min",
            Self::FifteenMinutes => "15min",
            Self::ThirtyMinutes => "30min",
            Self::Hour => "1h",
            Self::Day => "1day",
        }
    }

    /// Reads a name written by [`Interval::as_str`].
    pub fn by_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|interval| interval.as_str() == name)
    }

    /// Its length in seconds.
    pub fn seconds(self) -> i64 {
        match self {
            Self::Minute => 60,
            Self::FiveMinutes => 300,
            Self::FifteenMinutes => 900,
            Self::ThirtyMinutes => 1_800,
            Self::Hour => 3_600,
            Self::Day => 86_400,
        }
    }

    /// Whether `time` starts a bar of this interval (bars are aligned to UTC).
    pub fn aligned(self, time: DateTime<Utc>) -> bool {
        time.timestamp_subsec_nanos() == 0 && time.timestamp().rem_euclid(self.seconds()) == 0
    }

    /// The start of the period whose stream holds the bar at `time`: its UTC year for daily
    /// bars, its UTC month for shorter ones.
    pub fn period_of(self, time: DateTime<Utc>) -> DateTime<Utc> {
        let month = if self == Self::Day { 1 } else { time.month() };
        Utc.with_ymd_and_hms(time.year(), month, 1, 0, 0, 0)
            .single()
            .unwrap_or(time)
            .with_nanosecond(0)
            .unwrap_or(time)
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The longest integer part of a price or volume, in digits.
pub const DECIMAL_INTEGER_DIGITS: usize = 16;
/// The longest fractional part of a price or volume, in digits.
pub const DECIMAL_FRACTION_DIGITS: usize = 12;

/// A price or volume as written in requests and by providers: an exact non-negative decimal,
/// `0` or digits without a leading zero (at most [`DECIMAL_INTEGER_DIGITS`]), optionally `.`
/// and 1 to [`DECIMAL_FRACTION_DIGITS`] more. Exactly representable, never rounded.
///
/// # Errors
/// [`ValueError`] naming `decimal`.
pub fn parse_decimal(raw: &str) -> Result<Decimal, ValueError> {
    let (integer, fraction) = raw
        .split_once('.')
        .map_or((raw, None), |(integer, fraction)| (integer, Some(fraction)));
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    let integer_ok = digits(integer)
        && integer.len() <= DECIMAL_INTEGER_DIGITS
        && (integer == "0" || !integer.starts_with('0'));
    let fraction_ok =
        fraction.is_none_or(|part| digits(part) && part.len() <= DECIMAL_FRACTION_DIGITS);
    (integer_ok && fraction_ok)
        .then(|| Decimal::from_str_exact(raw).ok())
        .flatten()
        .ok_or(ValueError {
            field: "decimal",
            rule:
                "an exact non-negative decimal: up to 16 digits, optionally `.` and up to 12 more",
        })
}

/// One bar: open, high, low, close and volume over an interval, exact decimals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Bar {
    /// The first price.
    pub open: Decimal,
    /// The highest price.
    pub high: Decimal,
    /// The lowest price.
    pub low: Decimal,
    /// The last price.
    pub close: Decimal,
    /// The volume traded.
    pub volume: Decimal,
}

/// A bar whose values cannot be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BarError {
    /// A price or the volume is negative.
    #[error("prices and volume must not be negative")]
    Negative,
    /// `low` is above `open` or `close`, or `high` below them.
    #[error("low <= open, close <= high must hold")]
    OutOfRange,
}

impl DomainError for BarError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Invalid
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Negative => "negative_value",
            Self::OutOfRange => "bar_out_of_range",
        }
    }
}

impl Bar {
    /// A bar, checked: no negative value, and low ≤ open, close ≤ high. Values are normalised
    /// (`1.50` is `1.5`), so the same price written two ways is the same bar.
    ///
    /// # Errors
    /// [`BarError`].
    pub fn new(
        open: Decimal,
        high: Decimal,
        low: Decimal,
        close: Decimal,
        volume: Decimal,
    ) -> Result<Self, BarError> {
        if [open, high, low, close, volume]
            .iter()
            .any(|value| *value < Decimal::ZERO)
        {
            return Err(BarError::Negative);
        }
        if low > open.min(close) || high < open.max(close) {
            return Err(BarError::OutOfRange);
        }
        Ok(Self {
            open: open.normalize(),
            high: high.normalize(),
            low: low.normalize(),
            close: close.normalize(),
            volume: volume.normalize(),
        })
    }
}

/// Where reported bars came from: the provider, and the import run that fetched them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportSource {
    /// The provider's name (e.g. `twelvedata`).
    pub provider: String,
    /// The import run.
    pub import_id: Uuid,
}
