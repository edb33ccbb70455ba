use crate::error::{DomainError, ErrorKind};
use crate::names::CodePoint;

/// Why an API key command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiKeyError {
    /// The name is empty, too long, or has control characters.
    #[error("a key name is 1 to 64 characters without control characters")]
    InvalidName,
    /// The name contains a character a reader cannot see that changes what is shown.
    #[error(
        "a key name must not contain invisible or bidirectional control characters ({character})"
    )]
    NameInvisibleCharacter {
        /// The first such character.
        character: CodePoint,
    },
    /// Not a SHA-256 hex digest (a bug in the caller, never user input).
    #[error("the secret hash is not a SHA-256 hex digest")]
    InvalidSecretHash,
    /// A key needs at least one role.
    #[error("a key needs at least one role")]
    NoRoles,
    /// The expiry is not after the issue time.
    #[error("the expiry must be in the future")]
    ExpiryInPast,
    /// A key with this id exists.
    #[error("a key with this id was already issued")]
    AlreadyIssued,
    /// No key with this id exists.
    #[error("no such API key")]
    NotFound,
    /// The key is already revoked.
    #[error("the key is already revoked")]
    AlreadyRevoked,
}

impl DomainError for ApiKeyError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidName
            | Self::NameInvisibleCharacter { .. }
            | Self::InvalidSecretHash
            | Self::NoRoles
            | Self::ExpiryInPast => ErrorKind::Invalid,
            Self::AlreadyIssued => ErrorKind::Conflict,
            Self::NotFound => ErrorKind::NotFound,
            Self::AlreadyRevoked => ErrorKind::Rejected,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::InvalidName => "invalid_key_name",
            Self::NameInvisibleCharacter { .. } => "key_name_invisible_character",
            Self::InvalidSecretHash => "invalid_secret_hash",
            Self::NoRoles => "key_without_roles",
            Self::ExpiryInPast => "expiry_in_past",
            Self::AlreadyIssued => "api_key_already_issued",
            Self::NotFound => "api_key_not_found",
            Self::AlreadyRevoked => "api_key_revoked",
        }
    }
}
