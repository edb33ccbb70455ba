//! Import routes: admins ask for an asset's bars of a range to be imported from the market-data
//! provider (the backend's importer runs it, with retries and a circuit breaker); readers follow
//! each import's progress and errors.

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use axum::Json;
use chrono::{DateTime, Utc};
use domain::policy::PriceAction;
use domain::prices::ImportKey;
use projections::prices::{self as model, ImportView};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::caught_up;
use crate::http::error::{ApiError, FieldError, Problem};
use crate::http::extract::{query_of, Caller, Consistency, IdPath, JsonBody};
use crate::http::respond::{
    accepted, not_found, page_limit, paged, read_ahead, with_etag, CommandAccepted,
};
use crate::http::schema;
use crate::routes::AppState;

const COLLECTION: &str = "/api/v1/price-imports";
/// The most bars one import may cover.
const MAX_IMPORT_BARS: i64 = 1_000_000;

/// Import an asset's bars of one interval and range.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"interval": "1day", "from": "2025-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"})))]
pub struct RequestImport {
    /// The bars' interval.
    #[schema(value_type = schema::prices::Interval)]
    pub interval: String,
    /// The first bar start to import: the start of an interval.
    pub from: DateTime<Utc>,
    /// The first bar start after the range: the start of an interval, after `from`, at most
    /// 1,000,000 bars later.
    pub to: DateTime<Utc>,
}

/// An import run as the prices projection shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportDto {
    /// Its id: the same asset, interval and range is always the same import.
    pub id: Uuid,
    /// The asset.
    pub asset_id: Uuid,
    /// The bars' interval.
    #[schema(value_type = schema::prices::Interval)]
    pub interval: String,
    /// The first bar start of the range.
    pub from: DateTime<Utc>,
    /// The first bar start after it.
    pub to: DateTime<Utc>,
    /// The provider.
    pub provider: String,
    /// `queued`, `running`, `waiting` (for its next attempt), `completed` or `abandoned`.
    pub status: String,
    /// Attempts started.
    pub attempts: i32,
    /// Bars the provider reported so far (since the import was last asked for; an attempt
    /// that takes over resumes where the last one recorded).
    pub fetched: i64,
    /// Every bar before this time is recorded.
    pub recorded_until: Option<DateTime<Utc>>,
    /// The last failed attempt's error.
    pub last_error: Option<String>,
    /// When the next attempt is due (while waiting).
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// When the running attempt's lease ends.
    pub lease_until: Option<DateTime<Utc>>,
    /// The import stream's version.
    pub version: i64,
    /// When it was (last) asked for.
    pub requested_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// When it completed.
    pub completed_at: Option<DateTime<Utc>>,
}

impl From<ImportView> for ImportDto {
    fn from(view: ImportView) -> Self {
        Self {
            id: view.import_id,
            asset_id: view.asset_id,
            interval: view.interval,
            from: view.range_from,
            to: view.range_to,
            provider: view.provider,
            status: view.status,
            attempts: view.attempts,
            fetched: view.fetched,
            recorded_until: view.recorded_until,
            last_error: view.last_error,
            next_attempt_at: view.next_attempt_at,
            lease_until: view.lease_until,
            version: view.version,
            requested_at: view.requested_at,
            updated_at: view.updated_at,
            completed_at: view.completed_at,
        }
    }
}

/// A page of imports.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportPage {
    /// The imports of this page, in id order.
    pub items: Vec<ImportDto>,
    /// Pass as `after` to get the next page; absent on the last page.
    pub next_cursor: Option<Uuid>,
}

/// Where an import stands.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ImportStatusName {
    /// Waiting for the importer.
    Queued,
    /// An attempt is running.
    Running,
    /// Waiting for its next attempt.
    Waiting,
    /// Done.
    Completed,
    /// Every attempt failed.
    Abandoned,
}

impl ImportStatusName {
    fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Waiting => "waiting",
            Self::Completed => "completed",
            Self::Abandoned => "abandoned",
        }
    }
}

/// Filter and paging parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListImports {
    /// Only imports of this asset.
    pub asset: Option<Uuid>,
    /// Only imports in this state.
    #[param(inline)]
    pub status: Option<ImportStatusName>,
    /// Return imports after this id (the previous page's `next_cursor`).
    pub after: Option<Uuid>,
    /// Page size: 1 to `queries.max_page_size` (100 unless configured otherwise); default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// Wait until this command's effects are visible.
    pub consistency_token: Option<String>,
}

