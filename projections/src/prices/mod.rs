//! The asset-prices read models: assets, each bar's current values (partitioned by time), and
//! every correction with the values it replaced.

use domain::event::RecordedEvent;
use domain::identity::StreamId;
use domain::prices::{AssetEvent, Correction, PriceSeriesEvent, Reported};
use sqlx::PgConnection;

use crate::engine::{ApplyError, Projection};

mod imports;
pub mod live;
mod portfolios;
mod queries;
mod valuations;
mod valuer;

pub use imports::{get_import, list_imports, schedules, ImportView, ScheduleView};
pub use portfolios::{get_portfolio, holdings, HoldingView, PortfolioView};
pub use queries::{
    aggregate, bars, corrections, get_asset, latest, list_assets, AggregateView, AssetView, BarView,
    CorrectionView, LatestView, Period, Range,
};
pub use valuations::{daily_valuations, ValuationError, Valued};
pub use valuer::{pending_marks, revalue, run_valuer, VALUER_LOCK};

/// Builds `read_models.price_*`.
#[derive(Debug, Clone, Copy, Default)]
pub struct PricesProjection;

impl PricesProjection {
    /// The projection's stable name.
    pub const NAME: &'static str = "prices";
}

impl Projection for PricesProjection {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn version(&self) -> u32 {
        // 2: import runs; 3: refresh schedules and portfolios.
        3
    }

    fn aggregate_types(&self) -> &'static [&'static str] {
        &[
            "Asset",
            "PriceSeries",
            "PriceImport",
            "RefreshSchedule",
            "Portfolio",
        ]
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            "price_assets",
            "price_series",
            "price_bars",
            "price_corrections",
            "price_imports",
            "price_refresh_schedules",
            "portfolios",
            "portfolio_trades",
            // Not `portfolio_valuations`: the valuer keeps it. A rebuild's marks value every
            // portfolio again; queries compute the days until they are stored.
            "valuation_marks",
        ]
    }

    async fn apply(
        &self,
        connection: &mut PgConnection,
        event: &RecordedEvent,
    ) -> Result<(), ApplyError> {
        let stream: StreamId = event
            .aggregate_id
            .parse()
            .map_err(|_| ApplyError::Inconsistent(format!("stream id {:?}", event.aggregate_id)))?;
        match event.aggregate_type.as_str() {
            "Asset" => return apply_asset(connection, event, &stream).await,
            "PriceImport" => return imports::apply(connection, event, &stream).await,
            "RefreshSchedule" => return imports::apply_schedule(connection, event).await,
            "Portfolio" => return portfolios::apply(connection, event, &stream).await,
            _ => {}
        }
        match ApplyError::decode::<PriceSeriesEvent>(event)? {
            PriceSeriesEvent::SeriesStarted { key, .. } => {
                sqlx::query(
                    "INSERT INTO price_series (tenant_id, series_id, asset_id, interval, period)
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&event.tenant_id)
                .bind(stream.id)
                .bind(key.asset)
                .bind(key.interval.as_str())
                .bind(key.period)
                .execute(connection)
                .await?;
            }
            PriceSeriesEvent::BarsRecorded { bars, at, .. } => {
                let columns = Columns::of(bars.iter().map(|Reported { time, bar }| (*time, bar)));
                let inserted = sqlx::query(
                    "INSERT INTO price_bars
                        (tenant_id, asset_id, interval, time, open, high, low, close, volume,
                         corrections, recorded_at, updated_at)
                     SELECT s.tenant_id, s.asset_id, s.interval, b.time, b.open::numeric,
                            b.high::numeric, b.low::numeric, b.close::numeric, b.volume::numeric,
                            0, $8, $8
                       FROM price_series s,
                            unnest($3::timestamptz[], $4::text[], $5::text[], $6::text[],
                                   $7::text[], $9::text[]) AS b(time, open, high, low, close, volume)
                      WHERE s.tenant_id = $1 AND s.series_id = $2",
                )
                .bind(&event.tenant_id)
                .bind(stream.id)
                .bind(&columns.times)
                .bind(&columns.open)
                .bind(&columns.high)
                .bind(&columns.low)
                .bind(&columns.close)
                .bind(at)
                .bind(&columns.volume)
                .execute(&mut *connection)
                .await?;
                if inserted.rows_affected() != bars.len() as u64 {
                    return Err(ApplyError::Inconsistent(format!(
                        "bars of series {} that never started",
                        stream.id
                    )));
                }
                let first = columns.times.iter().min().copied();
                valuations::mark_series(connection, &event.tenant_id, stream.id, first).await?;
            }
            PriceSeriesEvent::BarsCorrected {
                corrections,
                source,
                at,
            } => {
                let columns =
                    Columns::of(corrections.iter().map(|Correction { time, bar, .. }| (*time, bar)));
                let previous: Vec<serde_json::Value> = corrections
                    .iter()
                    .map(|correction| serde_json::json!(correction.previous))
                    .collect();
                let bars: Vec<serde_json::Value> = corrections
                    .iter()
                    .map(|correction| serde_json::json!(correction.bar))
                    .collect();
                let updated = sqlx::query(
                    "WITH c AS (
                        SELECT s.tenant_id, s.asset_id, s.interval, b.*
                          FROM price_series s,
                               unnest($3::timestamptz[], $4::text[], $5::text[], $6::text[],
                                      $7::text[], $8::text[], $9::jsonb[], $10::jsonb[])
                               AS b(time, open, high, low, close, volume, previous, bar)
                         WHERE s.tenant_id = $1 AND s.series_id = $2
                     ), corrected AS (
                        INSERT INTO price_corrections
                            (tenant_id, asset_id, interval, time, corrected_at, event_sequence,
                             previous, bar, provider, import_id)
                        SELECT tenant_id, asset_id, interval, time, $11, $12, previous, bar, $13,
                               $14
                          FROM c
                     )
                     UPDATE price_bars p
                        SET open = c.open::numeric, high = c.high::numeric, low = c.low::numeric,
                            close = c.close::numeric, volume = c.volume::numeric,
                            corrections = p.corrections + 1, updated_at = $11
                       FROM c
                      WHERE p.tenant_id = c.tenant_id AND p.asset_id = c.asset_id
                        AND p.interval = c.interval AND p.time = c.time",
                )
                .bind(&event.tenant_id)
                .bind(stream.id)
                .bind(&columns.times)
                .bind(&columns.open)
                .bind(&columns.high)
                .bind(&columns.low)
                .bind(&columns.close)
                .bind(&columns.volume)
                .bind(&previous)
                .bind(&bars)
                .bind(at)
                .bind(event.sequence)
                .bind(&source.provider)
                .bind(source.import_id)
                .execute(&mut *connection)
                .await?;
                if updated.rows_affected() != corrections.len() as u64 {
                    return Err(ApplyError::Inconsistent(format!(
                        "corrections of bars series {} never recorded",
                        stream.id
                    )));
                }
                let first = columns.times.iter().min().copied();
                valuations::mark_series(connection, &event.tenant_id, stream.id, first).await?;
            }
        }
        Ok(())
    }
}

