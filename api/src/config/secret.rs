//! [`Secret`]: a setting that must never be printed.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A value that must never appear in logs or error messages (URLs with passwords, keys).
///
/// `Debug` prints `"<redacted>"` (or `""` when empty, so a missing secret is still visible);
/// there is deliberately no `Display`.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself; use only where it is needed, never to print.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether no value was given.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() {
            "\"\""
        } else {
            "\"<redacted>\""
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_a_value_but_shows_an_empty_one() {
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "\"<redacted>\"");
        assert_eq!(format!("{:?}", Secret::default()), "\"\"");
    }
}
