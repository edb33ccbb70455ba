//! Portfolios' read models (each portfolio and its trades), and their holdings with realised
//! and unrealised gain as of a time, computed from the trades and the price history when asked
//! (daily valuations are stored: see [`super::valuations`]).

use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use domain::event::RecordedEvent;
use domain::identity::StreamId;
use domain::prices::{positions, Decimal, PortfolioEvent, Side, Trade};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::valuations;
use crate::engine::ApplyError;

/// Applies one `Portfolio` event.
///
/// # Errors
/// [`ApplyError`] when the event does not decode or the database fails.
pub(super) async fn apply(
    connection: &mut PgConnection,
    event: &RecordedEvent,
    stream: &StreamId,
) -> Result<(), ApplyError> {
    match ApplyError::decode::<PortfolioEvent>(event)? {
        PortfolioEvent::PortfolioOpened { name, currency, at } => {
            sqlx::query(
                "INSERT INTO portfolios
                    (tenant_id, portfolio_id, name, currency, trades, version, opened_at,
                     updated_at)
                 VALUES ($1, $2, $3, $4, 0, $5, $6, $6)",
            )
            .bind(&event.tenant_id)
            .bind(stream.id)
            .bind(name.as_str())
            .bind(currency.as_str())
            .bind(event.sequence)
            .bind(at)
            .execute(&mut *connection)
            .await?;
        }
        PortfolioEvent::TradeRecorded { trade, at } => {
            sqlx::query(
                "WITH trade AS (
                     INSERT INTO portfolio_trades
                        (tenant_id, portfolio_id, trade_id, asset_id, side, quantity, price,
                         time, recorded_at)
                     VALUES ($1, $2, $3, $4, $5, $6::numeric, $7::numeric, $8, $9)
                 )
                 UPDATE portfolios SET trades = trades + 1, version = $10, updated_at = $9
                  WHERE tenant_id = $1 AND portfolio_id = $2",
            )
            .bind(&event.tenant_id)
            .bind(stream.id)
            .bind(trade.id)
            .bind(trade.asset)
            .bind(side_name(trade.side))
            .bind(trade.quantity.to_string())
            .bind(trade.price.to_string())
            .bind(trade.time)
            .bind(at)
            .bind(event.sequence)
            .execute(&mut *connection)
            .await?;
            valuations::mark_portfolio(connection, &event.tenant_id, stream.id, trade.time)
                .await?;
        }
    }
    Ok(())
}

fn side_name(side: Side) -> &'static str {
    match side {
        Side::Buy => "buy",
        Side::Sell => "sell",
    }
}

/// A portfolio.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PortfolioView {
    /// Its id.
    pub portfolio_id: Uuid,
    /// Its name.
    pub name: String,
    /// Its currency.
    pub currency: String,
    /// Trades recorded.
    pub trades: i32,
    /// The stream's version.
    pub version: i64,
    /// When it was opened.
    pub opened_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// One of `tenant`'s portfolios.
///
/// # Errors
/// When the database fails.
pub async fn get_portfolio(
    pool: &PgPool,
    tenant: &str,
    portfolio: Uuid,
) -> Result<Option<PortfolioView>, sqlx::Error> {
    sqlx::query_as(
        "SELECT portfolio_id, name, currency, trades, version, opened_at, updated_at
           FROM read_models.portfolios WHERE tenant_id = $1 AND portfolio_id = $2",
    )
    .bind(tenant)
    .bind(portfolio)
    .fetch_optional(pool)
    .await
}

/// The portfolio's trades executed before `before` (all of them without it), in time order.
pub(super) async fn trades(
    connection: &mut PgConnection,
    tenant: &str,
    portfolio: Uuid,
    before: Option<DateTime<Utc>>,
) -> Result<Vec<Trade>, sqlx::Error> {
    let rows: Vec<(Uuid, Uuid, String, String, String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT trade_id, asset_id, side, quantity::text, price::text, time
           FROM read_models.portfolio_trades
          WHERE tenant_id = $1 AND portfolio_id = $2 AND ($3::timestamptz IS NULL OR time < $3)
          ORDER BY time, trade_id",
    )
    .bind(tenant)
    .bind(portfolio)
    .bind(before)
    .fetch_all(connection)
    .await?;
    rows.into_iter()
        .map(|(id, asset, side, quantity, price, time)| {
            Ok(Trade {
                id,
                asset,
                side: if side == "sell" { Side::Sell } else { Side::Buy },
                quantity: decimal(&quantity)?,
                price: decimal(&price)?,
                time,
            })
        })
        .collect()
}

pub(super) fn decimal(text: &str) -> Result<Decimal, sqlx::Error> {
    Decimal::from_str(text).map_err(|error| sqlx::Error::Decode(Box::new(error)))
}

/// The last daily close of each of `assets` by `at`: of the last daily bar that ended by then
/// (a daily bar starting on day d closes at the end of day d).
async fn closes_at(
    connection: &mut PgConnection,
    tenant: &str,
    assets: &[Uuid],
    at: DateTime<Utc>,
) -> Result<BTreeMap<Uuid, Decimal>, sqlx::Error> {
    let rows: Vec<(Uuid, String)> = sqlx::query_as(
        "SELECT a.asset_id, c.close::text
           FROM unnest($2::uuid[]) AS a(asset_id)
           CROSS JOIN LATERAL (
                SELECT close FROM read_models.price_bars p
                 WHERE p.tenant_id = $1 AND p.asset_id = a.asset_id AND p.interval = '1day'
                   AND p.time <= $3 - interval '1 day'
                 ORDER BY p.time DESC
                 LIMIT 1
           ) AS c",
    )
    .bind(tenant)
    .bind(assets)
    .bind(at)
    .fetch_all(connection)
    .await?;
    rows.into_iter()
        .map(|(asset, close)| Ok((asset, decimal(&close)?)))
        .collect()
}

/// One asset's holding as of a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldingView {
    /// The asset.
    pub asset_id: Uuid,
    /// The quantity held.
    pub quantity: Decimal,
    /// What it cost (average cost).
    pub cost: Decimal,
    /// Gains taken by selling.
    pub realised: Decimal,
    /// The close of the last daily bar that ended by the time, if there is one.
    pub price: Option<Decimal>,
    /// The holding at that price.
    pub value: Option<Decimal>,
    /// The gain not taken yet at that price.
    pub unrealised: Option<Decimal>,
}

/// The portfolio's holdings as of `at` (trades before it, the daily closes by then), by asset.
///
/// # Errors
/// When the database fails.
pub async fn holdings(
    pool: &PgPool,
    tenant: &str,
    portfolio: Uuid,
    at: DateTime<Utc>,
) -> Result<Vec<HoldingView>, sqlx::Error> {
    let mut connection = pool.acquire().await?;
    let trades = trades(&mut connection, tenant, portfolio, Some(at)).await?;
    let positions = positions(&trades);
    let assets: Vec<Uuid> = positions.keys().copied().collect();
    let closes = closes_at(&mut connection, tenant, &assets, at).await?;
    Ok(positions
        .into_iter()
        .map(|(asset, position)| {
            let price = closes.get(&asset).copied();
            HoldingView {
                asset_id: asset,
                quantity: position.quantity,
                cost: position.cost,
                realised: position.realised,
                price,
                value: price.and_then(|price| position.quantity.checked_mul(price)),
                unrealised: price.and_then(|price| position.unrealised(price)),
            }
        })
        .collect())
}
