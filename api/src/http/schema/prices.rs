//! The documented shapes of the prices context's values: intervals, asset kinds, symbols,
//! exchanges, currencies, names and exact decimals.

use std::borrow::Cow;

use domain::prices::{
    AssetKind as DomainAssetKind, Interval as DomainInterval, DECIMAL_FRACTION_DIGITS,
    DECIMAL_INTEGER_DIGITS,
};
use utoipa::openapi::RefOr;
use utoipa::openapi::Schema;
use utoipa::{PartialSchema, ToSchema};

use super::{name, one_of, string};

documented! {
    /// [`domain::prices::Interval`], by name.
    Interval => one_of(
        "The length of a bar; bars start at multiples of it since the Unix epoch, UTC.",
        DomainInterval::ALL.map(DomainInterval::as_str),
    )
}

documented! {
    /// [`domain::prices::AssetKind`], by name.
    AssetKind => one_of(
        "What kind of asset.",
        DomainAssetKind::ALL.map(DomainAssetKind::as_str),
    )
}

documented! {
    /// [`domain::prices::Symbol`].
    Symbol => string(
        "A ticker symbol: 1 to 20 of letters, digits, `.`, `-`, `/`, `:`; letters are \
         upper-cased (`BRK.B`, `EUR/USD`).",
        (1, 20),
        "^[A-Za-z0-9./:-]{1,20}$".to_owned(),
        "AAPL",
    )
}

documented! {
    /// [`domain::prices::Exchange`].
    Exchange => string(
        "An exchange's code (a market identifier): 1 to 10 letters or digits, upper-cased.",
        (1, 10),
        "^[A-Za-z0-9]{1,10}$".to_owned(),
        "XNAS",
    )
}

documented! {
    /// [`domain::prices::Currency`].
    Currency => string(
        "An ISO 4217 currency code: three letters, upper-cased.",
        (3, 3),
        "^[A-Za-z]{3}$".to_owned(),
        "USD",
    )
}

documented! {
    /// [`domain::prices::AssetName`].
    AssetName => name(
        "How people call an asset",
        (1, domain::prices::AssetName::MAX_CHARS),
        "Apple Inc.",
    )
}

documented! {
    /// [`domain::prices::parse_decimal`]: a price or volume, an exact decimal as a string (never a
    /// binary float).
    Decimal => string(
        "An exact non-negative decimal, as a string: up to 16 digits, optionally `.` and up to \
         12 more (`187.15`, `0.00001234`, `1200`).",
        (1, DECIMAL_INTEGER_DIGITS + 1 + DECIMAL_FRACTION_DIGITS),
        format!(
            "^(0|[1-9][0-9]{{0,{}}})(\\.[0-9]{{1,{DECIMAL_FRACTION_DIGITS}}})?$",
            DECIMAL_INTEGER_DIGITS - 1
        ),
        "187.15",
    )
}
