//! Asset routes: admins list, rename and delist assets; the tenant's readers list and read them.

use axum::extract::State;
use axum::http::Uri;
use axum::response::Response;
use axum::Json;
use chrono::{DateTime, Utc};
use domain::policy::PriceAction;
use domain::prices::{
    Asset, AssetCommand, AssetKind, AssetName, Currency, Exchange, Symbol, ValueError,
};
use projections::prices::{self as model, AssetView};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{caught_up, known_asset};
use crate::http::error::{ApiError, FieldError, Problem};
use crate::http::extract::{query_of, Caller, Consistency, ExpectedVersion, IdPath, JsonBody};
use crate::http::respond::{
    changed, created, field, page_limit, paged, read_ahead, with_etag, CommandAccepted,
};
use crate::http::schema;
use crate::routes::AppState;

const COLLECTION: &str = "/api/v1/assets";

/// List an asset.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"symbol": "AAPL", "exchange": "XNAS", "currency": "USD", "kind": "stock", "name": "Apple Inc."})))]
pub struct ListAsset {
    /// Its ticker symbol.
    #[schema(value_type = schema::prices::Symbol)]
    pub symbol: String,
    /// Where it trades. With the symbol, it names the asset for good: the same listing
    /// twice is refused.
    #[schema(value_type = schema::prices::Exchange)]
    pub exchange: String,
    /// The currency of its prices.
    #[schema(value_type = schema::prices::Currency)]
    pub currency: String,
    /// What kind of asset.
    #[schema(value_type = schema::prices::AssetKind)]
    pub kind: String,
    /// How people call it.
    #[schema(value_type = schema::prices::AssetName)]
    pub name: String,
}

/// Give an asset a new symbol or name (as after a ticker change).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"symbol": "META", "name": "Meta Platforms, Inc."})))]
pub struct RenameAsset {
    /// The new symbol.
    #[schema(value_type = schema::prices::Symbol)]
    pub symbol: String,
    /// The new name.
    #[schema(value_type = schema::prices::AssetName)]
    pub name: String,
}

/// An asset as the prices projection shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AssetDto {
    /// Its id.
    pub id: Uuid,
    /// Its ticker symbol.
    pub symbol: String,
    /// Where it trades.
    pub exchange: String,
    /// The currency of its prices.
    pub currency: String,
    /// What kind of asset.
    #[schema(value_type = schema::prices::AssetKind)]
    pub kind: String,
    /// How people call it.
    pub name: String,
    /// Whether it was delisted (its history stays readable; no bars are recorded any more).
    pub delisted: bool,
    /// The asset stream's version (use as `If-Match` for commands).
    pub version: i64,
    /// When it was listed.
    pub listed_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl From<AssetView> for AssetDto {
    fn from(view: AssetView) -> Self {
        Self {
            id: view.asset_id,
            symbol: view.symbol,
            exchange: view.exchange,
            currency: view.currency,
            kind: view.kind,
            name: view.name,
            delisted: view.delisted,
            version: view.version,
            listed_at: view.listed_at,
            updated_at: view.updated_at,
        }
    }
}

/// A page of assets.
#[derive(Debug, Serialize, ToSchema)]
pub struct AssetPage {
    /// The assets of this page, in id order.
    pub items: Vec<AssetDto>,
    /// Pass as `after` to get the next page; absent on the last page.
    pub next_cursor: Option<Uuid>,
}

/// Filter and paging parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListAssets {
    /// Only assets with this symbol (on any exchange).
    #[param(value_type = Option<schema::prices::Symbol>)]
    pub symbol: Option<String>,
    /// Return assets after this id (the previous page's `next_cursor`).
    pub after: Option<Uuid>,
    /// Page size: 1 to `queries.max_page_size` (100 unless configured otherwise); default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// Wait until this command's effects are visible.
    pub consistency_token: Option<String>,
}

/// A value error as the field error of the request field it names.
fn value<T>(parsed: Result<T, ValueError>, errors: &mut Vec<FieldError>) -> Option<T> {
    let name = parsed.as_ref().err().map_or("", |error| error.field);
    field(name, parsed, errors)
}

