//! The valuer: keeps `read_models.portfolio_valuations` current with the marks the prices
//! projection leaves (see [`super::valuations`]).
//!
//! One valuer works at a time across processes (a transaction-scoped advisory lock; the others
//! find it taken and rest). Each round holds the prices projection's swap lock shared, as a
//! live batch does, so a rebuild's swap never moves the marks under it: the marks a round takes
//! are the marks it deletes. A round reads and computes first, and writes only in its last few
//! statements, so it holds a transaction id (which the relay's horizon would wait on) for those
//! statements alone.
//!
//! Rounds come in two kinds. Spreading turns the oldest asset marks into marks of every
//! portfolio that traded the asset, in one statement. Valuing takes the oldest portfolios'
//! marks, up to [`PORTFOLIOS_PER_ROUND`] portfolios and [`DAYS_PER_ROUND`] days, values each
//! again from its earliest marked day, and stores the days.

use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::prices::Valuation;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::valuations::{computed, day_of, ValuationError};
use super::PricesProjection;
use crate::engine::Target;

/// The advisory lock (a `hashtextextended` key) that one valuer holds for each round.
pub const VALUER_LOCK: &str = "portfolio-valuer";

/// Asset marks one spreading round takes.
const ASSET_MARKS_PER_ROUND: i64 = 500;

/// Portfolios one valuing round values at most.
const PORTFOLIOS_PER_ROUND: i64 = 50;

/// Days one valuing round stores at most, but for its first portfolio (which goes alone if it
/// has more): a round stays short, so it neither holds a transaction id long nor keeps a
/// rebuild's swap waiting.
const DAYS_PER_ROUND: usize = 20_000;

/// How long the valuer rests when no mark is waiting.
const POLL: Duration = Duration::from_millis(250);

/// The longest rest after failed rounds.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Runs a spreading round and a valuing round, unless another valuer is at work. Returns how
/// many marks they took (none: nothing waits, or another valuer is at work).
///
/// # Errors
/// When the database fails; the marks of the failed round stay.
pub async fn revalue(pool: &PgPool) -> Result<usize, sqlx::Error> {
    Ok(spread(pool).await? + value(pool).await?)
}

/// Begins a round: the swap lock shared, then the valuer's lock, or `None` (rolled back) when
/// another valuer holds it.
async fn begin(pool: &PgPool) -> Result<Option<Transaction<'static, Postgres>>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    Target::live(&PricesProjection)
        .enter(&mut tx, PricesProjection::NAME)
        .await?;
    let ours: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(VALUER_LOCK)
        .fetch_one(&mut *tx)
        .await?;
    if ours {
        Ok(Some(tx))
    } else {
        tx.rollback().await?;
        Ok(None)
    }
}

/// Turns the oldest asset marks into marks of the portfolios that traded each asset, from the
/// same day. A trade committed after this statement's snapshot left a mark of its own.
async fn spread(pool: &PgPool) -> Result<usize, sqlx::Error> {
    let Some(mut tx) = begin(pool).await? else {
        return Ok(0);
    };
    let taken: i64 = sqlx::query_scalar(
        "WITH taken AS (
             DELETE FROM read_models.valuation_marks
              WHERE mark IN (SELECT mark FROM read_models.valuation_marks
                              WHERE asset_id IS NOT NULL ORDER BY mark LIMIT $1)
             RETURNING tenant_id, asset_id, from_day
         ), spread AS (
             INSERT INTO read_models.valuation_marks (tenant_id, portfolio_id, from_day)
             SELECT t.tenant_id, t.portfolio_id, min(taken.from_day)
               FROM taken
               JOIN read_models.portfolio_trades t
                 ON t.tenant_id = taken.tenant_id AND t.asset_id = taken.asset_id
              GROUP BY t.tenant_id, t.portfolio_id
         )
         SELECT count(*) FROM taken",
    )
    .bind(ASSET_MARKS_PER_ROUND)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(usize::try_from(taken).unwrap_or_default())
}

/// A portfolio's mark.
#[derive(sqlx::FromRow)]
struct Mark {
    mark: i64,
    tenant_id: String,
    portfolio_id: Uuid,
    from_day: DateTime<Utc>,
}

/// What a round found for one portfolio.
enum Outcome {
    /// Its days from `from` on, to store in place of those stored.
    Valued {
        from: DateTime<Utc>,
        days: Vec<(DateTime<Utc>, Valuation)>,
    },
    /// A day from `from` on is worth more than 28 digits hold: nothing is stored from then on,
    /// and a mark the valuer skips keeps queries computing those days.
    Unvaluable { from: DateTime<Utc> },
}

