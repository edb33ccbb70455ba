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

/// A key's human-readable name: 1 to 64 characters, trimmed, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KeyName(String);

impl KeyName {
    /// Parses a key name.
    ///
    /// # Errors
    /// [`ApiKeyError::InvalidName`].
    pub fn parse(raw: &str) -> Result<Self, ApiKeyError> {
        let name = raw.trim();
        let chars = name.chars().count();
        if !(1..=64).contains(&chars) || name.chars().any(char::is_control) {
            return Err(ApiKeyError::InvalidName);
        }
        Ok(Self(name.to_owned()))
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