/// List an asset (admins). Its id follows from its exchange and symbol.
#[utoipa::path(
    post, path = "/api/v1/assets", tag = "prices",
    request_body = ListAsset,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    responses(
        (status = 201, description = "Listed", body = CommandAccepted),
        (status = 409, description = "This exchange and symbol are listed already", body = Problem),
        (status = 422, description = "Invalid fields, each named", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn list_asset(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<ListAsset>,
) -> Result<Response, ApiError> {
    let context = caller.may(PriceAction::ListAsset, None, &body)?;
    let mut errors = Vec::new();
    let symbol = value(Symbol::parse(&body.symbol), &mut errors);
    let exchange = value(Exchange::parse(&body.exchange), &mut errors);
    let currency = value(Currency::parse(&body.currency), &mut errors);
    let name = value(AssetName::parse(&body.name), &mut errors);
    let kind = AssetKind::by_name(&body.kind);
    if kind.is_none() {
        errors.push(FieldError {
            field: "kind".to_owned(),
            code: "invalid_kind".to_owned(),
            message: format!(
                "kind must be one of {:?}",
                AssetKind::ALL.map(AssetKind::as_str)
            ),
        });
    }
    let (Some(symbol), Some(exchange), Some(currency), Some(name), Some(kind)) =
        (symbol, exchange, currency, name, kind)
    else {
        return Err(ApiError::validation(errors));
    };
    let id = Asset::stream_id(&exchange, &symbol);
    let command = AssetCommand::List {
        symbol,
        exchange,
        currency,
        kind,
        name,
        at: Utc::now(),
    };
    let outcome = state
        .write
        .prices
        .asset(&context, id, None, command, Utc::now())
        .await?;
    Ok(created(COLLECTION, outcome, None))
}

/// Give an asset a new symbol or name (admins). Its id and history stay.
#[utoipa::path(
    post, path = "/api/v1/assets/{id}/rename", tag = "prices",
    params(("id" = Uuid, Path, description = "Asset id"),
           ("If-Match" = Option<String>, Header, description = "Expected version, e.g. \"3\""),
           ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    request_body = RenameAsset,
    responses(
        (status = 200, description = "Renamed", body = CommandAccepted),
        (status = 404, description = "No such asset", body = Problem),
        (status = 409, description = "Delisted, unchanged, or a version conflict", body = Problem),
        (status = 422, description = "Invalid fields, each named", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn rename_asset(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    expected: ExpectedVersion,
    caller: Caller,
    JsonBody(body): JsonBody<RenameAsset>,
) -> Result<Response, ApiError> {
    let context = caller.may(PriceAction::RenameAsset, None, &body)?;
    let mut errors = Vec::new();
    let symbol = value(Symbol::parse(&body.symbol), &mut errors);
    let name = value(AssetName::parse(&body.name), &mut errors);
    let (Some(symbol), Some(name)) = (symbol, name) else {
        return Err(ApiError::validation(errors));
    };
    let command = AssetCommand::Rename {
        symbol,
        name,
        at: Utc::now(),
    };
    let outcome = state
        .write
        .prices
        .asset(&context, id, expected.0, command, Utc::now())
        .await?;
    Ok(changed(outcome))
}

/// Delist an asset (admins): its bars stay readable, no new ones are recorded.
#[utoipa::path(
    post, path = "/api/v1/assets/{id}/delist", tag = "prices",
    params(("id" = Uuid, Path, description = "Asset id"),
           ("If-Match" = Option<String>, Header, description = "Expected version, e.g. \"3\""),
           ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    responses(
        (status = 200, description = "Delisted", body = CommandAccepted),
        (status = 404, description = "No such asset", body = Problem),
        (status = 409, description = "Delisted already, or a version conflict", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn delist_asset(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    expected: ExpectedVersion,
    caller: Caller,
) -> Result<Response, ApiError> {
    let context = caller.may(PriceAction::DelistAsset, None, &())?;
    let command = AssetCommand::Delist { at: Utc::now() };
    let outcome = state
        .write
        .prices
        .asset(&context, id, expected.0, command, Utc::now())
        .await?;
    Ok(changed(outcome))
}

/// One asset.
#[utoipa::path(
    get, path = "/api/v1/assets/{id}", tag = "prices",
    params(("id" = Uuid, Path, description = "Asset id"),
           ("X-Consistency-Token" = Option<String>, Header, description = "Token from a command"),
           ("consistency_token" = Option<String>, Query, description = "Token from a command")),
    responses(
        (status = 200, description = "The asset", body = AssetDto),
        (status = 404, description = "No such asset", body = Problem),
        (status = 503, description = "Projection behind the token", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn get_asset(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    caller: Caller,
    token: Consistency,
) -> Result<Response, ApiError> {
    let tenant = caller.may_read(PriceAction::ReadPrices, None)?;
    caught_up(&state, tenant, token).await?;
    let asset = known_asset(&state, tenant, id).await?;
    let version = asset.version;
    Ok(with_etag(AssetDto::from(asset), version))
}

/// A page of the tenant's assets, in id order.
#[utoipa::path(
    get, path = "/api/v1/assets", tag = "prices",
    params(ListAssets,
           ("X-Consistency-Token" = Option<String>, Header, description = "Token from a command")),
    responses(
        (status = 200, description = "A page of assets", body = AssetPage),
        (status = 400, description = "Invalid parameters", body = Problem),
        (status = 503, description = "Projection behind the token", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn list_assets(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    token: Consistency,
) -> Result<Json<AssetPage>, ApiError> {
    let tenant = caller.may_read(PriceAction::ReadPrices, None)?;
    let params: ListAssets = query_of(&uri)?;
    let limit = page_limit(params.limit, state.settings.queries.max_page_size)?;
    let symbol = params
        .symbol
        .as_deref()
        .map(Symbol::parse)
        .transpose()
        .map_err(|error| ApiError::bad_request("invalid_query", error.to_string()))?;
    caught_up(&state, tenant, token).await?;
    let assets = model::list_assets(
        &state.read_pool,
        tenant.as_str(),
        symbol.as_ref().map(Symbol::as_str),
        params.after,
        read_ahead(limit),
    )
    .await?;
    let (assets, next_cursor) = paged(assets, limit, |last| last.asset_id);
    Ok(Json(AssetPage {
        items: assets.into_iter().map(AssetDto::from).collect(),
        next_cursor,
    }))
}
