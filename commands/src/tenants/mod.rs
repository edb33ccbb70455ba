//! Tenant commands: provisioning (the tenant's stream and its first admin key), settings,
//! suspension and reactivation, and reading a tenant's current state for every request.

use chrono::{DateTime, Utc};
use domain::aggregate::{Guarded, Rejection, Versioned};
use domain::api_keys::{ApiKey, ApiKeyCommand, KeyName, SecretHash};
use domain::identity::{Role, Roles, StreamId, TenantId};
use domain::tenants::{Tenant, TenantCommand, TenantError, TenantName, TenantSettings};
use uuid::Uuid;

use crate::bus::{CommandBus, CommandError, CommandOutcome};
use crate::metadata::CommandContext;

/// The first admin key of a tenant being provisioned: its id, name and secret's hash (the
/// secret itself is generated and shown by the caller, never stored).
#[derive(Debug, Clone)]
pub struct FirstAdminKey {
    /// The key's id.
    pub id: Uuid,
    /// Its name.
    pub name: KeyName,
    /// The hash of its secret.
    pub secret_hash: SecretHash,
}

/// Issues tenant commands.
#[derive(Debug)]
pub struct TenantCommands {
    tenants: CommandBus<Tenant>,
    keys: CommandBus<ApiKey>,
}

impl TenantCommands {
    /// Tenant commands over `tenants`, issuing first admin keys through `keys`.
    pub fn new(tenants: CommandBus<Tenant>, keys: CommandBus<ApiKey>) -> Self {
        Self { tenants, keys }
    }

    /// Provisions the context's tenant and issues its first admin key.
    ///
    /// The key is issued first, then the tenant's stream is written with the key's id (and the
    /// request's idempotency key, so a retry answers with this outcome). A tenant found
    /// provisioned is refused before any key is issued. Should the process die between the two
    /// appends, the tenant is still unprovisioned and a retry provisions it with a new key; the
    /// orphaned key's secret was never shown to anyone.
    ///
    /// # Errors
    /// See [`CommandBus::execute`]; `TenantError::AlreadyProvisioned` for a tenant that is.
    pub async fn provision(
        &self,
        context: &CommandContext,
        display_name: TenantName,
        settings: TenantSettings,
        key: FirstAdminKey,
        now: DateTime<Utc>,
    ) -> Result<CommandOutcome, CommandError<TenantError>> {
        let attempt = || self.provision_once(context, &display_name, &settings, &key, now);
        self.tenants.idempotent(context, attempt).await
    }

    async fn provision_once(
        &self,
        context: &CommandContext,
        display_name: &TenantName,
        settings: &TenantSettings,
        key: &FirstAdminKey,
        now: DateTime<Utc>,
    ) -> Result<CommandOutcome, CommandError<TenantError>> {
        let tenant = stream(&context.tenant);
        if !matches!(
            self.tenants.load(&tenant).await?.state(),
            Tenant::Unprovisioned
        ) {
            return Err(CommandError::Rejected(Rejection::Domain(
                TenantError::AlreadyProvisioned,
            )));
        }
        let issue = ApiKeyCommand::Issue {
            name: key.name.clone(),
            roles: Roles::from([Role::Admin]),
            expires_at: None,
            secret_hash: key.secret_hash.clone(),
            at: now,
        };
        let name = issue.name();
        let key_stream = StreamId::new(context.tenant.clone(), key.id);
        // The idempotency key belongs to the provisioning, recorded with the tenant's stream.
        let key_context = CommandContext {
            idempotency: None,
            ..context.clone()
        };
        self.keys
            .append(&key_context, &key_stream, Guarded::new(issue), name, now)
            .await
            .map_err(|error| match error {
                CommandError::Conflict => CommandError::Conflict,
                CommandError::IdempotencyKeyReused => CommandError::IdempotencyKeyReused,
                CommandError::Constraint { constraint } => CommandError::Constraint { constraint },
                CommandError::Store(source) => CommandError::Store(source),
                // A fresh key id has no history to refuse it.
                CommandError::Rejected(rejection) => CommandError::Store(
                    format!("the first admin key was refused: {rejection}").into(),
                ),
            })?;
        let command = TenantCommand::Provision {
            display_name: display_name.clone(),
            settings: settings.clone(),
            first_admin_key: key.id,
            at: now,
        };
        let name = command.name();
        self.tenants
            .append(context, &tenant, Guarded::new(command), name, now)
            .await
    }

    /// Changes, suspends or reactivates the context's tenant.
    ///
    /// # Errors
    /// See [`CommandBus::execute`].
    pub async fn execute(
        &self,
        context: &CommandContext,
        expected_version: Option<u64>,
        command: TenantCommand,
        now: DateTime<Utc>,
    ) -> Result<CommandOutcome, CommandError<TenantError>> {
        let name = command.name();
        let guarded = Guarded::expecting(expected_version, command);
        self.tenants
            .execute(context, &stream(&context.tenant), guarded, name, now)
            .await
    }

    /// The tenant's current state, read from the event store (so a suspension made by any
    /// process holds at once).
    ///
    /// # Errors
    /// When the store fails or an event does not decode.
    pub async fn load(
        &self,
        tenant: &TenantId,
    ) -> Result<Versioned<Tenant>, CommandError<TenantError>> {
        self.tenants.load(&stream(tenant)).await
    }
}

/// The tenant's own stream.
fn stream(tenant: &TenantId) -> StreamId {
    StreamId::new(tenant.clone(), Tenant::stream_id(tenant))
}

/// Whether `error` is the refusal of a second provisioning.
pub fn already_provisioned(error: &CommandError<TenantError>) -> bool {
    matches!(
        error,
        CommandError::Rejected(Rejection::Domain(TenantError::AlreadyProvisioned))
    )
}
