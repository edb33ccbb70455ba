//! Operators' tenant commands: provision (with the first admin key, shown once), replace
//! settings, suspend, reactivate. Each is recorded in the tenant's own stream.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use chrono::Utc;
use commands::tenants::{Adoption, FirstAdminKey};
use domain::api_keys::KeyName;
use domain::identity::TenantId;
use domain::policy::TenantAction;
use domain::tenants::{SettingRefused, SuspensionReason, TenantCommand, TenantName};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{Settings, TenantParam};
use crate::http::auth::new_api_key;
use crate::http::error::{ApiError, FieldError, Problem};
use crate::http::extract::{Caller, ExpectedVersion, JsonBody, TenantPath};
use crate::http::respond::{accepted, changed, field, one_field, CommandAccepted};
use crate::http::schema;
use crate::routes::AppState;

/// Provision a tenant.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"tenant_id": "acme", "display_name": "Acme Translations", "settings": {"quota_jobs_per_day": 1000}})))]
pub struct ProvisionTenant {
    /// The tenant's id: part of every key and stream id; never changes.
    #[schema(pattern = "^[A-Za-z0-9_-]{1,128}$", max_length = 128)]
    pub tenant_id: String,
    /// How the tenant is shown.
    #[schema(value_type = schema::TenantName)]
    pub display_name: String,
    /// Its settings; the server's for every one left out.
    #[serde(default)]
    pub settings: Option<Settings>,
    /// The first admin key's name; `first admin` if absent.
    #[serde(default)]
    #[schema(value_type = Option<schema::KeyName>)]
    pub admin_key_name: Option<String>,
}

/// Suspend a tenant.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"reason": "invoice 2026-11 overdue"})))]
pub struct SuspendTenant {
    /// Why. Operators see it, and the tenant's auditors in its history; its callers are only
    /// told the tenant is suspended.
    #[schema(value_type = schema::SuspensionReason)]
    pub reason: String,
}

/// Settings refused by their bounds, as field errors named `settings.<setting>`.
fn settings_errors(refused: Vec<SettingRefused>, prefix: &str) -> Vec<FieldError> {
    refused
        .into_iter()
        .map(|refused| FieldError {
            field: format!("{prefix}{}", refused.setting),
            code: "invalid_setting".to_owned(),
            message: format!("{} must be {}", refused.setting, refused.rule),
        })
        .collect()
}

