//! The asset-prices context over HTTP: admins list, rename and delist assets; admins and
//! workers record reported bars; the tenant's readers page bars, aggregate them to weeks or
//! months, read the latest prices of many assets and a bar's corrections.

pub mod assets;
pub mod bars;
pub mod imports;
pub mod live;
pub mod portfolios;
pub mod recording;
pub mod schedules;

use domain::identity::TenantId;
use domain::policy::PriceAction;
use domain::prices::Interval;
use projections::prices::{AssetView, PricesProjection};
use utoipa_axum::routes;
use uuid::Uuid;

use crate::http::error::{ApiError, FieldError};
use crate::http::extract::{consistent, Consistency};
use crate::http::respond::not_found;
use crate::routes::{AppState, Routes};

/// The prices routes.
pub fn routes() -> Routes {
    Routes::new()
        .tag(
            "prices",
            "Asset prices: assets, bars recorded and corrected (never deleted), ranges, weekly \
             and monthly aggregates, latest prices, correction history",
        )
        .command(PriceAction::ListAsset, routes!(assets::list_asset))
        .command(PriceAction::RenameAsset, routes!(assets::rename_asset))
        .command(PriceAction::DelistAsset, routes!(assets::delist_asset))
        .command(PriceAction::RecordBars, routes!(recording::record_bars))
        .command(PriceAction::RequestImport, routes!(imports::request_import))
        .command(
            PriceAction::ScheduleRefresh,
            routes!(schedules::schedule_refresh),
        )
        .command(
            PriceAction::ScheduleRefresh,
            routes!(schedules::unschedule_refresh),
        )
        .command(
            PriceAction::ManagePortfolio,
            routes!(portfolios::open_portfolio),
        )
        .command(
            PriceAction::ManagePortfolio,
            routes!(portfolios::record_trade),
        )
        .query(PriceAction::ReadPrices, routes!(assets::list_assets))
        .query(PriceAction::ReadPrices, routes!(assets::get_asset))
        .query(PriceAction::ReadPrices, routes!(bars::list_bars))
        .query(PriceAction::ReadPrices, routes!(bars::aggregate_bars))
        .query(PriceAction::ReadPrices, routes!(bars::latest_prices))
        .query(PriceAction::ReadPrices, routes!(bars::bar_corrections))
        .query(PriceAction::ReadPrices, routes!(live::bars_live))
        .query(PriceAction::ReadPrices, routes!(imports::list_imports))
        .query(PriceAction::ReadPrices, routes!(imports::get_import))
        .query(PriceAction::ReadPrices, routes!(schedules::list_schedules))
        .query(PriceAction::ReadPrices, routes!(portfolios::get_portfolio))
        .query(
            PriceAction::ReadPrices,
            routes!(portfolios::portfolio_valuation),
        )
}

/// The interval named by a request body's `interval`.
///
/// # Errors
/// `422` naming the field.
pub(crate) fn body_interval(name: &str) -> Result<Interval, ApiError> {
    Interval::by_name(name).ok_or_else(|| {
        ApiError::validation(vec![FieldError {
            field: "interval".to_owned(),
            code: "invalid_interval".to_owned(),
            message: interval_rule(),
        }])
    })
}

/// The interval named by a query's `interval` parameter.
///
/// # Errors
/// `400 invalid_query`.
pub(crate) fn query_interval(name: &str) -> Result<Interval, ApiError> {
    Interval::by_name(name).ok_or_else(|| {
        ApiError::bad_request("invalid_query", format!("interval: {}", interval_rule()))
    })
}

fn interval_rule() -> String {
    format!("one of {:?}", Interval::ALL.map(Interval::as_str))
}

/// Waits, when the query carries a consistency token, until the prices projection shows the
/// command it names.
///
/// # Errors
/// `404` for a token of no price command of the tenant; `503` when the projection stays behind.
pub(crate) async fn caught_up(
    state: &AppState,
    tenant: &TenantId,
    token: Consistency,
) -> Result<(), ApiError> {
    consistent(
        state,
        tenant,
        token,
        &[
            "Asset",
            "PriceSeries",
            "PriceImport",
            "RefreshSchedule",
            "Portfolio",
        ],
        PricesProjection::NAME,
    )
    .await
}

/// The tenant's asset `asset`, as listed.
///
/// # Errors
/// `404 asset_not_found`, or a database failure.
pub(crate) async fn known_asset(
    state: &AppState,
    tenant: &TenantId,
    asset: Uuid,
) -> Result<AssetView, ApiError> {
    projections::prices::get_asset(&state.read_pool, tenant.as_str(), asset)
        .await?
        .ok_or_else(|| not_found("asset_not_found", "asset", asset))
}