async fn apply_asset(
    connection: &mut PgConnection,
    event: &RecordedEvent,
    stream: &StreamId,
) -> Result<(), ApplyError> {
    let updated = match ApplyError::decode::<AssetEvent>(event)? {
        AssetEvent::AssetListed {
            symbol,
            exchange,
            currency,
            kind,
            name,
            at,
        } => {
            sqlx::query(
                "INSERT INTO price_assets
                    (tenant_id, asset_id, symbol, exchange, currency, kind, name, delisted,
                     version, listed_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, false, $8, $9, $9)",
            )
            .bind(&event.tenant_id)
            .bind(stream.id)
            .bind(symbol.as_str())
            .bind(exchange.as_str())
            .bind(currency.as_str())
            .bind(kind.as_str())
            .bind(name.as_str())
            .bind(event.sequence)
            .bind(at)
            .execute(connection)
            .await?
        }
        AssetEvent::AssetRenamed { symbol, name, at } => {
            sqlx::query(
                "UPDATE price_assets SET symbol = $3, name = $4, version = $5, updated_at = $6
                  WHERE tenant_id = $1 AND asset_id = $2",
            )
            .bind(&event.tenant_id)
            .bind(stream.id)
            .bind(symbol.as_str())
            .bind(name.as_str())
            .bind(event.sequence)
            .bind(at)
            .execute(connection)
            .await?
        }
        AssetEvent::AssetDelisted { at } => {
            sqlx::query(
                "UPDATE price_assets SET delisted = true, version = $3, updated_at = $4
                  WHERE tenant_id = $1 AND asset_id = $2",
            )
            .bind(&event.tenant_id)
            .bind(stream.id)
            .bind(event.sequence)
            .bind(at)
            .execute(connection)
            .await?
        }
    };
    if updated.rows_affected() != 1 {
        return Err(ApplyError::Inconsistent(format!(
            "{} for unknown asset {}",
            event.event_type, stream.id
        )));
    }
    Ok(())
}

/// Bars as columns for `unnest`, decimals as their exact text.
struct Columns {
    times: Vec<chrono::DateTime<chrono::Utc>>,
    open: Vec<String>,
    high: Vec<String>,
    low: Vec<String>,
    close: Vec<String>,
    volume: Vec<String>,
}

impl Columns {
    fn of<'a>(bars: impl Iterator<Item = (chrono::DateTime<chrono::Utc>, &'a domain::prices::Bar)>) -> Self {
        let mut columns = Self {
            times: Vec::new(),
            open: Vec::new(),
            high: Vec::new(),
            low: Vec::new(),
            close: Vec::new(),
            volume: Vec::new(),
        };
        for (time, bar) in bars {
            columns.times.push(time);
            columns.open.push(bar.open.to_string());
            columns.high.push(bar.high.to_string());
            columns.low.push(bar.low.to_string());
            columns.close.push(bar.close.to_string());
            columns.volume.push(bar.volume.to_string());
        }
        columns
    }
}
