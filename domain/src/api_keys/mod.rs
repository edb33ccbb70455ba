//! API keys: credentials for machines and scripts, each with a name, roles and an optional
//! expiry. The secret is generated outside the domain, shown once, and only its hash is stored.

mod aggregate;
mod commands;
mod error;
mod events;
mod policy;

#[cfg(test)]
mod stored_events;

pub use aggregate::{ApiKey, KeyRejected};
pub use commands::ApiKeyCommand;
pub use error::ApiKeyError;
pub use events::ApiKeyEvent;
pub use policy::ApiKeyAction;

use serde::{Deserialize, Serialize};

use crate::names::{parse_name, NameRefusal};

/// A key's human-readable name: 1 to 64 characters, trimmed, with nothing a reader cannot see
/// (no control characters, no invisible or bidirectional format characters; see
/// [`crate::names`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KeyName(String);

impl KeyName {
    /// Shortest accepted name, in characters.
    pub const MIN_CHARS: usize = 1;
    /// Longest accepted name, in characters.
    pub const MAX_CHARS: usize = 64;

    /// Parses a key name.
    ///
    /// # Errors
    /// [`ApiKeyError::InvalidName`] for a name of the wrong length or with control characters,
    /// [`ApiKeyError::NameInvisibleCharacter`] naming an invisible character.
    pub fn parse(raw: &str) -> Result<Self, ApiKeyError> {
        match parse_name(raw, Self::MIN_CHARS..=Self::MAX_CHARS) {
            Ok(name) => Ok(Self(name.to_owned())),
            Err(NameRefusal::Length { .. } | NameRefusal::Control(_)) => {
                Err(ApiKeyError::InvalidName)
            }
            Err(NameRefusal::Invisible(character)) => {
                Err(ApiKeyError::NameInvisibleCharacter { character })
            }
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The SHA-256 of a key's secret, as 64 lower-case hex digits. The domain compares hashes; it
/// never sees a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretHash(String);

impl SecretHash {
    /// Wraps a hex SHA-256 digest.
    ///
    /// # Errors
    /// [`ApiKeyError::InvalidSecretHash`] unless it is 64 lower-case hex digits.
    pub fn parse(hex: &str) -> Result<Self, ApiKeyError> {
        let valid = hex.len() == 64
            && hex
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c));
        if valid {
            Ok(Self(hex.to_owned()))
        } else {
            Err(ApiKeyError::InvalidSecretHash)
        }
    }

    /// Compares in time independent of where the digests differ.
    pub fn matches(&self, other: &SecretHash) -> bool {
        self.0.len() == other.0.len()
            && self
                .0
                .bytes()
                .zip(other.0.bytes())
                .fold(0u8, |difference, (a, b)| difference | (a ^ b))
                == 0
    }
}
