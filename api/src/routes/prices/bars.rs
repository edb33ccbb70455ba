//! Reading bars: a range page by page, weekly or monthly aggregates, the latest bar of many
//! assets, a bar's corrections.

use axum::extract::State;
use axum::http::Uri;
use axum::Json;
use chrono::{DateTime, Utc};
use domain::identity::TenantId;
use domain::policy::PriceAction;
use domain::prices::Interval;
use projections::prices::{self as model, AggregateView, BarView, CorrectionView, Period, Range};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{caught_up, known_asset, query_interval};
use crate::http::error::{ApiError, Problem};
use crate::http::extract::{parse_id, query_of, Caller, Consistency, IdPath};
use crate::http::respond::{page_limit, paged, read_ahead};
use crate::http::schema;
use crate::routes::AppState;

/// The most bars one page holds.
const MAX_BARS_PAGE: u32 = 1_000;
// The documented `maxItems` of the pages (`BarPage`, `AggregatePage`, `LatestPage`) are these.
/// The most assets one latest-prices query names.
const MAX_LATEST: usize = 100;
/// A bar's current values, exact decimals as strings.
#[derive(Debug, Serialize, ToSchema)]
pub struct BarDto {
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
    /// How many times it was corrected (see its corrections).
    pub corrections: i32,
    /// When it was first recorded.
    pub recorded_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl From<BarView> for BarDto {
    fn from(view: BarView) -> Self {
        Self {
            time: view.time,
            open: view.open,
            high: view.high,
            low: view.low,
            close: view.close,
            volume: view.volume,
            corrections: view.corrections,
            recorded_at: view.recorded_at,
            updated_at: view.updated_at,
        }
    }
}

/// A page of bars.
#[derive(Debug, Serialize, ToSchema)]
pub struct BarPage {
    /// The bars of this page, earliest first.
    #[schema(max_items = 1000)]
    pub items: Vec<BarDto>,
    /// Pass as `after` to get the next page; absent on the last page.
    pub next_cursor: Option<DateTime<Utc>>,
}

/// Which bars: an interval and a time range.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListBars {
    /// The bars' interval.
    #[param(value_type = schema::prices::Interval)]
    pub interval: String,
    /// Bars starting at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Bars starting before this time; after `from`.
    pub to: Option<DateTime<Utc>>,
    /// Return bars after this time (the previous page's `next_cursor`).
    pub after: Option<DateTime<Utc>>,
    /// Page size: 1 to 1000; default 20.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// Wait until this command's effects are visible.
    pub consistency_token: Option<String>,
}

/// A coarser bar.
#[derive(Debug, Serialize, ToSchema)]
pub struct AggregateDto {
    /// The start of the week (Monday 00:00 UTC) or month (the 1st, 00:00 UTC).
    pub start: DateTime<Utc>,
    /// The open of its first bar.
    pub open: String,
    /// The highest high.
    pub high: String,
    /// The lowest low.
    pub low: String,
    /// The close of its last bar.
    pub close: String,
    /// The volumes summed.
    pub volume: String,
    /// How many bars it aggregates (a period the range cuts has only those inside it).
    pub bars: i64,
    /// Its first bar's start.
    pub first: DateTime<Utc>,
    /// Its last bar's start.
    pub last: DateTime<Utc>,
}

impl From<AggregateView> for AggregateDto {
    fn from(view: AggregateView) -> Self {
        Self {
            start: view.start,
            open: view.open,
            high: view.high,
            low: view.low,
            close: view.close,
            volume: view.volume,
            bars: view.bars,
            first: view.first,
            last: view.last,
        }
    }
}

/// A page of aggregates.
#[derive(Debug, Serialize, ToSchema)]
pub struct AggregatePage {
    /// The periods of this page, earliest first; periods without bars are left out.
    #[schema(max_items = 1000)]
    pub items: Vec<AggregateDto>,
    /// Pass as `after` to get the next page; absent on the last page.
    pub next_cursor: Option<DateTime<Utc>>,
}

/// What to aggregate to.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PeriodName {
    /// ISO weeks, Monday to Sunday, UTC.
    Week,
    /// Calendar months, UTC.
    Month,
}

/// Which bars, aggregated to what.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AggregateBars {
    /// The interval of the bars aggregated.
    #[param(value_type = schema::prices::Interval)]
    pub interval: String,
    /// The period each aggregate covers.
    #[param(inline)]
    pub period: PeriodName,
    /// Bars starting at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Bars starting before this time; after `from`.
    pub to: Option<DateTime<Utc>>,
    /// Return periods after the one starting at this time (the previous page's
    /// `next_cursor`).
    pub after: Option<DateTime<Utc>>,
    /// Page size: 1 to 1000; default 20.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// Wait until this command's effects are visible.
    pub consistency_token: Option<String>,
}

