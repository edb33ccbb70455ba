//! Portfolios' daily valuations: computed from the trades and daily closes, stored as a read
//! model by the valuer ([`super::valuer`]), and served from the store unless a change is still
//! on its way to it.
//!
//! Every input the prices projection applies leaves a mark in the same transaction (a trade
//! marks its portfolio, daily bars recorded or corrected mark their asset), each naming the
//! first day that may have changed: a day's value depends only on trades and closes dated on
//! or before it. The valuer takes marks in order, values every portfolio they reach again from
//! the earliest such day, and deletes exactly the marks it took in the transaction that stores
//! the days: a mark written while it worked stays for its next round, and whatever a taken
//! mark stands for was committed before the valuer read the trades and bars. A query reads the
//! stored days when no mark for the portfolio or an asset it traded is pending for a day of
//! its range, and computes them from the trades and bars as they stand otherwise, so an answer
//! is always as current as the read models it comes from.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, DurationRound, Utc};
use domain::prices::{trade_order, Decimal, Interval, Position, Valuation};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::portfolios::{decimal, trades};

/// The UTC midnight that starts `time`'s day. Truncating to a whole day fails only beyond
/// chrono's range, far past the years the API accepts; such a time stays as it is.
pub(super) fn day_of(time: DateTime<Utc>) -> DateTime<Utc> {
    time.duration_trunc(Duration::days(1)).unwrap_or(time)
}

/// Marks `portfolio` for valuing again from the day of `time` (a trade was recorded).
pub(super) async fn mark_portfolio(
    connection: &mut PgConnection,
    tenant: &str,
    portfolio: Uuid,
    time: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO valuation_marks (tenant_id, portfolio_id, from_day) VALUES ($1, $2, $3)",
    )
    .bind(tenant)
    .bind(portfolio)
    .bind(day_of(time))
    .execute(connection)
    .await?;
    Ok(())
}

/// Marks the asset of `series` for valuing again from the day of `first` (its bars from then on
/// were recorded or corrected), when the series is daily: valuations use daily closes only.
pub(super) async fn mark_series(
    connection: &mut PgConnection,
    tenant: &str,
    series: Uuid,
    first: Option<DateTime<Utc>>,
) -> Result<(), sqlx::Error> {
    let Some(first) = first else { return Ok(()) };
    sqlx::query(
        "INSERT INTO valuation_marks (tenant_id, asset_id, from_day)
         SELECT tenant_id, asset_id, $3 FROM price_series
          WHERE tenant_id = $1 AND series_id = $2 AND interval = $4",
    )
    .bind(tenant)
    .bind(series)
    .bind(day_of(first))
    .bind(Interval::Day.as_str())
    .execute(connection)
    .await?;
    Ok(())
}

/// Why a portfolio could not be valued.
#[derive(Debug, thiserror::Error)]
pub enum ValuationError {
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// A day's value is beyond what 28 significant digits hold: an error, never a wrong number.
    #[error("the portfolio's value on a day of the range is beyond 28 significant digits")]
    TooLarge,
}

/// The portfolio's value at the end of each day from `first` to `last` (UTC midnights, both
/// included), computed from its trades and the daily closes: holdings at each asset's last
/// daily close, or its last trade price while it has no close yet, and the cash each day's
/// trades put in. One pass over the days and the trades.
pub(super) async fn computed(
    connection: &mut PgConnection,
    tenant: &str,
    portfolio: Uuid,
    first: DateTime<Utc>,
    last: DateTime<Utc>,
) -> Result<Vec<(DateTime<Utc>, Valuation)>, ValuationError> {
    // In time order (then by id), as the last trade price and the day's flows read them.
    let trades = trades(&mut *connection, tenant, portfolio, Some(last + Duration::days(1))).await?;
    let mut applied: Vec<_> = trades.iter().collect();
    applied.sort_by_key(|trade| trade_order(trade));
    let mut assets: Vec<Uuid> = trades.iter().map(|trade| trade.asset).collect();
    assets.sort_unstable();
    assets.dedup();
    // Each asset's daily closes the days need, read once: the last one by the first day, and
    // every one after it up to the last day (one index range scan per asset).
    let rows: Vec<(Uuid, DateTime<Utc>, String)> = sqlx::query_as(
        "SELECT a.asset_id, b.time, b.close::text
           FROM unnest($2::uuid[]) AS a(asset_id)
           CROSS JOIN LATERAL (
                (SELECT time, close FROM read_models.price_bars p
                  WHERE p.tenant_id = $1 AND p.asset_id = a.asset_id AND p.interval = $5
                    AND p.time <= $3
                  ORDER BY p.time DESC
                  LIMIT 1)
                UNION ALL
                (SELECT time, close FROM read_models.price_bars p
                  WHERE p.tenant_id = $1 AND p.asset_id = a.asset_id AND p.interval = $5
                    AND p.time > $3 AND p.time <= $4)
           ) AS b",
    )
    .bind(tenant)
    .bind(&assets)
    .bind(first)
    .bind(last)
    .bind(Interval::Day.as_str())
    .fetch_all(&mut *connection)
    .await?;
    let mut closes: BTreeMap<Uuid, BTreeMap<DateTime<Utc>, Decimal>> = BTreeMap::new();
    for (asset, time, close) in rows {
        closes.entry(asset).or_default().insert(time, decimal(&close)?);
    }
    let mut held: BTreeMap<Uuid, Position> = BTreeMap::new();
    let mut traded_at: BTreeMap<Uuid, Decimal> = BTreeMap::new();
    let (mut next_applied, mut next_traded) = (0, 0);
    let mut series = Vec::new();
    let mut day = first;
    while day <= last {
        let end = day + Duration::days(1);
        while let Some(trade) = applied.get(next_applied).filter(|t| t.time < end) {
            held.entry(trade.asset).or_default().apply(trade);
            next_applied += 1;
        }
        let mut flow = Decimal::ZERO;
        while let Some(trade) = trades.get(next_traded).filter(|t| t.time < end) {
            traded_at.insert(trade.asset, trade.price);
            if trade.time >= day {
                flow = trade
                    .signed_quantity()
                    .checked_mul(trade.price)
                    .and_then(|cash| flow.checked_add(cash))
                    .ok_or(ValuationError::TooLarge)?;
            }
            next_traded += 1;
        }
        let mut value = Decimal::ZERO;
        for (asset, position) in &held {
            // The close of the last daily bar that started by this day (it ends with the day).
            let closed = closes
                .get(asset)
                .and_then(|bars| bars.range(..=day).next_back())
                .map(|(_, close)| *close);
            let price = closed
                .or_else(|| traded_at.get(asset).copied())
                .unwrap_or_default();
            value = position
                .quantity
                .checked_mul(price)
                .and_then(|worth| value.checked_add(worth))
                .ok_or(ValuationError::TooLarge)?;
        }
        series.push((day, Valuation { value, flow }));
        day = end;
    }
    Ok(series)
}

