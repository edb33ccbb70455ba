//! How a domain error is classified for the outside world.

/// What kind of failure a domain error is, independent of any transport.
///
/// The API maps each kind to one HTTP status; a CLI would map it to an exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The command's input breaks a rule of a value object (bad email, name too long).
    Invalid,
    /// The command addresses an aggregate that does not exist.
    NotFound,
    /// The command conflicts with the aggregate's current state or version.
    Conflict,
    /// The command is well-formed but not allowed in the aggregate's current state.
    Rejected,
}

/// Implemented by every domain error so the layers above can classify it without matching
/// on each aggregate's variants.
pub trait DomainError: std::error::Error {
    /// The classification of this error.
    fn kind(&self) -> ErrorKind;
    /// A stable, machine-readable code (`snake_case`). Clients match on it; never change one.
    fn code(&self) -> &'static str;
}
