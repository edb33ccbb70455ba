//! Credentials created from the command line: the first admin API key of a tenant, and
//! operator keys, which no tenant's admin can create.
//!
//! There are no default credentials. Someone with database access runs
//! `backend create-operator-key` for whoever operates the whole system (operators then provision
//! tenants over HTTP or with `backend tenants provision`), or `backend create-admin-key --tenant
//! NAME`, which provisions the tenant first if it is not. The key is printed once and only its
//! hash is stored, as an ordinary `ApiKeyIssued` event whose actor is `system:bootstrap`.

use std::sync::Arc;

use chrono::Utc;
use commands::bus::CommandBus;
use commands::tenants::{already_provisioned, Adoption, FirstAdminKey, TenantCommands};
use commands::CommandContext;
use domain::aggregate::Guarded;
use domain::api_keys::{ApiKey, ApiKeyCommand, KeyName};
use domain::identity::{Role, Roles, StreamId, TenantId};
use domain::tenants::{Tenant, TenantName, TenantSettings};
use sqlx::PgPool;
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

/// Issues an admin API key for `tenant` and returns `(key id, key)`. A tenant not provisioned
/// yet is provisioned by it (named after its id, with the server's settings), with this key as
/// its first admin key.
///
/// # Errors
/// [`BootstrapError`].
pub async fn create_admin_key(
    settings: &Settings,
    tenant: &str,
    name: &str,
) -> Result<(Uuid, String), BootstrapError> {
    let tenant_id =
        TenantId::parse(tenant).map_err(|e| BootstrapError::Invalid(format!("--tenant: {e}")))?;
    let key_name =
        KeyName::parse(name).map_err(|e| BootstrapError::Invalid(format!("--name: {e}")))?;
    let pool = startup::connect_database(settings).await?;
    startup::migrate(&pool).await?;
    let tenants = tenant_commands(&pool);
    let state = tenants
        .load(&tenant_id)
        .await
        .map_err(|e| BootstrapError::Command(e.to_string()))?;
    if !matches!(state.state(), Tenant::Unprovisioned) {
        return create_key(settings, tenant, name, Role::Admin).await;
    }
    let key = Uuid::now_v7();
    let (secret, secret_hash) = new_api_key(&tenant_id, key);
    let named: String = tenant_id
        .as_str()
        .chars()
        .take(TenantName::MAX_CHARS)
        .collect();
    let display_name =
        TenantName::parse(&named).map_err(|e| BootstrapError::Invalid(format!("--tenant: {e}")))?;
    let first_key = FirstAdminKey {
        id: key,
        name: key_name,
        secret_hash,
    };
    let provisioned = tenants
        .provision(
            &system_context(&tenant_id),
            display_name,
            TenantSettings::default(),
            first_key,
            Adoption::Allowed,
            Utc::now(),
        )
        .await;
    match provisioned {
        Ok(_) => Ok((key, secret)),
        // Provisioned by someone else a moment ago: an ordinary admin key then.
        Err(error) if already_provisioned(&error) => {
            create_key(settings, tenant, name, Role::Admin).await
        }
        Err(error) => Err(BootstrapError::Command(error.to_string())),
    }
}

/// Tenant commands over the event store behind `pool`, as the command line runs them.
pub fn tenant_commands(pool: &PgPool) -> TenantCommands {
    // The relay (when running) picks the events up from the store; no wake-up needed here.
    let wakeup = Arc::new(Notify::new());
    TenantCommands::new(
        CommandBus::new(pool.clone(), wakeup.clone()),
        CommandBus::new(pool.clone(), wakeup),
    )
}

/// The context of a command given on the command line, in `tenant`.
pub fn system_context(tenant: &TenantId) -> CommandContext {
    let run_id = Uuid::now_v7().to_string();
    CommandContext {
        request_id: run_id.clone(),
        correlation_id: run_id.clone(),
        causation_id: run_id,
        actor: "system:bootstrap".to_owned(),
        tenant: tenant.clone(),
        idempotency: None,
    }
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
    let context = system_context(&tenant);
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