/// The stored days from `first` to `last`: a day past the last stored one (no trade and no
/// close since) keeps its value with no flow, a day before the first (no trade yet) is zero.
async fn stored(
    connection: &mut PgConnection,
    tenant: &str,
    portfolio: Uuid,
    first: DateTime<Utc>,
    last: DateTime<Utc>,
) -> Result<Vec<(DateTime<Utc>, Valuation)>, sqlx::Error> {
    let rows: Vec<(DateTime<Utc>, String, String)> = sqlx::query_as(
        "(SELECT day, value::text, '0' FROM read_models.portfolio_valuations
           WHERE tenant_id = $1 AND portfolio_id = $2 AND day < $3
           ORDER BY day DESC LIMIT 1)
         UNION ALL
         (SELECT day, value::text, flow::text FROM read_models.portfolio_valuations
           WHERE tenant_id = $1 AND portfolio_id = $2 AND day >= $3 AND day <= $4
           ORDER BY day)",
    )
    .bind(tenant)
    .bind(portfolio)
    .bind(first)
    .bind(last)
    .fetch_all(&mut *connection)
    .await?;
    let mut days = BTreeMap::new();
    for (day, value, flow) in rows {
        days.insert(day, (decimal(&value)?, decimal(&flow)?));
    }
    let mut carried = days
        .range(..first)
        .next_back()
        .map_or(Decimal::ZERO, |(_, (value, _))| *value);
    let mut series = Vec::new();
    let mut day = first;
    while day <= last {
        let valuation = match days.get(&day) {
            Some(&(value, flow)) => Valuation { value, flow },
            None => Valuation {
                value: carried,
                flow: Decimal::ZERO,
            },
        };
        carried = valuation.value;
        series.push((day, valuation));
        day += Duration::days(1);
    }
    Ok(series)
}

/// Whether a mark for `portfolio` or any asset it traded, from a day by `last`, waits for the
/// valuer (or stands for days the valuer could not store): the stored days by `last` may
/// differ from the computed ones only then.
async fn pending(
    connection: &mut PgConnection,
    tenant: &str,
    portfolio: Uuid,
    last: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (
             SELECT 1 FROM read_models.valuation_marks
              WHERE tenant_id = $1 AND portfolio_id = $2 AND from_day <= $3
             UNION ALL
             SELECT 1 FROM read_models.valuation_marks m
              WHERE m.tenant_id = $1 AND m.from_day <= $3
                AND m.asset_id IN (SELECT asset_id FROM read_models.portfolio_trades
                                    WHERE tenant_id = $1 AND portfolio_id = $2))",
    )
    .bind(tenant)
    .bind(portfolio)
    .bind(last)
    .fetch_one(connection)
    .await
}

/// Where valuations came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Valued {
    /// The stored read model, current with the trades and bars.
    Stored,
    /// Computed from the trades and bars, because the valuer had not caught up with them.
    Computed,
}

/// The portfolio's value at the end of each day of `[from, to)` (UTC midnights), with the cash
/// the day's trades put in; the first entry is the day before `from`, the base of the first
/// day's return, and carries no flow.
///
/// # Errors
/// [`ValuationError`].
pub async fn daily_valuations(
    pool: &PgPool,
    tenant: &str,
    portfolio: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<(Valued, Vec<(DateTime<Utc>, Valuation)>), ValuationError> {
    // One snapshot for the check and the days: a valuer's round committed in between would
    // otherwise be read without the marks written after its reads.
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    let (first, last) = (from - Duration::days(1), to - Duration::days(1));
    let (valued, mut series) = if pending(&mut tx, tenant, portfolio, last).await? {
        let series = computed(&mut tx, tenant, portfolio, first, last).await?;
        (Valued::Computed, series)
    } else {
        let series = stored(&mut tx, tenant, portfolio, first, last).await?;
        (Valued::Stored, series)
    };
    tx.commit().await?;
    if let Some((_, base)) = series.first_mut() {
        base.flow = Decimal::ZERO;
    }
    Ok((valued, series))
}
