//! `stand-in-provider [ADDRESS] [API_KEY]`: the tests' stand-in for the market-data provider, on
//! its own, so imports can be tried without a provider account. It answers the TwelveData-style
//! `GET /time_series` for any symbol and interval with made-up bars (exact decimals, consistent
//! highs and lows) from 2024-01-01 until now. Defaults: `127.0.0.1:8091`, key `demo`.
#![allow(clippy::print_stderr, clippy::expect_used)]

use chrono::{TimeZone, Utc};
use tests::provider::StandInProvider;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let address = args.next().unwrap_or_else(|| "127.0.0.1:8091".to_owned());
    let key = args.next().unwrap_or_else(|| "demo".to_owned());
    let provider = StandInProvider::start_on(&address, &key).await;
    let first = Utc
        .with_ymd_and_hms(2024, 1, 1, 0, 0, 0)
        .single()
        .expect("a valid date");
    provider.serve_any_from(first);
    eprintln!(
        "stand-in provider on {} (key {key}): made-up bars of any symbol since {first}",
        provider.url
    );
    provider.serve_forever().await;
}