/// Provision a tenant and issue its first admin key (operators). The key is in the response
/// once and never again.
#[utoipa::path(
    post, path = "/api/v1/admin/tenants", tag = "tenants",
    request_body = ProvisionTenant,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    responses(
        (status = 201, description = "Provisioned; `api_key` holds the first admin key", body = CommandAccepted),
        (status = 409, description = "Already provisioned, or a tenant with history (adopt it from the command line)", body = Problem),
        (status = 422, description = "Invalid fields, each named", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn provision_tenant(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<ProvisionTenant>,
) -> Result<Response, ApiError> {
    let mut context = caller.may(TenantAction::ProvisionTenant, None, &body)?;
    let mut errors = Vec::new();
    let tenant = match TenantId::parse(&body.tenant_id) {
        Ok(tenant) => Some(tenant),
        Err(error) => {
            errors.push(FieldError {
                field: "tenant_id".to_owned(),
                code: "invalid_tenant".to_owned(),
                message: error.to_string(),
            });
            None
        }
    };
    let display_name = field(
        "display_name",
        TenantName::parse(&body.display_name),
        &mut errors,
    );
    let key_name = field(
        "admin_key_name",
        KeyName::parse(body.admin_key_name.as_deref().unwrap_or("first admin")),
        &mut errors,
    );
    let settings = match body.settings.clone().unwrap_or_default().into_domain() {
        Ok(settings) => Some(settings),
        Err(refused) => {
            errors.extend(settings_errors(refused, "settings."));
            None
        }
    };
    let (Some(tenant), Some(display_name), Some(key_name), Some(settings)) =
        (tenant, display_name, key_name, settings)
    else {
        return Err(ApiError::validation(errors));
    };
    context = caller.on_tenant(context, &tenant);
    let key = Uuid::now_v7();
    let (secret, secret_hash) = new_api_key(&tenant, key);
    let first_key = FirstAdminKey {
        id: key,
        name: key_name,
        secret_hash,
    };
    let outcome = state
        .write
        .tenants
        .provision(
            &context,
            display_name,
            settings,
            first_key,
            Adoption::NewOnly,
            Utc::now(),
        )
        .await?;
    let mut response = accepted(StatusCode::CREATED, None, outcome, Some(secret));
    if let Ok(location) = HeaderValue::from_str(&format!("/api/v1/admin/tenants/{tenant}")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// Replace a tenant's settings (operators). They take effect at once, in every process.
#[utoipa::path(
    put, path = "/api/v1/admin/tenants/{tenant}/settings", tag = "tenants",
    params(TenantParam,
           ("If-Match" = Option<String>, Header, description = "Expected version, e.g. \"3\""),
           ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    request_body = Settings,
    responses(
        (status = 200, description = "Replaced", body = CommandAccepted),
        (status = 404, description = "No such tenant", body = Problem),
        (status = 409, description = "Unchanged, or a version conflict", body = Problem),
        (status = 422, description = "Invalid settings, each named", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn change_tenant_settings(
    State(state): State<AppState>,
    caller: Caller,
    path: TenantPath,
    expected: ExpectedVersion,
    JsonBody(body): JsonBody<Settings>,
) -> Result<Response, ApiError> {
    let context = caller.may(TenantAction::ChangeTenantSettings, None, &body)?;
    let settings = body
        .into_domain()
        .map_err(|refused| ApiError::validation(settings_errors(refused, "")))?;
    let command = TenantCommand::ChangeSettings {
        settings,
        at: Utc::now(),
    };
    tenant_command(&state, &caller, context, &path.tenant, expected, command).await
}

/// Suspend a tenant (operators): its credentials are refused at once, its workers get no
/// work; nothing of its history is touched.
#[utoipa::path(
    post, path = "/api/v1/admin/tenants/{tenant}/suspend", tag = "tenants",
    params(TenantParam,
           ("If-Match" = Option<String>, Header, description = "Expected version, e.g. \"3\""),
           ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    request_body = SuspendTenant,
    responses(
        (status = 200, description = "Suspended", body = CommandAccepted),
        (status = 404, description = "No such tenant", body = Problem),
        (status = 409, description = "Already suspended, the caller's own tenant, or a version conflict", body = Problem),
        (status = 422, description = "Invalid reason", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn suspend_tenant(
    State(state): State<AppState>,
    caller: Caller,
    path: TenantPath,
    expected: ExpectedVersion,
    JsonBody(body): JsonBody<SuspendTenant>,
) -> Result<Response, ApiError> {
    let context = caller.may(TenantAction::SuspendTenant, None, &body)?;
    let reason = one_field("reason", SuspensionReason::parse(&body.reason))?;
    if path.tenant == caller.principal.tenant {
        return Err(ApiError::Conflict {
            code: "own_tenant",
            detail: format!(
                "tenant {} holds your own operator key: suspending it would lock you out; \
                 use `backend tenants suspend` if you mean it",
                path.tenant
            ),
        });
    }
    let command = TenantCommand::Suspend {
        reason,
        at: Utc::now(),
    };
    tenant_command(&state, &caller, context, &path.tenant, expected, command).await
}

/// Reactivate a suspended tenant (operators): its credentials work again at once.
#[utoipa::path(
    post, path = "/api/v1/admin/tenants/{tenant}/reactivate", tag = "tenants",
    params(TenantParam,
           ("If-Match" = Option<String>, Header, description = "Expected version, e.g. \"3\""),
           ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    responses(
        (status = 200, description = "Reactivated", body = CommandAccepted),
        (status = 404, description = "No such tenant", body = Problem),
        (status = 409, description = "Not suspended, or a version conflict", body = Problem),
        (status = 422, description = "An Idempotency-Key already used for another request", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn reactivate_tenant(
    State(state): State<AppState>,
    caller: Caller,
    path: TenantPath,
    expected: ExpectedVersion,
) -> Result<Response, ApiError> {
    let context = caller.may(TenantAction::ReactivateTenant, None, &())?;
    let command = TenantCommand::Reactivate { at: Utc::now() };
    tenant_command(&state, &caller, context, &path.tenant, expected, command).await
}

/// Runs an authorized command on `tenant`'s stream: `200` with what it changed.
async fn tenant_command(
    state: &AppState,
    caller: &Caller,
    context: commands::CommandContext,
    tenant: &TenantId,
    expected: ExpectedVersion,
    command: TenantCommand,
) -> Result<Response, ApiError> {
    let context = caller.on_tenant(context, tenant);
    let outcome = state
        .write
        .tenants
        .execute(&context, expected.0, command, Utc::now())
        .await?;
    Ok(changed(outcome))
}

impl Settings {
    /// The domain's settings, each checked against its bounds.
    fn into_domain(self) -> Result<domain::tenants::TenantSettings, Vec<SettingRefused>> {
        domain::tenants::TenantSettings::from(self).validated()
    }
}
