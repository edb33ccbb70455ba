//! User commands: the bus plus the one rule no single aggregate can decide, email uniqueness.

use chrono::{DateTime, Utc};
use domain::aggregate::{Guarded, Rejection, Versioned};
use domain::identity::StreamId;
use domain::users::{Email, User, UserCommand, UserError};
use sqlx::PgPool;
use uuid::Uuid;

use crate::bus::{CommandBus, CommandError, CommandOutcome};
use crate::metadata::CommandContext;

/// The constraint the event store raises when a registration claims a taken address.
const EMAIL_CLAIM: &str = "user_email_claims_pkey";

/// Issues user commands.
#[derive(Debug)]
pub struct UserCommands {
    bus: CommandBus<User>,
    pool: PgPool,
}

impl UserCommands {
    /// User commands over `bus`; `pool` reads the email claims.
    pub fn new(bus: CommandBus<User>, pool: PgPool) -> Self {
        Self { bus, pool }
    }

    /// Runs a user command on user `user` of the context's tenant.
    ///
    /// Registration first looks the address up so the common case answers `email_taken`
    /// before touching the aggregate; the claim written with the event closes the race.
    ///
    /// # Errors
    /// See [`CommandBus::execute`]; a taken address is `UserError::EmailTaken`.
    pub async fn execute(
        &self,
        context: &CommandContext,
        user: Uuid,
        expected_version: Option<u64>,
        command: UserCommand,
        now: DateTime<Utc>,
    ) -> Result<CommandOutcome, CommandError<UserError>> {
        // The email check runs inside the idempotent attempt: a retry answers before it, and a
        // twin that won the race (so the email is "taken") hands us its outcome.
        let attempt = self.checked_execute(context, user, expected_version, command, now);
        self.bus.idempotent(context, attempt).await
    }

    async fn checked_execute(
        &self,
        context: &CommandContext,
        user: Uuid,
        expected_version: Option<u64>,
        command: UserCommand,
        now: DateTime<Utc>,
    ) -> Result<CommandOutcome, CommandError<UserError>> {
        let stream = StreamId::new(context.tenant.clone(), user);
        let taken = || CommandError::Rejected(Rejection::Domain(UserError::EmailTaken));
        if let UserCommand::Register { email, .. } = &command {
            if self.email_claimed_by_other(context, email, &stream).await? {
                return Err(taken());
            }
        }
        let name = command.name();
        let guarded = Guarded::expecting(expected_version, command);
        match self.bus.append(context, &stream, guarded, name, now).await {
            Err(CommandError::Constraint { constraint }) if constraint == EMAIL_CLAIM => {
                Err(taken())
            }
            other => other,
        }
    }

    /// The user's current state in `stream` (for authentication).
    ///
    /// # Errors
    /// When the store fails.
    pub async fn load(
        &self,
        stream: &StreamId,
    ) -> Result<Versioned<User>, CommandError<UserError>> {
        self.bus.load(stream).await
    }

    async fn email_claimed_by_other(
        &self,
        context: &CommandContext,
        email: &Email,
        stream: &StreamId,
    ) -> Result<bool, CommandError<UserError>> {
        let owner: Option<String> = sqlx::query_scalar(
            "SELECT user_id FROM user_email_claims WHERE tenant_id = $1 AND email = $2",
        )
        .bind(context.tenant.as_str())
        .bind(email.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(|error| CommandError::Store(Box::new(error)))?;
        // The user's own claim is not "taken": registering twice on one id is the aggregate's
        // `AlreadyRegistered`, a clearer answer.
        Ok(owner.is_some_and(|owner| owner != stream.to_string()))
    }
}