/// Ask for an asset's bars of one interval and range to be imported from the provider
/// (admins). The backend's importer runs it; asking again for the same range is the same
/// import (one that was abandoned starts over). Follow it at `Location`.
#[utoipa::path(
    post, path = "/api/v1/assets/{id}/imports", tag = "prices",
    params(("id" = Uuid, Path, description = "Asset id"),
           ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    request_body = RequestImport,
    responses(
        (status = 202, description = "Asked for; `Location` is the import", body = CommandAccepted),
        (status = 404, description = "No such asset", body = Problem),
        (status = 409, description = "The asset is delisted", body = Problem),
        (status = 422, description = "Invalid fields, each named; a range not on interval starts, empty or too long", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn request_import(
    State(state): State<AppState>,
    IdPath(asset): IdPath,
    caller: Caller,
    JsonBody(body): JsonBody<RequestImport>,
) -> Result<Response, ApiError> {
    let context = caller.may(PriceAction::RequestImport, None, &body)?;
    let interval = super::body_interval(&body.interval)?;
    let bars = (body.to - body.from).num_seconds() / interval.seconds();
    if bars > MAX_IMPORT_BARS {
        return Err(ApiError::validation(vec![FieldError {
            field: "to".to_owned(),
            code: "range_too_long".to_owned(),
            message: format!("at most {MAX_IMPORT_BARS} bars per import"),
        }]));
    }
    let key = ImportKey {
        asset,
        interval,
        from: body.from,
        to: body.to,
    };
    let provider = state.settings.prices.provider.clone();
    let outcome = state
        .write
        .prices
        .request_import(&context, key, &provider, Utc::now())
        .await?;
    Ok(accepted(
        StatusCode::ACCEPTED,
        Some(COLLECTION),
        outcome,
        None,
    ))
}

/// One import: where it stands, its attempts, progress and last error.
#[utoipa::path(
    get, path = "/api/v1/price-imports/{id}", tag = "prices",
    params(("id" = Uuid, Path, description = "Import id"),
           ("X-Consistency-Token" = Option<String>, Header, description = "Token from a command"),
           ("consistency_token" = Option<String>, Query, description = "Token from a command")),
    responses(
        (status = 200, description = "The import", body = ImportDto),
        (status = 404, description = "No such import", body = Problem),
        (status = 503, description = "Projection behind the token", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn get_import(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    caller: Caller,
    token: Consistency,
) -> Result<Response, ApiError> {
    let tenant = caller.may_read(PriceAction::ReadPrices, None)?;
    caught_up(&state, tenant, token).await?;
    let import = model::get_import(&state.read_pool, tenant.as_str(), id)
        .await?
        .ok_or_else(|| not_found("import_not_found", "import", id))?;
    let version = import.version;
    Ok(with_etag(ImportDto::from(import), version))
}

/// A page of the tenant's imports, in id order.
#[utoipa::path(
    get, path = "/api/v1/price-imports", tag = "prices",
    params(ListImports,
           ("X-Consistency-Token" = Option<String>, Header, description = "Token from a command")),
    responses(
        (status = 200, description = "A page of imports", body = ImportPage),
        (status = 400, description = "Invalid parameters", body = Problem),
        (status = 503, description = "Projection behind the token", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn list_imports(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    token: Consistency,
) -> Result<Json<ImportPage>, ApiError> {
    let tenant = caller.may_read(PriceAction::ReadPrices, None)?;
    let params: ListImports = query_of(&uri)?;
    let limit = page_limit(params.limit, state.settings.queries.max_page_size)?;
    caught_up(&state, tenant, token).await?;
    let imports = model::list_imports(
        &state.read_pool,
        tenant.as_str(),
        params.asset,
        params.status.map(ImportStatusName::as_str),
        params.after,
        read_ahead(limit),
    )
    .await?;
    let (imports, next_cursor) = paged(imports, limit, |last| last.import_id);
    Ok(Json(ImportPage {
        items: imports.into_iter().map(ImportDto::from).collect(),
        next_cursor,
    }))
}
