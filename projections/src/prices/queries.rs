//! Reading the asset-prices read models: assets, bars of a range page by page, bars aggregated
//! to weeks or months in SQL, the latest bar of many assets, and a bar's corrections. Decimal
//! values leave the database as text, so nothing passes through a binary float.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

/// An asset as listed.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AssetView {
    /// Its id.
    pub asset_id: Uuid,
    /// Its ticker symbol.
    pub symbol: String,
    /// Where it trades.
    pub exchange: String,
    /// The currency of its prices.
    pub currency: String,
    /// `stock`, `etf`, …
    pub kind: String,
    /// Its name.
    pub name: String,
    /// Whether it was delisted.
    pub delisted: bool,
    /// The asset stream's version.
    pub version: i64,
    /// When it was listed.
    pub listed_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

const ASSET_COLUMNS: &str = "asset_id, symbol, exchange, currency, kind, name, delisted, \
                             version, listed_at, updated_at";

/// Up to `limit` of `tenant`'s assets after `after`, in id order; only those with `symbol`
/// when given.
///
/// # Errors
/// When the database fails.
pub async fn list_assets(
    pool: &PgPool,
    tenant: &str,
    symbol: Option<&str>,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<AssetView>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {ASSET_COLUMNS} FROM read_models.price_assets
          WHERE tenant_id = $1 AND ($2::text IS NULL OR symbol = $2)
            AND ($3::uuid IS NULL OR asset_id > $3)
          ORDER BY asset_id
          LIMIT $4"
    ))
    .bind(tenant)
    .bind(symbol)
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// One of `tenant`'s assets.
///
/// # Errors
/// When the database fails.
pub async fn get_asset(
    pool: &PgPool,
    tenant: &str,
    asset: Uuid,
) -> Result<Option<AssetView>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {ASSET_COLUMNS} FROM read_models.price_assets
          WHERE tenant_id = $1 AND asset_id = $2"
    ))
    .bind(tenant)
    .bind(asset)
    .fetch_optional(pool)
    .await
}

/// A bar's current values, as exact decimal text.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct BarView {
    /// When it starts.
    pub time: DateTime<Utc>,
    /// The first price.
    pub open: String,
    /// The highest price.
    pub high: String,
    /// The lowest price.
    pub low: String,
    /// The last price.
    pub close: String,
    /// The volume traded.
    pub volume: String,
    /// How many times it was corrected.
    pub corrections: i32,
    /// When it was first recorded.
    pub recorded_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// Which bars of one series: an asset at an interval, starting in `[from, to)`.
#[derive(Debug, Clone, Copy)]
pub struct Range<'a> {
    /// The tenant.
    pub tenant: &'a str,
    /// The asset.
    pub asset: Uuid,
    /// The interval's name (`1h`, `1day`, …).
    pub interval: &'a str,
    /// The first time included, if bounded.
    pub from: Option<DateTime<Utc>>,
    /// The first time excluded, if bounded.
    pub to: Option<DateTime<Utc>>,
}

/// Up to `limit` bars of `range` starting after `after`, earliest first. Each page is one
/// index range scan of the partitions it touches, so a long range pages in bounded memory.
///
/// # Errors
/// When the database fails.
pub async fn bars(
    pool: &PgPool,
    range: Range<'_>,
    after: Option<DateTime<Utc>>,
    limit: i64,
) -> Result<Vec<BarView>, sqlx::Error> {
    sqlx::query_as(
        "SELECT time, open::text, high::text, low::text, close::text, volume::text,
                corrections, recorded_at, updated_at
           FROM read_models.price_bars
          WHERE tenant_id = $1 AND asset_id = $2 AND interval = $3
            AND time >= coalesce($4, '-infinity'::timestamptz)
            AND time < coalesce($5, 'infinity'::timestamptz)
            AND time > coalesce($6, '-infinity'::timestamptz)
          ORDER BY time
          LIMIT $7",
    )
    .bind(range.tenant)
    .bind(range.asset)
    .bind(range.interval)
    .bind(range.from)
    .bind(range.to)
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// A coarser bar: one week or month of a series' bars.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AggregateView {
    /// The start of the week (Monday, UTC) or month.
    pub start: DateTime<Utc>,
    /// The open of its first bar.
    pub open: String,
    /// The highest high.
    pub high: String,
    /// The lowest low.
    pub low: String,
    /// The close of its last bar.
    pub close: String,
    /// The sum of the volumes.
    pub volume: String,
    /// How many bars it aggregates.
    pub bars: i64,
    /// Its first bar's start.
    pub first: DateTime<Utc>,
    /// Its last bar's start.
    pub last: DateTime<Utc>,
}

