use crate::error::{DomainError, ErrorKind};
use crate::names::CodePoint;

/// Why a user command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    /// The email address is malformed.
    #[error("invalid email address: {reason}")]
    InvalidEmail {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The display name is too short or too long.
    #[error("display name must be {min} to {max} characters, got {actual}")]
    DisplayNameLength {
        /// Minimum characters.
        min: usize,
        /// Maximum characters.
        max: usize,
        /// Characters given (after trimming).
        actual: usize,
    },
    /// The display name contains control characters.
    #[error("display name must not contain control characters")]
    DisplayNameCharacters,
    /// The display name contains a character a reader cannot see that changes what is shown.
    #[error(
        "display name must not contain invisible or bidirectional control characters ({character})"
    )]
    DisplayNameInvisibleCharacter {
        /// The first such character.
        character: CodePoint,
    },
    /// A user with this id is already registered.
    #[error("a user with this id is already registered")]
    AlreadyRegistered,
    /// Another user already registered this email address.
    #[error("this email address is already registered")]
    EmailTaken,
    /// No user with this id exists.
    #[error("no such user")]
    NotFound,
    /// The user is deactivated and cannot act or be changed until reactivated.
    #[error("the user is deactivated")]
    Deactivated,
    /// Reactivating a user who is active.
    #[error("the user is already active")]
    AlreadyActive,
    /// Setting the roles the user already has.
    #[error("the roles are unchanged")]
    RolesUnchanged,
    /// Changing the display name to the one it already has.
    #[error("the display name is unchanged")]
    DisplayNameUnchanged,
}

impl DomainError for UserError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidEmail { .. }
            | Self::DisplayNameLength { .. }
            | Self::DisplayNameCharacters
            | Self::DisplayNameInvisibleCharacter { .. } => ErrorKind::Invalid,
            Self::NotFound => ErrorKind::NotFound,
            Self::AlreadyRegistered | Self::EmailTaken => ErrorKind::Conflict,
            Self::Deactivated
            | Self::AlreadyActive
            | Self::DisplayNameUnchanged
            | Self::RolesUnchanged => ErrorKind::Rejected,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::InvalidEmail { .. } => "invalid_email",
            Self::DisplayNameLength { .. } => "display_name_length",
            Self::DisplayNameCharacters => "display_name_characters",
            Self::DisplayNameInvisibleCharacter { .. } => "display_name_invisible_character",
            Self::AlreadyRegistered => "user_already_registered",
            Self::EmailTaken => "email_taken",
            Self::NotFound => "user_not_found",
            Self::Deactivated => "user_deactivated",
            Self::AlreadyActive => "user_already_active",
            Self::DisplayNameUnchanged => "display_name_unchanged",
            Self::RolesUnchanged => "roles_unchanged",
        }
    }
}