/// Values the portfolios of the oldest marks again and stores their days.
async fn value(pool: &PgPool) -> Result<usize, sqlx::Error> {
    let Some(mut tx) = begin(pool).await? else {
        return Ok(0);
    };
    // The portfolios of the oldest marks (read in the marks' order), then every mark of theirs.
    let (tenants, portfolios): (Vec<String>, Vec<Uuid>) = sqlx::query_as::<_, (String, Uuid)>(
        "SELECT tenant_id, portfolio_id
           FROM (SELECT mark, tenant_id, portfolio_id FROM read_models.valuation_marks
                  WHERE portfolio_id IS NOT NULL AND NOT unvaluable
                  ORDER BY mark LIMIT $1) AS oldest
          GROUP BY tenant_id, portfolio_id
          ORDER BY min(mark) LIMIT $2",
    )
    .bind(PORTFOLIOS_PER_ROUND * 10)
    .bind(PORTFOLIOS_PER_ROUND)
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .unzip();
    if tenants.is_empty() {
        tx.rollback().await?;
        return Ok(0);
    }
    let marks: Vec<Mark> = sqlx::query_as(
        "SELECT m.mark, m.tenant_id, m.portfolio_id, m.from_day
           FROM unnest($1::text[], $2::uuid[]) AS d(tenant_id, portfolio_id)
           JOIN read_models.valuation_marks m
             ON m.tenant_id = d.tenant_id AND m.portfolio_id = d.portfolio_id
          WHERE NOT m.unvaluable",
    )
    .bind(&tenants)
    .bind(&portfolios)
    .fetch_all(&mut *tx)
    .await?;
    // Each portfolio from its earliest marked day, until the round has [`DAYS_PER_ROUND`]
    // days to store; the marks of portfolios left out stay for the next round.
    let mut outcomes = Vec::new();
    let mut days = 0;
    for (tenant, portfolio) in tenants.into_iter().zip(portfolios) {
        if days >= DAYS_PER_ROUND {
            break;
        }
        let Some(from) = marks
            .iter()
            .filter(|mark| mark.tenant_id == tenant && mark.portfolio_id == portfolio)
            .map(|mark| mark.from_day)
            .min()
        else {
            continue;
        };
        let outcome = value_again(&mut tx, &tenant, portfolio, from).await?;
        if let Outcome::Valued { days: valued, .. } = &outcome {
            days += valued.len();
        }
        outcomes.push((tenant, portfolio, outcome));
    }
    let taken: Vec<&Mark> = marks
        .iter()
        .filter(|mark| {
            outcomes.iter().any(|(tenant, portfolio, _)| {
                mark.tenant_id == *tenant && mark.portfolio_id == *portfolio
            })
        })
        .collect();
    store(&mut tx, &taken, &outcomes).await?;
    tx.commit().await?;
    Ok(taken.len())
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

/// The portfolio's days from `from` on (or from an earlier day a round left unstored): one per
/// day from its first trade's day to the last day a trade or a daily close of an asset it
/// traded falls on. Past that day nothing changes, and queries carry the last value forward.
async fn value_again(
    connection: &mut PgConnection,
    tenant: &str,
    portfolio: Uuid,
    from: DateTime<Utc>,
) -> Result<Outcome, sqlx::Error> {
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
                             AND p.interval = $3
                           ORDER BY p.time DESC LIMIT 1) AS c)) AS last",
    )
    .bind(tenant)
    .bind(portfolio)
    .bind(domain::prices::Interval::Day.as_str())
    .fetch_one(&mut *connection)
    .await?;
    let from = bounds.unstored.map_or(from, |unstored| unstored.min(from));
    let (Some(first), Some(last)) = (bounds.first, bounds.last) else {
        return Ok(Outcome::Valued {
            from,
            days: Vec::new(),
        });
    };
    match computed(connection, tenant, portfolio, day_of(first).max(from), day_of(last)).await {
        Ok(days) => Ok(Outcome::Valued { from, days }),
        Err(ValuationError::TooLarge) => {
            tracing::warn!(
                tenant.id = tenant,
                portfolio.id = %portfolio,
                "a portfolio's value is beyond 28 digits; its days from then on are computed when asked"
            );
            Ok(Outcome::Unvaluable { from })
        }
        Err(ValuationError::Database(error)) => Err(error),
    }
}

