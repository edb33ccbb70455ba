//! Tenant queries: operators list every tenant with its usage and read one; a tenant's admins
//! and auditors read their own tenant's settings and usage.

use axum::extract::State;
use axum::response::Response;
use axum::Json;
use chrono::{DateTime, Utc};
use domain::policy::TenantAction;
use projections::tenants::{self as tenants_model, TenantView, TenantsProjection, Usage};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{Settings, TenantParam};
use crate::http::error::{ApiError, Problem};
use crate::http::extract::{consistent, Caller, Consistency, QueryParams, TenantPath};
use crate::http::respond::{page_limit, paged, with_etag};
use crate::routes::AppState;

/// Usage against each quota.
#[derive(Debug, Serialize, ToSchema)]
pub struct UsageDto {
    /// Jobs submitted since the start of the current UTC day (`quota_jobs_per_day`).
    pub jobs_today: i64,
    /// Bytes of documents stored (`quota_stored_bytes`).
    pub stored_bytes: i64,
}

impl From<Usage> for UsageDto {
    fn from(usage: Usage) -> Self {
        Self {
            jobs_today: usage.jobs_today,
            stored_bytes: usage.stored_bytes,
        }
    }
}

/// A tenant with its settings and usage.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantDto {
    /// The tenant's id.
    pub tenant_id: String,
    /// How it is shown.
    pub display_name: String,
    /// `active` or `suspended`.
    pub status: String,
    /// Why it is suspended (only while it is).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suspension_reason: Option<String>,
    /// Since when it is suspended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suspended_at: Option<DateTime<Utc>>,
    /// Its settings; the server's configuration applies to every one absent.
    pub settings: Settings,
    /// Usage against its quotas.
    pub usage: UsageDto,
    /// The tenant stream's version (use as `If-Match` for commands).
    pub version: i64,
    /// When it was provisioned.
    pub provisioned_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl From<TenantView> for TenantDto {
    fn from(view: TenantView) -> Self {
        Self {
            tenant_id: view.tenant_id,
            display_name: view.display_name,
            status: view.status,
            suspension_reason: view.suspension_reason,
            suspended_at: view.suspended_at,
            settings: Settings::from(view.settings.0),
            usage: UsageDto {
                jobs_today: view.jobs_today,
                stored_bytes: view.stored_bytes,
            },
            version: view.version,
            provisioned_at: view.provisioned_at,
            updated_at: view.updated_at,
        }
    }
}

/// A page of tenants.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantPage {
    /// The tenants of this page, in id order.
    pub items: Vec<TenantDto>,
    /// Pass as `after` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Paging parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListTenants {
    /// Return tenants after this id (the previous page's `next_cursor`).
    #[param(pattern = "^[A-Za-z0-9_-]{1,128}$", max_length = 128)]
    pub after: Option<String>,
    /// Page size: 1 to `queries.max_page_size` (100 unless configured otherwise); default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// Wait until this command's effects are visible.
    pub consistency_token: Option<String>,
}

/// Every provisioned tenant with its usage (operators).
#[utoipa::path(
    get, path = "/api/v1/admin/tenants", tag = "tenants",
    params(ListTenants,
           ("X-Consistency-Token" = Option<String>, Header, description = "Token from a command")),
    responses(
        (status = 200, description = "A page of tenants", body = TenantPage),
        (status = 400, description = "Invalid parameters", body = Problem),
        (status = 503, description = "Projection behind the token", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn list_tenants(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(params): QueryParams<ListTenants>,
    token: Consistency,
) -> Result<Json<TenantPage>, ApiError> {
    let own = caller.may_read(TenantAction::ListTenants, None)?;
    let limit = page_limit(params.limit, state.settings.queries.max_page_size)?;
    if let Some(after) = &params.after {
        domain::identity::TenantId::parse(after)
            .map_err(|error| ApiError::bad_request("invalid_query", format!("after: {error}")))?;
    }
    // A token names the tenant its command was on; an operator waits for it on any tenant.
    let tenant = token
        .0
        .as_ref()
        .and_then(|token| {
            token
                .aggregate_id
                .parse::<domain::identity::StreamId>()
                .ok()
        })
        .map_or_else(|| own.clone(), |stream| stream.tenant);
    consistent(&state, &tenant, token, &["Tenant"], TenantsProjection::NAME).await?;
    let tenants = tenants_model::list(
        &state.read_pool,
        params.after.as_deref(),
        limit + 1,
        Utc::now(),
    )
    .await?;
    let (tenants, next_cursor) = paged(tenants, limit, |last| last.tenant_id.clone());
    Ok(Json(TenantPage {
        items: tenants.into_iter().map(TenantDto::from).collect(),
        next_cursor,
    }))
}

/// One tenant with its usage (operators).
#[utoipa::path(
    get, path = "/api/v1/admin/tenants/{tenant}", tag = "tenants",
    params(TenantParam,
           ("X-Consistency-Token" = Option<String>, Header, description = "Token from a command"),
           ("consistency_token" = Option<String>, Query, description = "Token from a command")),
    responses(
        (status = 200, description = "The tenant", body = TenantDto),
        (status = 404, description = "No such tenant", body = Problem),
        (status = 503, description = "Projection behind the token", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn get_tenant(
    State(state): State<AppState>,
    caller: Caller,
    path: TenantPath,
    token: Consistency,
) -> Result<Response, ApiError> {
    caller.may_read(TenantAction::ListTenants, None)?;
    read_tenant(&state, &path.tenant, token).await
}

/// The caller's own tenant: its settings, status and usage (its admins and auditors).
#[utoipa::path(
    get, path = "/api/v1/tenant", tag = "tenants",
    params(("X-Consistency-Token" = Option<String>, Header, description = "Token from a command"),
           ("consistency_token" = Option<String>, Query, description = "Token from a command")),
    responses(
        (status = 200, description = "The caller's tenant", body = TenantDto),
        (status = 404, description = "The tenant predates provisioning: it has no settings of its own", body = Problem),
        (status = 503, description = "Projection behind the token", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn own_tenant(
    State(state): State<AppState>,
    caller: Caller,
    token: Consistency,
) -> Result<Response, ApiError> {
    let tenant = caller.may_read(TenantAction::ReadOwnTenant, None)?;
    read_tenant(&state, tenant, token).await
}

async fn read_tenant(
    state: &AppState,
    tenant: &domain::identity::TenantId,
    token: Consistency,
) -> Result<Response, ApiError> {
    consistent(state, tenant, token, &["Tenant"], TenantsProjection::NAME).await?;
    let view = tenants_model::get(&state.read_pool, tenant.as_str(), Utc::now())
        .await?
        .ok_or_else(|| ApiError::NotFound {
            code: "tenant_not_found",
            detail: format!("no provisioned tenant {tenant}"),
        })?;
    let version = view.version;
    Ok(with_etag(TenantDto::from(view), version))
}
