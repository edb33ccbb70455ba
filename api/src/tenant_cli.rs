//! The operator's command line for tenants: list them with their usage, provision one (printing
//! its first admin key once), replace its settings, suspend and reactivate it. Each returns the
//! text to print, so tests read what a person reads. Commands are recorded with the actor
//! `system:bootstrap`, like every command given on the command line.

use std::fmt::Write as _;

use chrono::Utc;
use commands::tenants::{Adoption, FirstAdminKey};
use domain::api_keys::KeyName;
use domain::identity::TenantId;
use domain::tenants::{SuspensionReason, TenantCommand, TenantName, TenantSettings};
use sqlx::PgPool;
use uuid::Uuid;

use crate::bootstrap::{system_context, tenant_commands};
use crate::http::auth::new_api_key;

/// Why a tenant command failed; the message says what to change.
#[derive(Debug, thiserror::Error)]
pub enum TenantCliError {
    /// An argument is not acceptable.
    #[error("{0}")]
    Invalid(String),
    /// The command was refused or failed.
    #[error("{0}")]
    Command(String),
    /// The database failed.
    #[error("database error")]
    Database(#[from] sqlx::Error),
}

fn tenant(raw: &str) -> Result<TenantId, TenantCliError> {
    TenantId::parse(raw).map_err(|e| TenantCliError::Invalid(format!("--tenant: {e}")))
}

/// Settings from JSON (`{"quota_jobs_per_day": 100}`), each checked against its bounds.
fn settings(raw: &str) -> Result<TenantSettings, TenantCliError> {
    // Read as the API reads them: an unknown setting is an error, not silently ignored.
    let settings: crate::routes::tenants::Settings = serde_json::from_str(raw)
        .map_err(|e| TenantCliError::Invalid(format!("--settings: {e}")))?;
    TenantSettings::from(settings)
        .validated()
        .map_err(|refused| {
            let each: Vec<String> = refused
                .iter()
                .map(|r| format!("{} must be {}", r.setting, r.rule))
                .collect();
            TenantCliError::Invalid(format!("--settings: {}", each.join("; ")))
        })
}

/// Every provisioned tenant with its status, usage and settings.
///
/// # Errors
/// [`TenantCliError`].
pub async fn list(pool: &PgPool) -> Result<String, TenantCliError> {
    let mut out = format!(
        "{:<24} {:<10} {:>10} {:>14}  {:<24} {}\n",
        "TENANT", "STATUS", "JOBS TODAY", "STORED BYTES", "NAME", "SETTINGS"
    );
    let mut after: Option<String> = None;
    loop {
        let page = projections::tenants::list(pool, after.as_deref(), 500, Utc::now()).await?;
        for tenant in &page {
            let settings = serde_json::to_string(&tenant.settings.0).unwrap_or_default();
            let _ = writeln!(
                out,
                "{:<24} {:<10} {:>10} {:>14}  {:<24} {settings}",
                tenant.tenant_id,
                tenant.status,
                tenant.jobs_today,
                tenant.stored_bytes,
                tenant.display_name
            );
        }
        match page.last() {
            Some(last) if page.len() == 500 => after = Some(last.tenant_id.clone()),
            _ => break,
        }
    }
    Ok(out)
}

/// Provisions `tenant` and prints its first admin key (once).
///
/// # Errors
/// [`TenantCliError`].
pub async fn provision(
    pool: &PgPool,
    tenant_raw: &str,
    name: &str,
    settings_raw: &str,
) -> Result<String, TenantCliError> {
    let tenant = tenant(tenant_raw)?;
    let display_name =
        TenantName::parse(name).map_err(|e| TenantCliError::Invalid(format!("--name: {e}")))?;
    let settings = settings(settings_raw)?;
    let key = Uuid::now_v7();
    let (secret, secret_hash) = new_api_key(&tenant, key);
    let first_key = FirstAdminKey {
        id: key,
        name: KeyName::parse("first admin").map_err(|e| TenantCliError::Invalid(e.to_string()))?,
        secret_hash,
    };
    tenant_commands(pool)
        .provision(
            &system_context(&tenant),
            display_name,
            settings,
            first_key,
            Adoption::Allowed,
            Utc::now(),
        )
        .await
        .map_err(|e| TenantCliError::Command(e.to_string()))?;
    Ok(format!(
        "Tenant {tenant} provisioned. Its first admin API key (id {key}) is shown only now; \
         store it safely:\n{secret}\n"
    ))
}

/// Runs a settings change, suspension or reactivation on `tenant`.
///
/// # Errors
/// [`TenantCliError`].
pub async fn change(
    pool: &PgPool,
    tenant_raw: &str,
    change: TenantChange<'_>,
) -> Result<String, TenantCliError> {
    let tenant = tenant(tenant_raw)?;
    let at = Utc::now();
    let (command, done) = match change {
        TenantChange::Settings(raw) => (
            TenantCommand::ChangeSettings {
                settings: settings(raw)?,
                at,
            },
            "settings replaced",
        ),
        TenantChange::Suspend(reason) => (
            TenantCommand::Suspend {
                reason: SuspensionReason::parse(reason)
                    .map_err(|e| TenantCliError::Invalid(format!("--reason: {e}")))?,
                at,
            },
            "suspended: its credentials are refused",
        ),
        TenantChange::Reactivate => (TenantCommand::Reactivate { at }, "reactivated"),
    };
    let outcome = tenant_commands(pool)
        .execute(&system_context(&tenant), None, command, at)
        .await
        .map_err(|e| TenantCliError::Command(e.to_string()))?;
    Ok(format!(
        "Tenant {tenant} {done} (version {}).\n",
        outcome.version
    ))
}

/// What [`change`] does.
#[derive(Debug, Clone, Copy)]
pub enum TenantChange<'a> {
    /// Replace the settings with these (JSON).
    Settings(&'a str),
    /// Suspend, for this reason.
    Suspend(&'a str),
    /// Reactivate.
    Reactivate,
}
