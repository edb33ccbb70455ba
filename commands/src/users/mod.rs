//! User commands: the bus plus the one rule no single aggregate can decide, email uniqueness.

use chrono::{DateTime, Utc};
use domain::aggregate::{Guarded, Rejection, Versioned};
use domain::identity::StreamId;
use domain::users::{User, UserCommand, UserError};
use uuid::Uuid;

use crate::bus::{CommandBus, CommandError, CommandOutcome};
use crate::metadata::CommandContext;

/// The constraint the event store raises when a registration claims a taken address.
const EMAIL_CLAIM: &str = "user_email_claims_pkey";

/// Issues user commands.
#[derive(Debug)]
pub struct UserCommands {
    bus: CommandBus<User>,
}

impl UserCommands {
    /// User commands over `bus`.
    pub fn new(bus: CommandBus<User>) -> Self {
        Self { bus }
    }

    /// Runs a user command on user `user` of the context's tenant.
    ///
    /// A registration's address is claimed by the event store in the appending statement (the
    /// `0002_user_email_claims` trigger), so a taken address costs nothing extra to find.
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
        // A retry, or a twin that won the race (so the email is "taken"), fails the attempt and
        // answers with the outcome its key recorded.
        let attempt =
            || self.checked_execute(context, user, expected_version, command.clone(), now);
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
        let name = command.name();
        let guarded = Guarded::expecting(expected_version, command);
        match self.bus.append(context, &stream, guarded, name, now).await {
            Err(CommandError::Constraint { constraint }) if constraint == EMAIL_CLAIM => Err(
                CommandError::Rejected(Rejection::Domain(UserError::EmailTaken)),
            ),
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
    /// Waits until the snapshots started after its commands are written.
    pub async fn snapshots_saved(&self) {
        self.bus.snapshots_saved().await;
    }
}