/// Whose latest prices.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LatestPrices {
    /// The bars' interval.
    #[param(value_type = schema::prices::Interval)]
    pub interval: String,
    /// 1 to 100 asset ids, comma-separated.
    #[param(
        pattern = "^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}(,[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}){0,99}$",
        max_length = 3699
    )]
    pub assets: String,
    /// Wait until this command's effects are visible.
    pub consistency_token: Option<String>,
}

/// One asset's latest bar.
#[derive(Debug, Serialize, ToSchema)]
pub struct LatestDto {
    /// The asset.
    pub asset_id: Uuid,
    /// Its latest bar at the interval.
    pub bar: BarDto,
}

/// The latest bars.
#[derive(Debug, Serialize, ToSchema)]
pub struct LatestPage {
    /// One per asset that has a bar at the interval, in asset id order (an asset without one,
    /// or of another tenant, is left out).
    #[schema(max_items = 100)]
    pub items: Vec<LatestDto>,
}

/// Which bar.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BarCorrections {
    /// The bar's interval.
    #[param(value_type = schema::prices::Interval)]
    pub interval: String,
    /// The bar's start.
    pub time: DateTime<Utc>,
    /// Wait until this command's effects are visible.
    pub consistency_token: Option<String>,
}

/// One correction: the values a bar had, the values it was given, and by whom.
#[derive(Debug, Serialize, ToSchema)]
pub struct CorrectionDto {
    /// When it was recorded.
    pub corrected_at: DateTime<Utc>,
    /// The values before (`open`, `high`, `low`, `close`, `volume`, decimal strings).
    #[schema(value_type = Object)]
    pub previous: serde_json::Value,
    /// The values after.
    #[schema(value_type = Object)]
    pub bar: serde_json::Value,
    /// Who reported the new values: a provider's name, or `api` for bars recorded over HTTP.
    pub provider: String,
    /// The import run (or recording request) that reported them.
    pub import_id: Uuid,
}

impl From<CorrectionView> for CorrectionDto {
    fn from(view: CorrectionView) -> Self {
        Self {
            corrected_at: view.corrected_at,
            previous: view.previous,
            bar: view.bar,
            provider: view.provider,
            import_id: view.import_id,
        }
    }
}

/// A bar with its correction history.
#[derive(Debug, Serialize, ToSchema)]
pub struct BarHistory {
    /// The bar as it stands.
    pub bar: BarDto,
    /// Every correction, oldest first; none when the first report still stands.
    pub corrections: Vec<CorrectionDto>,
}

/// The series range a query names, checked.
fn range<'a>(
    tenant: &'a TenantId,
    asset: Uuid,
    interval: &'a Interval,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> Result<Range<'a>, ApiError> {
    if let (Some(from), Some(to)) = (from, to) {
        if from >= to {
            return Err(ApiError::bad_request(
                "invalid_query",
                "to: must be after from",
            ));
        }
    }
    Ok(Range {
        tenant: tenant.as_str(),
        asset,
        interval: interval.as_str(),
        from,
        to,
    })
}