/// Stores a round's outcomes and deletes the marks it took, in four statements: the stored
/// days from each portfolio's `from` are replaced, each valued portfolio's earlier unvaluable
/// mark is dropped, and each unvaluable one gets one at its `from`.
async fn store(
    connection: &mut PgConnection,
    marks: &[&Mark],
    outcomes: &[(String, Uuid, Outcome)],
) -> Result<(), sqlx::Error> {
    let (mut tenants, mut portfolios, mut froms) = (Vec::new(), Vec::new(), Vec::new());
    let mut unvaluable = (Vec::new(), Vec::new(), Vec::new());
    let (mut day_tenants, mut day_portfolios, mut days, mut values, mut flows) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (tenant, portfolio, outcome) in outcomes {
        let from = match outcome {
            Outcome::Valued { from, days: valued } => {
                for (day, valuation) in valued {
                    day_tenants.push(tenant.as_str());
                    day_portfolios.push(*portfolio);
                    days.push(*day);
                    values.push(valuation.value.to_string());
                    flows.push(valuation.flow.to_string());
                }
                *from
            }
            Outcome::Unvaluable { from } => {
                unvaluable.0.push(tenant.as_str());
                unvaluable.1.push(*portfolio);
                unvaluable.2.push(*from);
                *from
            }
        };
        tenants.push(tenant.as_str());
        portfolios.push(*portfolio);
        froms.push(from);
    }
    sqlx::query(
        "DELETE FROM read_models.portfolio_valuations v
          USING unnest($1::text[], $2::uuid[], $3::timestamptz[]) AS d(tenant_id, portfolio_id, from_day)
          WHERE v.tenant_id = d.tenant_id AND v.portfolio_id = d.portfolio_id
            AND v.day >= d.from_day",
    )
    .bind(&tenants)
    .bind(&portfolios)
    .bind(&froms)
    .execute(&mut *connection)
    .await?;
    sqlx::query(
        "INSERT INTO read_models.portfolio_valuations (tenant_id, portfolio_id, day, value, flow)
         SELECT d.tenant_id, d.portfolio_id, d.day, d.value::numeric, d.flow::numeric
           FROM unnest($1::text[], $2::uuid[], $3::timestamptz[], $4::text[], $5::text[])
                AS d(tenant_id, portfolio_id, day, value, flow)",
    )
    .bind(&day_tenants)
    .bind(&day_portfolios)
    .bind(&days)
    .bind(&values)
    .bind(&flows)
    .execute(&mut *connection)
    .await?;
    let taken: Vec<i64> = marks.iter().map(|mark| mark.mark).collect();
    sqlx::query(
        "DELETE FROM read_models.valuation_marks m
          WHERE m.mark = ANY($1)
             OR (m.unvaluable
                 AND (m.tenant_id, m.portfolio_id) IN
                     (SELECT * FROM unnest($2::text[], $3::uuid[])))",
    )
    .bind(&taken)
    .bind(&tenants)
    .bind(&portfolios)
    .execute(&mut *connection)
    .await?;
    sqlx::query(
        "INSERT INTO read_models.valuation_marks (tenant_id, portfolio_id, from_day, unvaluable)
         SELECT d.tenant_id, d.portfolio_id, d.from_day, true
           FROM unnest($1::text[], $2::uuid[], $3::timestamptz[]) AS d(tenant_id, portfolio_id, from_day)",
    )
    .bind(&unvaluable.0)
    .bind(&unvaluable.1)
    .bind(&unvaluable.2)
    .execute(&mut *connection)
    .await?;
    Ok(())
}

/// Marks waiting for the valuer (not those standing for unvaluable days), for metrics.
///
/// # Errors
/// When the database fails.
pub async fn pending_marks(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM read_models.valuation_marks WHERE NOT unvaluable")
        .fetch_one(pool)
        .await
}

/// Runs the valuer until `stop`: rounds while marks wait, a rest of [`POLL`] when none do (or
/// another process's valuer is at work). After a failed round it logs the error and rests
/// twice as long each time, up to [`MAX_BACKOFF`]; queries compute meanwhile.
pub async fn run_valuer(pool: PgPool, stop: CancellationToken) {
    let mut rest = POLL;
    loop {
        tokio::select! {
            biased;
            () = stop.cancelled() => return,
            () = tokio::time::sleep(rest) => {}
        }
        rest = match revalue(&pool).await {
            Ok(0) => POLL,
            Ok(_) => Duration::ZERO,
            Err(error) => {
                tracing::warn!(error = %error, "valuing portfolios failed; trying again");
                (rest.max(POLL) * 2).min(MAX_BACKOFF)
            }
        };
    }
}
