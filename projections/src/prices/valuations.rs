//! Portfolios' daily valuations: computed from the trades and daily closes, stored as a read
//! model by the valuer, and served from the store unless a change is still on its way to it.
//!
//! Every input the prices projection applies leaves a mark in the same transaction (a trade
//! marks its portfolio, daily bars recorded or corrected mark their asset), each naming the
//! first day that may have changed. The valuer takes marks in order, values every portfolio
//! they reach again from the earliest such day, and deletes exactly the marks it took, all in
//! one transaction: a mark written while it worked stays for its next round, and whatever a
//! taken mark stands for was committed before the valuer read the trades and bars. A query
//! reads the stored days when no mark for the portfolio or any asset it traded is pending, and
//! computes them from the trades and bars as they stand otherwise, so an answer never lags the
//! read models it comes from.

use std::collections::BTreeMap;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, DurationRound, Utc};
use domain::prices::{positions, Decimal, Valuation};
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::portfolios::{decimal, trades};

/// The UTC midnight that starts `time`'s day.
fn day_of(time: DateTime<Utc>) -> DateTime<Utc> {
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
          WHERE tenant_id = $1 AND series_id = $2 AND interval = '1day'",
    )
    .bind(tenant)
    .bind(series)
    .bind(day_of(first))
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
/// trades put in. A value beyond 28 digits is an error, not a wrong number.
async fn computed(
    connection: &mut PgConnection,
    tenant: &str,
    portfolio: Uuid,
    first: DateTime<Utc>,
    last: DateTime<Utc>,
) -> Result<Vec<(DateTime<Utc>, Valuation)>, ValuationError> {
    let end = last + Duration::days(1);
    let trades = trades(&mut *connection, tenant, portfolio, Some(end)).await?;
    let assets: Vec<Uuid> = positions(&trades).keys().copied().collect();
    // Each asset's daily closes the days need, read once: the last one by the first day, and
    // every one after it up to the last day (one index range scan per asset).
    let rows: Vec<(Uuid, DateTime<Utc>, String)> = sqlx::query_as(
        "SELECT a.asset_id, b.time, b.close::text
           FROM unnest($2::uuid[]) AS a(asset_id)
           CROSS JOIN LATERAL (
                (SELECT time, close FROM read_models.price_bars p
                  WHERE p.tenant_id = $1 AND p.asset_id = a.asset_id AND p.interval = '1day'
                    AND p.time <= $3
                  ORDER BY p.time DESC
                  LIMIT 1)
                UNION ALL
                (SELECT time, close FROM read_models.price_bars p
                  WHERE p.tenant_id = $1 AND p.asset_id = a.asset_id AND p.interval = '1day'
                    AND p.time > $3 AND p.time <= $4)
           ) AS b",
    )
    .bind(tenant)
    .bind(&assets)
    .bind(first)
    .bind(last)
    .fetch_all(&mut *connection)
    .await?;
    let mut closes: BTreeMap<Uuid, BTreeMap<DateTime<Utc>, Decimal>> = BTreeMap::new();
    for (asset, time, close) in rows {
        closes.entry(asset).or_default().insert(time, decimal(&close)?);
    }
    let mut series = Vec::new();
    let mut day = first;
    while day <= last {
        let end = day + Duration::days(1);
        let held = positions(&trades.iter().filter(|t| t.time < end).copied().collect::<Vec<_>>());
        let mut value = Decimal::ZERO;
        for (asset, position) in &held {
            // The close of the last daily bar that started by this day (it ends with the day).
            let closed = || {
                closes
                    .get(asset)
                    .and_then(|bars| bars.range(..=day).next_back())
                    .map(|(_, close)| *close)
            };
            let traded = || {
                trades
                    .iter()
                    .rfind(|t| t.asset == *asset && t.time < end)
                    .map(|t| t.price)
            };
            let price = closed().or_else(traded).unwrap_or_default();
            value = position
                .quantity
                .checked_mul(price)
                .and_then(|worth| value.checked_add(worth))
                .ok_or(ValuationError::TooLarge)?;
        }
        let mut flow = Decimal::ZERO;
        for t in trades.iter().filter(|t| t.time >= day && t.time < end) {
            flow = t
                .signed_quantity()
                .checked_mul(t.price)
                .and_then(|cash| flow.checked_add(cash))
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

/// Whether a mark for `portfolio` or any asset it traded waits for the valuer (or the valuer
/// could not value the portfolio at all).
async fn pending(
    connection: &mut PgConnection,
    tenant: &str,
    portfolio: Uuid,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (
             SELECT 1 FROM read_models.valuation_marks
              WHERE tenant_id = $1 AND portfolio_id = $2
             UNION ALL
             SELECT 1 FROM read_models.valuation_marks m
              WHERE m.tenant_id = $1
                AND m.asset_id IN (SELECT asset_id FROM read_models.portfolio_trades
                                    WHERE tenant_id = $1 AND portfolio_id = $2))",
    )
    .bind(tenant)
    .bind(portfolio)
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
    let mut connection = pool.acquire().await?;
    let (first, last) = (from - Duration::days(1), to - Duration::days(1));
    let (valued, mut series) = if pending(&mut connection, tenant, portfolio).await? {
        let series = computed(&mut connection, tenant, portfolio, first, last).await?;
        (Valued::Computed, series)
    } else {
        let series = stored(&mut connection, tenant, portfolio, first, last).await?;
        (Valued::Stored, series)
    };
    if let Some((_, base)) = series.first_mut() {
        base.flow = Decimal::ZERO;
    }
    Ok((valued, series))
}

/// How many marks the valuer takes in one transaction.
const MARKS_PER_ROUND: i64 = 200;

/// How long the valuer rests when no mark is waiting.
const POLL: StdDuration = StdDuration::from_millis(250);

/// A change waiting for the valuer.
#[derive(sqlx::FromRow)]
struct Mark {
    mark: i64,
    tenant_id: String,
    portfolio_id: Option<Uuid>,
    asset_id: Option<Uuid>,
    from_day: DateTime<Utc>,
}

/// What bounds a portfolio's stored days.
#[derive(sqlx::FromRow)]
struct Bounds {
    /// The first day an earlier round left unstored (the portfolio was unvaluable then).
    unstored: Option<DateTime<Utc>>,
    /// The first trade's time.
    first: Option<DateTime<Utc>>,
    /// The last trade's or daily close's time.
    last: Option<DateTime<Utc>>,
}

/// Values portfolios again for the oldest marks, up to [`MARKS_PER_ROUND`] of them, unless
/// another valuer is at work. Returns how many marks it took.
///
/// # Errors
/// When the database fails, or a value is beyond 28 digits (the marks stay).
pub async fn revalue(pool: &PgPool) -> Result<usize, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let ours: bool = sqlx::query_scalar(
        "SELECT pg_try_advisory_xact_lock(hashtextextended('portfolio-valuer', 0))",
    )
    .fetch_one(&mut *tx)
    .await?;
    if !ours {
        return Ok(0);
    }
    let marks: Vec<Mark> = sqlx::query_as(
        "SELECT mark, tenant_id, portfolio_id, asset_id, from_day
           FROM read_models.valuation_marks WHERE NOT unvaluable ORDER BY mark LIMIT $1",
    )
    .bind(MARKS_PER_ROUND)
    .fetch_all(&mut *tx)
    .await?;
    if marks.is_empty() {
        return Ok(0);
    }
    // The portfolios to value again, each from its earliest marked day: those marked, and
    // every one that traded a marked asset.
    let mut due: BTreeMap<(String, Uuid), DateTime<Utc>> = BTreeMap::new();
    let mut assets = (Vec::new(), Vec::new(), Vec::new());
    for mark in &marks {
        if let Some(portfolio) = mark.portfolio_id {
            let day = due.entry((mark.tenant_id.clone(), portfolio)).or_insert(mark.from_day);
            *day = (*day).min(mark.from_day);
        } else if let Some(asset) = mark.asset_id {
            assets.0.push(mark.tenant_id.clone());
            assets.1.push(asset);
            assets.2.push(mark.from_day);
        }
    }
    let holders: Vec<(String, Uuid, DateTime<Utc>)> = sqlx::query_as(
        "SELECT DISTINCT t.tenant_id, t.portfolio_id, m.from_day
           FROM unnest($1::text[], $2::uuid[], $3::timestamptz[]) AS m(tenant_id, asset_id, from_day)
           JOIN read_models.portfolio_trades t
             ON t.tenant_id = m.tenant_id AND t.asset_id = m.asset_id",
    )
    .bind(&assets.0)
    .bind(&assets.1)
    .bind(&assets.2)
    .fetch_all(&mut *tx)
    .await?;
    for (tenant, portfolio, from) in holders {
        let day = due.entry((tenant, portfolio)).or_insert(from);
        *day = (*day).min(from);
    }
    for ((tenant, portfolio), from) in &due {
        match value_again(&mut tx, tenant, *portfolio, *from).await {
            Ok(()) => {}
            Err(ValuationError::TooLarge) => unvaluable(&mut tx, tenant, *portfolio, *from).await?,
            Err(ValuationError::Database(error)) => return Err(error),
        }
    }
    let taken: Vec<i64> = marks.iter().map(|mark| mark.mark).collect();
    sqlx::query("DELETE FROM read_models.valuation_marks WHERE mark = ANY($1)")
        .bind(&taken)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(marks.len())
}

/// Leaves a portfolio whose value is beyond 28 digits from `from` on without stored days from
/// then, and with a mark the valuer skips: queries compute its days (and answer the error)
/// until a later trade or bar makes it valuable again.
async fn unvaluable(
    connection: &mut PgConnection,
    tenant: &str,
    portfolio: Uuid,
    from: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    tracing::warn!(tenant, %portfolio, "a portfolio's value is beyond 28 digits; its days are computed when asked");
    sqlx::query(
        "WITH cleared AS (
             DELETE FROM read_models.portfolio_valuations
              WHERE tenant_id = $1 AND portfolio_id = $2 AND day >= $3
         )
         INSERT INTO read_models.valuation_marks (tenant_id, portfolio_id, from_day, unvaluable)
         VALUES ($1, $2, $3, true)",
    )
    .bind(tenant)
    .bind(portfolio)
    .bind(from)
    .execute(connection)
    .await?;
    Ok(())
}