/// A page of an asset's bars of one interval in a time range, earliest first. Each page is
/// read on its own, so a long range pages in bounded memory.
#[utoipa::path(
    get, path = "/api/v1/assets/{id}/bars", tag = "prices",
    params(("id" = Uuid, Path, description = "Asset id"), ListBars,
           ("X-Consistency-Token" = Option<String>, Header, description = "Token from a command")),
    responses(
        (status = 200, description = "A page of bars", body = BarPage),
        (status = 400, description = "Invalid parameters", body = Problem),
        (status = 404, description = "No such asset", body = Problem),
        (status = 503, description = "Projection behind the token", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn list_bars(
    State(state): State<AppState>,
    IdPath(asset): IdPath,
    caller: Caller,
    uri: Uri,
    token: Consistency,
) -> Result<Json<BarPage>, ApiError> {
    let tenant = caller.may_read(PriceAction::ReadPrices, None)?;
    caught_up(&state, tenant, token).await?;
    known_asset(&state, tenant, asset).await?;
    let params: ListBars = query_of(&uri)?;
    let limit = page_limit(params.limit, MAX_BARS_PAGE)?;
    let interval = query_interval(&params.interval)?;
    let range = range(tenant, asset, &interval, params.from, params.to)?;
    let bars = model::bars(&state.read_pool, range, params.after, read_ahead(limit)).await?;
    let (bars, next_cursor) = paged(bars, limit, |last| last.time);
    Ok(Json(BarPage {
        items: bars.into_iter().map(BarDto::from).collect(),
        next_cursor,
    }))
}

/// An asset's bars aggregated to weeks or months, computed by the database: the open of the
/// first bar, the highest high, the lowest low, the close of the last bar, the volumes summed.
#[utoipa::path(
    get, path = "/api/v1/assets/{id}/aggregates", tag = "prices",
    params(("id" = Uuid, Path, description = "Asset id"), AggregateBars,
           ("X-Consistency-Token" = Option<String>, Header, description = "Token from a command")),
    responses(
        (status = 200, description = "A page of aggregates", body = AggregatePage),
        (status = 400, description = "Invalid parameters", body = Problem),
        (status = 404, description = "No such asset", body = Problem),
        (status = 503, description = "Projection behind the token", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn aggregate_bars(
    State(state): State<AppState>,
    IdPath(asset): IdPath,
    caller: Caller,
    uri: Uri,
    token: Consistency,
) -> Result<Json<AggregatePage>, ApiError> {
    let tenant = caller.may_read(PriceAction::ReadPrices, None)?;
    caught_up(&state, tenant, token).await?;
    known_asset(&state, tenant, asset).await?;
    let params: AggregateBars = query_of(&uri)?;
    let limit = page_limit(params.limit, MAX_BARS_PAGE)?;
    let interval = query_interval(&params.interval)?;
    let range = range(tenant, asset, &interval, params.from, params.to)?;
    let period = match params.period {
        PeriodName::Week => Period::Week,
        PeriodName::Month => Period::Month,
    };
    let periods = model::aggregate(
        &state.read_pool,
        range,
        period,
        params.after,
        read_ahead(limit),
    )
    .await?;
    let (periods, next_cursor) = paged(periods, limit, |last| last.start);
    Ok(Json(AggregatePage {
        items: periods.into_iter().map(AggregateDto::from).collect(),
        next_cursor,
    }))
}

/// The latest bar of each of up to 100 assets at one interval, in one query.
#[utoipa::path(
    get, path = "/api/v1/prices/latest", tag = "prices",
    params(LatestPrices,
           ("X-Consistency-Token" = Option<String>, Header, description = "Token from a command")),
    responses(
        (status = 200, description = "The latest bars", body = LatestPage),
        (status = 400, description = "Invalid parameters", body = Problem),
        (status = 503, description = "Projection behind the token", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn latest_prices(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    token: Consistency,
) -> Result<Json<LatestPage>, ApiError> {
    let tenant = caller.may_read(PriceAction::ReadPrices, None)?;
    let params: LatestPrices = query_of(&uri)?;
    let interval = query_interval(&params.interval)?;
    let mut assets = params
        .assets
        .split(',')
        .map(parse_id)
        .collect::<Result<Vec<Uuid>, ApiError>>()?;
    let named = assets.len();
    assets.sort_unstable();
    assets.dedup();
    if named > MAX_LATEST {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("assets: at most {MAX_LATEST}"),
        ));
    }
    caught_up(&state, tenant, token).await?;
    let latest = model::latest(
        &state.read_pool,
        tenant.as_str(),
        &assets,
        interval.as_str(),
    )
    .await?;
    Ok(Json(LatestPage {
        items: latest
            .into_iter()
            .map(|latest| LatestDto {
                asset_id: latest.asset_id,
                bar: BarDto::from(latest.bar),
            })
            .collect(),
    }))
}

/// One bar with every correction it received: the values it had, the values it was given,
/// when and from which import.
#[utoipa::path(
    get, path = "/api/v1/assets/{id}/corrections", tag = "prices",
    params(("id" = Uuid, Path, description = "Asset id"), BarCorrections,
           ("X-Consistency-Token" = Option<String>, Header, description = "Token from a command")),
    responses(
        (status = 200, description = "The bar and its corrections", body = BarHistory),
        (status = 400, description = "Invalid parameters", body = Problem),
        (status = 404, description = "No such bar", body = Problem),
        (status = 503, description = "Projection behind the token", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn bar_corrections(
    State(state): State<AppState>,
    IdPath(asset): IdPath,
    caller: Caller,
    uri: Uri,
    token: Consistency,
) -> Result<Json<BarHistory>, ApiError> {
    let tenant = caller.may_read(PriceAction::ReadPrices, None)?;
    caught_up(&state, tenant, token).await?;
    known_asset(&state, tenant, asset).await?;
    let params: BarCorrections = query_of(&uri)?;
    let interval = query_interval(&params.interval)?;
    let one = Range {
        tenant: tenant.as_str(),
        asset,
        interval: interval.as_str(),
        from: Some(params.time),
        to: None,
    };
    let bar = model::bars(&state.read_pool, one, None, 1)
        .await?
        .into_iter()
        .find(|bar| bar.time == params.time)
        .ok_or_else(|| ApiError::NotFound {
            code: "bar_not_found",
            detail: format!(
                "no {} bar of asset {asset} starts at {}",
                interval.as_str(),
                params.time
            ),
        })?;
    let corrections = model::corrections(
        &state.read_pool,
        tenant.as_str(),
        asset,
        interval.as_str(),
        params.time,
    )
    .await?;
    Ok(Json(BarHistory {
        bar: BarDto::from(bar),
        corrections: corrections.into_iter().map(CorrectionDto::from).collect(),
    }))
}
