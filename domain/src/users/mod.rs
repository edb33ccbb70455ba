//! Users: people who submit work, moderate, or administer a tenant.
//!
//! Email uniqueness across users is not decidable inside one aggregate; the event store enforces
//! it in the same transaction as the append (see `eventstore-migrations`, `user_email_claims`).

mod aggregate;
mod commands;
mod error;
mod events;
mod policy;
mod values;

#[cfg(test)]
mod stored_events;
#[cfg(test)]
mod tests;

pub use aggregate::{User, UserStatus};
pub use commands::UserCommand;
pub use error::UserError;
pub use events::UserEvent;
pub use policy::UserAction;
pub use values::{DisplayName, Email, UserId};
