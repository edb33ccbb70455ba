//! Projection operations: projection lag, parked streams, and retrying them.
//!
//! Lag figures are system-wide numbers and reveal no tenant's data; parked streams and their
//! errors carry event data, so a tenant's admins and auditors see and retry only their own
//! tenant's. Operators (a role only the command line grants) see every tenant's, retry any, and
//! alone may rebuild, since a rebuild rewrites every tenant's read model.

use axum::extract::{Path, State};
use axum::Json;
use commands::feed::{self, FeedCursor};
use domain::identity::{Role, TenantId};
use domain::policy::OperationAction;
use projections::registry::Registered;
use projections::status::{self, ParkedStream, ProjectionStatus};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::http::error::ApiError;
use crate::http::extract::{Caller, QueryParams};
use crate::routes::AppState;

/// Lag of every projection, and what the relay holds back.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProjectionsOverview {
    /// Committed events the relay may not publish yet because an older write transaction is
    /// still open (they wait behind the transaction horizon).
    pub held_by_horizon: i64,
    /// One entry per projection.
    #[schema(value_type = Vec<Object>)]
    pub projections: Vec<ProjectionStatus>,
}

/// Whose stream a retry concerns.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RetryScope {
    /// Another tenant's stream (operators only); the caller's tenant if absent.
    #[param(min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_-]{1,128}$")]
    pub tenant: Option<String>,
}

/// What a retry did.
#[derive(Debug, Serialize, ToSchema)]
pub struct RetryResult {
    /// Parked events applied now.
    #[schema(value_type = u64, maximum = 9_223_372_036_854_775_807_u64)]
    pub applied: usize,
    /// Events still parked (the first failed again, or waits for a missing one).
    #[schema(value_type = u64, maximum = 9_223_372_036_854_775_807_u64)]
    pub still_parked: usize,
}

/// The stream ids whose parked streams and errors `caller` may see: every tenant's for an
/// operator, its own tenant's for anyone else.
fn scope(caller: &Caller, tenant: &TenantId) -> String {
    if caller.principal.has(Role::Operator) {
        String::new()
    } else {
        format!("{tenant}:")
    }
}

fn projection(name: &str) -> Result<Registered, ApiError> {
    Registered::by_name(name).ok_or_else(|| ApiError::NotFound {
        code: "projection_not_found",
        detail: format!("no projection named {name:?}"),
    })
}

