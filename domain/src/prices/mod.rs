//! Asset prices (seed 004): assets listed, renamed and delisted, and their price history as
//! facts that are never overwritten. A bar reported again with the same values changes nothing;
//! with different values it is a correction that keeps the old values and names its source.
//! Nothing is ever deleted, so a provider that answers with fewer bars than before loses none.
//!
//! Price history is split into streams of one asset, one interval and one period
//! ([`PriceSeries::stream_id`]): a month of intraday bars or a year of daily ones, so no stream
//! grows without bound and imports of different periods never contend.

mod asset;
mod import;
mod metrics;
mod policy;
mod portfolio;
mod schedule;
mod series;
mod values;

#[cfg(test)]
mod import_tests;
#[cfg(test)]
mod portfolio_tests;
#[cfg(test)]
mod stored_events;
#[cfg(test)]
mod tests;

pub use asset::{Asset, AssetCommand, AssetError, AssetEvent};
pub use import::{
    ImportKey, ImportStatus, PriceImport, PriceImportCommand, PriceImportError, PriceImportEvent,
};
pub use metrics::{positions, time_weighted_return, trade_order, Position, Valuation};
pub use policy::PriceAction;
pub use portfolio::{Portfolio, PortfolioCommand, PortfolioError, PortfolioEvent, Side, Trade};
pub use rust_decimal::Decimal;
pub use schedule::{
    RefreshSchedule, RefreshScheduleCommand, RefreshScheduleError, RefreshScheduleEvent, Rhythm,
};
pub use series::{
    Correction, PriceSeries, PriceSeriesCommand, PriceSeriesError, PriceSeriesEvent, Reported,
    SeriesKey,
};
pub use values::{
    parse_decimal, AssetKind, AssetName, Bar, BarError, Currency, Exchange, ImportSource, Interval,
    Symbol, ValueError, DECIMAL_FRACTION_DIGITS, DECIMAL_INTEGER_DIGITS,
};
