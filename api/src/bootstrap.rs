//! Credentials created from the command line: the first admin API key of a tenant, and
//! operator keys, which no tenant's admin can create.
//!
//! There are no default credentials. Someone with database access runs
//! `backend create-admin-key --tenant NAME` once per tenant, and `backend create-operator-key`
//! for whoever operates the whole system; the key is printed once and only its hash is stored,
//! as an ordinary `ApiKeyIssued` event whose actor is `system:bootstrap`.

use std::sync::Arc;

use chrono::Utc;
use commands::bus::CommandBus;
use commands::CommandContext;
use domain::aggregate::Guarded;
use domain::api_keys::{ApiKey, ApiKeyCommand, KeyName};
use domain::identity::{Role, Roles, StreamId, TenantId};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::config::Settings;
use crate::http::auth::new_api_key;
use crate::startup;

/// Why the key could not be created.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// The tenant or name is not acceptable.
    #[error("{0}")]
    Invalid(String),
    /// The database failed.
    #[error(transparent)]
    Startup(#[from] startup::StartupError),
    /// The command failed.
    #[error("issuing the key failed: {0}")]
    Command(String),
}

/// Issues an admin API key for `tenant` and returns `(key id, key)`.
///
/// # Errors
/// [`BootstrapError`].
pub async fn create_admin_key(
    settings: &Settings,
    tenant: &str,
    name: &str,
) -> Result<(Uuid, String), BootstrapError> {
    create_key(settings, tenant, name, Role::Admin).await
}

/// Issues an operator API key (recorded in `tenant`, acting on every tenant's projections) and
/// returns `(key id, key)`.
///
/// # Errors
/// [`BootstrapError`].
pub async fn create_operator_key(
    settings: &Settings,
    tenant: &str,
    name: &str,
) -> Result<(Uuid, String), BootstrapError> {
    create_key(settings, tenant, name, Role::Operator).await
}

async fn create_key(
    settings: &Settings,
    tenant: &str,
    name: &str,
    role: Role,
) -> Result<(Uuid, String), BootstrapError> {
    let tenant =
        TenantId::parse(tenant).map_err(|e| BootstrapError::Invalid(format!("--tenant: {e}")))?;
    let name = KeyName::parse(name).map_err(|e| BootstrapError::Invalid(format!("--name: {e}")))?;
    let pool = startup::connect_database(settings).await?;
    startup::migrate(&pool).await?;
    // The relay (when running) picks the event up from the store; no wake-up needed here.
    let bus = CommandBus::<ApiKey>::new(pool, Arc::new(Notify::new()));
    let key = Uuid::now_v7();
    let (secret, secret_hash) = new_api_key(&tenant, key);
    let command = ApiKeyCommand::Issue {
        name,
        roles: Roles::from([role]),
        expires_at: None,
        secret_hash,
        at: Utc::now(),
    };
    let run_id = Uuid::now_v7().to_string();
    let context = CommandContext {
        request_id: run_id.clone(),
        correlation_id: run_id.clone(),
        causation_id: run_id,
        actor: "system:bootstrap".to_owned(),
        tenant: tenant.clone(),
        idempotency: None,
    };
    let command_name = command.name();
    bus.execute(
        &context,
        &StreamId::new(tenant, key),
        Guarded::new(command),
        command_name,
        Utc::now(),
    )
    .await
    .map_err(|e| BootstrapError::Command(e.to_string()))?;
    Ok((key, secret))
}
