//! API key routes: issue (the key is shown once) and revoke. Keys are issued to machines; a
//! revoked key is refused at once.

use std::collections::BTreeSet;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use domain::aggregate::Guarded;
use domain::api_keys::{ApiKeyCommand, KeyName};
use domain::identity::{Role, StreamId};
use domain::policy::ApiKeyAction;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::http::auth::new_api_key;
use crate::http::error::{ApiError, Problem};
use crate::http::extract::{Caller, IdPath, JsonBody};
use crate::http::respond::{accepted, changed, one_field, CommandAccepted};
use crate::http::schema::{self, GrantableRole};
use crate::routes::{AppState, Routes};

/// The API key routes.
pub fn routes() -> Routes {
    Routes::new()
        .tag("api-keys", "API keys: issue (shown once), revoke")
        .command(ApiKeyAction::IssueApiKey, routes!(issue_api_key))
        .command(ApiKeyAction::RevokeApiKey, routes!(revoke_api_key))
}

/// Issue an API key.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"name": "ci", "roles": ["worker"], "expires_at": "2030-01-01T00:00:00Z"})))]
pub struct IssueApiKey {
    /// What the key is for.
    #[schema(value_type = schema::KeyName)]
    pub name: String,
    /// At least one role, each at most once.
    #[serde(deserialize_with = "schema::unique")]
    #[schema(min_items = 1, max_items = 5)]
    pub roles: BTreeSet<GrantableRole>,
    /// When the key stops working (later than now); never if absent.
    pub expires_at: Option<DateTime<Utc>>,
}

/// Issue an API key (admins). The key is in the response once and never again.
#[utoipa::path(
    post, path = "/api/v1/api-keys", tag = "api-keys",
    request_body = IssueApiKey,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    responses(
        (status = 201, description = "Issued; `api_key` holds the key", body = CommandAccepted),
        (status = 422, description = "Invalid fields", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn issue_api_key(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<IssueApiKey>,
) -> Result<Response, ApiError> {
    let context = caller.may(ApiKeyAction::IssueApiKey, None, &body)?;
    let name = one_field("name", KeyName::parse(&body.name))?;
    let key = Uuid::now_v7();
    let (secret, secret_hash) = new_api_key(&context.tenant, key);
    let command = ApiKeyCommand::Issue {
        name,
        roles: body.roles.iter().copied().map(Role::from).collect(),
        expires_at: body.expires_at,
        secret_hash,
        at: Utc::now(),
    };
    let stream = StreamId::new(context.tenant.clone(), key);
    let name = command.name();
    let outcome = state
        .write
        .api_keys
        .execute(&context, &stream, Guarded::new(command), name, Utc::now())
        .await?;
    Ok(accepted(
        StatusCode::CREATED,
        Some("/api/v1/api-keys"),
        outcome,
        Some(secret),
    ))
}

/// Revoke an API key (admins). Requests with it are refused at once.
#[utoipa::path(
    post, path = "/api/v1/api-keys/{id}/revoke", tag = "api-keys",
    params(("id" = Uuid, Path, description = "Key id"),
           ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    responses(
        (status = 200, description = "Revoked", body = CommandAccepted),
        (status = 404, description = "No such key", body = Problem),
        (status = 422, description = "Already revoked", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn revoke_api_key(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    caller: Caller,
) -> Result<Response, ApiError> {
    let context = caller.may(ApiKeyAction::RevokeApiKey, Some(id), &())?;
    let command = ApiKeyCommand::Revoke { at: Utc::now() };
    let stream = StreamId::new(context.tenant.clone(), id);
    let name = command.name();
    let outcome = state
        .write
        .api_keys
        .execute(&context, &stream, Guarded::new(command), name, Utc::now())
        .await?;
    Ok(changed(outcome))
}