/// What bars are aggregated to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// ISO weeks, starting on Monday 00:00 UTC.
    Week,
    /// Calendar months, UTC.
    Month,
}

impl Period {
    fn unit(self) -> &'static str {
        match self {
            Self::Week => "week",
            Self::Month => "month",
        }
    }
}

/// Up to `limit` aggregates of `range`'s bars per `period`, for the periods starting after
/// `after`, earliest first; computed in SQL from the bars in the range (a period the range
/// cuts aggregates only the bars inside it; `first` and `last` say which).
///
/// # Errors
/// When the database fails.
pub async fn aggregate(
    pool: &PgPool,
    range: Range<'_>,
    period: Period,
    after: Option<DateTime<Utc>>,
    limit: i64,
) -> Result<Vec<AggregateView>, sqlx::Error> {
    sqlx::query_as(
        "SELECT date_trunc($6, time, 'UTC') AS start,
                (array_agg(open ORDER BY time))[1]::text AS open,
                max(high)::text AS high, min(low)::text AS low,
                (array_agg(close ORDER BY time DESC))[1]::text AS close,
                trim_scale(sum(volume))::text AS volume, count(*) AS bars,
                min(time) AS first, max(time) AS last
           FROM read_models.price_bars
          WHERE tenant_id = $1 AND asset_id = $2 AND interval = $3
            AND time >= coalesce($4, '-infinity'::timestamptz)
            AND time < coalesce($5, 'infinity'::timestamptz)
            -- The period after the cursor's, computed in UTC whatever the session's time zone.
            AND time >= coalesce(
                    (date_trunc($6, $7::timestamptz AT TIME ZONE 'UTC') + ('1 ' || $6)::interval)
                        AT TIME ZONE 'UTC',
                    '-infinity'::timestamptz)
          GROUP BY 1
          ORDER BY 1
          LIMIT $8",
    )
    .bind(range.tenant)
    .bind(range.asset)
    .bind(range.interval)
    .bind(range.from)
    .bind(range.to)
    .bind(period.unit())
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// The latest bar of one asset.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LatestView {
    /// The asset.
    pub asset_id: Uuid,
    /// Its latest bar.
    #[sqlx(flatten)]
    pub bar: BarView,
}

/// The latest bar at `interval` of each of `assets` that has one (each one index probe).
///
/// # Errors
/// When the database fails.
pub async fn latest(
    pool: &PgPool,
    tenant: &str,
    assets: &[Uuid],
    interval: &str,
) -> Result<Vec<LatestView>, sqlx::Error> {
    sqlx::query_as(
        "SELECT a.asset_id, b.*
           FROM unnest($2::uuid[]) AS a(asset_id)
           CROSS JOIN LATERAL (
                SELECT time, open::text, high::text, low::text, close::text, volume::text,
                       corrections, recorded_at, updated_at
                  FROM read_models.price_bars p
                 WHERE p.tenant_id = $1 AND p.asset_id = a.asset_id AND p.interval = $3
                 ORDER BY p.time DESC
                 LIMIT 1
           ) AS b
          ORDER BY a.asset_id",
    )
    .bind(tenant)
    .bind(assets)
    .bind(interval)
    .fetch_all(pool)
    .await
}

/// One correction of a bar: the values it replaced, the values it set, and where they came
/// from.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct CorrectionView {
    /// When the correction was recorded.
    pub corrected_at: DateTime<Utc>,
    /// The values before (`open`, `high`, `low`, `close`, `volume` as decimal strings).
    pub previous: serde_json::Value,
    /// The values after.
    pub bar: serde_json::Value,
    /// The provider that reported the new values.
    pub provider: String,
    /// The import run (or manual recording) that reported them.
    pub import_id: Uuid,
}

/// Every correction of the bar of `asset` at `interval` starting at `time`, oldest first.
///
/// # Errors
/// When the database fails.
pub async fn corrections(
    pool: &PgPool,
    tenant: &str,
    asset: Uuid,
    interval: &str,
    time: DateTime<Utc>,
) -> Result<Vec<CorrectionView>, sqlx::Error> {
    sqlx::query_as(
        "SELECT corrected_at, previous, bar, provider, import_id
           FROM read_models.price_corrections
          WHERE tenant_id = $1 AND asset_id = $2 AND interval = $3 AND time = $4
          ORDER BY event_sequence",
    )
    .bind(tenant)
    .bind(asset)
    .bind(interval)
    .bind(time)
    .fetch_all(pool)
    .await
}