/// Lag, parked counts and last errors of every projection.
#[utoipa::path(
    get, path = "/api/v1/admin/projections", tag = "admin",
    responses((status = 200, description = "Every projection's lag", body = ProjectionsOverview)),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn list_projections(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<ProjectionsOverview>, ApiError> {
    let tenant = caller.may_read(OperationAction::ReadProjectionStatus, None)?;
    let scope = scope(&caller, tenant);
    let mut projections = Vec::new();
    for projection in Registered::ALL {
        projections.push(
            status::status(
                &state.pool,
                projection.name(),
                projection.aggregate_types(),
                state.settings.projections.partitions,
                &scope,
            )
            .await?,
        );
    }
    let cursor = state
        .relay
        .checkpoint()
        .await
        .unwrap_or(FeedCursor::default());
    let held_by_horizon = feed::held_by_horizon(&state.pool, cursor).await?;
    Ok(Json(ProjectionsOverview {
        held_by_horizon,
        projections,
    }))
}

/// The parked streams of one projection: the caller's tenant's, or an operator's every
/// tenant's.
#[utoipa::path(
    get, path = "/api/v1/admin/projections/{name}/parked", tag = "admin",
    params(("name" = inline(ProjectionName), Path, description = "Projection name")),
    responses(
        (status = 200, description = "Parked streams, oldest first (at most 1,000)", body = Vec<Object>),
        (status = 404, description = "No such projection", body = crate::http::error::Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn list_parked(
    State(state): State<AppState>,
    Path(name): Path<String>,
    caller: Caller,
) -> Result<Json<Vec<ParkedStream>>, ApiError> {
    let tenant = caller.may_read(OperationAction::ReadProjectionStatus, None)?;
    let projection = projection(&name)?;
    let mut parked =
        status::parked(&state.pool, projection.name(), &scope(&caller, tenant)).await?;
    parked.truncate(PARKED_LISTED);
    Ok(Json(parked))
}

/// The most parked streams one listing shows (the oldest first); the CLI lists them all.
const PARKED_LISTED: usize = 1_000;

/// The name of a registered projection.
#[derive(Debug)]
pub struct ProjectionName;

impl utoipa::PartialSchema for ProjectionName {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(Registered::ALL.iter().map(|p| p.name())))
            .into()
    }
}

/// A rebuild was started.
#[derive(Debug, Serialize, ToSchema)]
pub struct RebuildStarted {
    /// The projection being rebuilt.
    pub projection: String,
    /// Follow its progress in `GET /api/v1/admin/projections` (`rebuild`).
    pub status: String,
}

/// Starts a rebuild of a projection from the event store, in the background and without
/// downtime: queries keep reading the current tables until the atomic swap.
#[utoipa::path(
    post, path = "/api/v1/admin/projections/{name}/rebuild", tag = "admin",
    params(("name" = inline(ProjectionName), Path, description = "Projection name")),
    responses(
        (status = 202, description = "Rebuild started", body = RebuildStarted),
        (status = 404, description = "No such projection", body = crate::http::error::Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn rebuild_projection(
    State(state): State<AppState>,
    Path(name): Path<String>,
    caller: Caller,
) -> Result<(axum::http::StatusCode, Json<RebuildStarted>), ApiError> {
    caller.may(OperationAction::RebuildProjection, None, &())?;
    let projection = projection(&name)?;
    crate::rebuild::spawn_rebuild(projection, state.pool.clone());
    Ok((
        axum::http::StatusCode::ACCEPTED,
        Json(RebuildStarted {
            projection: name,
            status: "started".to_owned(),
        }),
    ))
}

/// Retries the parked stream(s) of aggregate `id` in the caller's tenant, applying the parked
/// events in order with the projection's current code.
#[utoipa::path(
    post, path = "/api/v1/admin/projections/{name}/parked/{id}/retry", tag = "admin",
    params(("name" = inline(ProjectionName), Path, description = "Projection name"),
           ("id" = Uuid, Path, description = "The parked aggregate's id"),
           RetryScope),
    responses(
        (status = 200, description = "Retried", body = RetryResult),
        (status = 404, description = "Nothing parked for this id", body = crate::http::error::Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn retry_parked(
    State(state): State<AppState>,
    Path((name, id)): Path<(String, String)>,
    QueryParams(query): QueryParams<RetryScope>,
    caller: Caller,
) -> Result<Json<RetryResult>, ApiError> {
    let id = Uuid::parse_str(&id).map_err(|_| {
        ApiError::bad_request(
            "invalid_id",
            format!("`{id}` is not a valid id: ids are UUIDs"),
        )
    })?;
    let context = caller.may(OperationAction::RetryParked, Some(id), &())?;
    let tenant = match query.tenant {
        None => context.tenant,
        Some(_) if !caller.principal.has(Role::Operator) => {
            return Err(ApiError::Forbidden(
                "only operators may retry another tenant's streams".to_owned(),
            ))
        }
        Some(tenant) => TenantId::parse(&tenant)
            .map_err(|error| ApiError::bad_request("invalid_query", error.to_string()))?,
    };
    let projection = projection(&name)?;
    let stream = format!("{tenant}:{id}");
    let parked = status::parked(&state.pool, projection.name(), &stream).await?;
    if parked.is_empty() {
        return Err(ApiError::NotFound {
            code: "stream_not_parked",
            detail: format!("nothing of {id} is parked in projection {name}"),
        });
    }
    let mut result = RetryResult {
        applied: 0,
        still_parked: 0,
    };
    let source = crate::rebuild::FeedSource::new(state.pool.clone());
    for stream in parked {
        let outcome = projection
            .retry(
                &state.pool,
                &source,
                &stream.aggregate_type,
                &stream.aggregate_id,
            )
            .await
            .map_err(ApiError::failed)?;
        result.applied += outcome.applied;
        result.still_parked += outcome.still_parked;
    }
    Ok(Json(result))
}