/// Replaces the portfolio's stored days from `from` on: one per day from its first trade's day
/// (or `from`, if later) to the last day a trade or a daily close of an asset it traded falls
/// on. Past that day nothing changes, and [`stored`] carries the last value forward. A
/// portfolio valued is no longer unvaluable.
async fn value_again(
    connection: &mut PgConnection,
    tenant: &str,
    portfolio: Uuid,
    from: DateTime<Utc>,
) -> Result<(), ValuationError> {
    let bounds: Bounds = sqlx::query_as(
        "SELECT (SELECT min(from_day) FROM read_models.valuation_marks
                  WHERE tenant_id = $1 AND portfolio_id = $2 AND unvaluable) AS unstored,
                (SELECT min(time) FROM read_models.portfolio_trades
                  WHERE tenant_id = $1 AND portfolio_id = $2) AS first,
                greatest(
                  (SELECT max(time) FROM read_models.portfolio_trades
                    WHERE tenant_id = $1 AND portfolio_id = $2),
                  (SELECT max(c.time)
                     FROM (SELECT DISTINCT asset_id FROM read_models.portfolio_trades
                            WHERE tenant_id = $1 AND portfolio_id = $2) AS a
                     CROSS JOIN LATERAL (
                          SELECT time FROM read_models.price_bars p
                           WHERE p.tenant_id = $1 AND p.asset_id = a.asset_id
                             AND p.interval = '1day'
                           ORDER BY p.time DESC LIMIT 1) AS c)) AS last",
    )
    .bind(tenant)
    .bind(portfolio)
    .fetch_one(&mut *connection)
    .await?;
    // Days an earlier round left unstored are due again too.
    let from = bounds.unstored.map_or(from, |unstored| unstored.min(from));
    let days = match (bounds.first, bounds.last) {
        (Some(first), Some(last)) => {
            let first = day_of(first).max(from);
            computed(&mut *connection, tenant, portfolio, first, day_of(last)).await?
        }
        _ => Vec::new(),
    };
    let (mut times, mut values, mut flows) = (Vec::new(), Vec::new(), Vec::new());
    for (day, valuation) in &days {
        times.push(*day);
        values.push(valuation.value.to_string());
        flows.push(valuation.flow.to_string());
    }
    sqlx::query(
        "WITH valuable AS (
             DELETE FROM read_models.valuation_marks
              WHERE tenant_id = $1 AND portfolio_id = $2 AND unvaluable
         )
         DELETE FROM read_models.portfolio_valuations
          WHERE tenant_id = $1 AND portfolio_id = $2 AND day >= $3",
    )
    .bind(tenant)
    .bind(portfolio)
    .bind(from)
    .execute(&mut *connection)
    .await?;
    sqlx::query(
        "INSERT INTO read_models.portfolio_valuations (tenant_id, portfolio_id, day, value, flow)
         SELECT $1, $2, d.day, d.value::numeric, d.flow::numeric
           FROM unnest($3::timestamptz[], $4::text[], $5::text[]) AS d(day, value, flow)",
    )
    .bind(tenant)
    .bind(portfolio)
    .bind(&times)
    .bind(&values)
    .bind(&flows)
    .execute(&mut *connection)
    .await?;
    Ok(())
}

/// Marks waiting for the valuer, for metrics.
///
/// # Errors
/// When the database fails.
pub async fn pending_marks(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM read_models.valuation_marks")
        .fetch_one(pool)
        .await
}

/// Runs the valuer until `stop`: a round whenever marks wait, a rest of [`POLL`] when none do
/// (or another process's valuer is at work). A failed round is logged and tried again.
pub async fn run_valuer(pool: PgPool, stop: CancellationToken) {
    let mut ticks = tokio::time::interval(POLL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = ticks.tick() => {}
        }
        loop {
            match revalue(&pool).await {
                Ok(0) => break,
                Ok(_) if stop.is_cancelled() => return,
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(error = %error, "valuing portfolios failed; trying again");
                    break;
                }
            }
        }
    }
}
