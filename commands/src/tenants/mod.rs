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

/// Whether provisioning may adopt a tenant that already has history (keys, users, jobs made
/// before tenants were provisioned).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adoption {
    /// Only a tenant with no history: what operators may do over HTTP, so that provisioning
    /// never hands an operator an admin key to an existing tenant's data.
    NewOnly,
    /// A tenant with history too: from the command line, by someone with database access.
    Allowed,
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
        adoption: Adoption,
        now: DateTime<Utc>,
    ) -> Result<CommandOutcome, CommandError<TenantError>> {
        let attempt =
            || self.provision_once(context, &display_name, &settings, &key, adoption, now);
        self.tenants.idempotent(context, attempt).await
    }

    async fn provision_once(
        &self,
        context: &CommandContext,
        display_name: &TenantName,
        settings: &TenantSettings,
        key: &FirstAdminKey,
        adoption: Adoption,
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
        if adoption == Adoption::NewOnly && self.has_history(&context.tenant).await? {
            return Err(CommandError::Rejected(Rejection::Domain(
                TenantError::HasHistory,
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
        let provisioned = self
            .tenants
            .append(context, &tenant, Guarded::new(command), name, now)
            .await;
        if provisioned.is_err() {
            // Another provisioning won (or the store failed): the key issued above must not
            // stay usable with a secret nobody holds.
            let revoke = ApiKeyCommand::Revoke { at: now };
            let name = revoke.name();
            if let Err(error) = self
                .keys
                .append(&key_context, &key_stream, Guarded::new(revoke), name, now)
                .await
            {
                tracing::warn!(key = %key.id, error = %error, "revoking an unused first admin key failed");
            }
        }
        provisioned
    }

    /// Whether any event of `tenant` is stored but the keys an earlier, unfinished provisioning
    /// by an operator issued (so that retrying it is not refused for its own leftovers).
    async fn has_history(&self, tenant: &TenantId) -> Result<bool, CommandError<TenantError>> {
        sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM events
                             WHERE tenant_id = $1
                               AND NOT (aggregate_type = 'ApiKey'
                                        AND metadata ->> 'actor' LIKE 'operator:%'))",
        )
        .bind(tenant.as_str())
        .fetch_one(self.tenants.pool())
        .await
        .map_err(|error| CommandError::Store(Box::new(error)))
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
