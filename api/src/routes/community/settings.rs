//! The community's settings: whether anyone, signed in or not, may read it.

use axum::extract::State;
use axum::response::Response;
use chrono::{DateTime, Utc};
use domain::policy::CommunityAction;
use projections::community::{self as model};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::caught_up;
use crate::http::error::{ApiError, Problem};
use crate::http::extract::{Caller, Consistency, JsonBody};
use crate::http::respond::{changed, with_etag, CommandAccepted};
use crate::routes::AppState;

/// The community's settings.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"public_pages": true})))]
pub struct CommunitySettings {
    /// Whether anyone may read the tenant's categories, posts and comments at
    /// `/api/v1/public/{tenant}/…` without credentials (never removed or hidden writing).
    pub public_pages: bool,
}

/// The community's settings as they stand.
#[derive(Debug, Serialize, ToSchema)]
pub struct CommunitySettingsDto {
    /// Whether the public pages are on (off until an admin turns them on).
    pub public_pages: bool,
    /// The stream version this reflects (0: never set).
    pub version: i64,
    /// When they last changed, if ever.
    pub updated_at: Option<DateTime<Utc>>,
}

/// Change the community's settings (admins). Asking for what is set already changes nothing.
#[utoipa::path(
    put, path = "/api/v1/community/settings", tag = "community",
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    request_body = CommunitySettings,
    responses(
        (status = 200, description = "The settings are as asked", body = CommandAccepted),
        (status = 422, description = "Invalid fields", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn set_settings(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<CommunitySettings>,
) -> Result<Response, ApiError> {
    let context = caller.may(CommunityAction::ManageCommunitySettings, None, &body)?;
    let outcome = state
        .write
        .community
        .set_public_pages(&context, body.public_pages, Utc::now())
        .await?;
    Ok(changed(outcome))
}

/// The community's settings (admins, moderators, auditors).
#[utoipa::path(
    get, path = "/api/v1/community/settings", tag = "community",
    params(("X-Consistency-Token" = Option<String>, Header, description = "Token from a command"),
           ("consistency_token" = Option<String>, Query, description = "Token from a command")),
    responses(
        (status = 200, description = "The settings", body = CommunitySettingsDto),
        (status = 503, description = "Projection behind the token", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn get_settings(
    State(state): State<AppState>,
    caller: Caller,
    token: Consistency,
) -> Result<Response, ApiError> {
    let tenant = caller.may_read(CommunityAction::ReadCommunitySettings, None)?;
    caught_up(&state, tenant, token).await?;
    let settings = model::settings(&state.read_pool, tenant.as_str()).await?;
    let dto = CommunitySettingsDto {
        public_pages: settings.public_pages,
        version: settings.version,
        updated_at: settings.updated_at,
    };
    Ok(with_etag(dto, settings.version))
}
