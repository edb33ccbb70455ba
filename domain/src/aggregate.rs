//! One adapter from pure decide/evolve functions to a cqrs-es [`Aggregate`].
//!
//! Every aggregate in this crate is written as a [`Decider`]: `decide(state, command)` returns the
//! events (or a typed error) and `evolve(state, event)` folds one event into the state. The
//! adapter [`Versioned`] adds what every aggregate needs and none should re-implement: the stream
//! version, and the optimistic-concurrency check a client asks for with an expected version.

use std::fmt;

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{DomainError, ErrorKind};

/// A pure aggregate: state plus the two functions that define its behaviour.
pub trait Decider: Default + Serialize + DeserializeOwned + Send + Sync {
    /// The aggregate type stored with every event. Part of the stored data: never change it.
    const TYPE: &'static str;
    /// The shape and meaning of the saved state. Bump it whenever the state's fields or what
    /// `evolve` makes of an event change: snapshots of another schema are never used (the
    /// stream is replayed instead).
    const SNAPSHOT_SCHEMA: u32;
    /// What a client asks the aggregate to do.
    type Command: Clone + Send;
    /// What happened, as stored forever.
    #[cfg(not(test))]
    type Event: DomainEvent;
    /// What happened, as stored forever. In this crate's own tests the events must also have
    /// their stored form checked ([`crate::stored_check`]): an aggregate whose events have no
    /// such test does not compile, so no context can add events that escape it.
    #[cfg(test)]
    type Event: DomainEvent + crate::stored_check::Checked;
    /// Why a command was refused.
    type Error: DomainError + Send + Sync;

    /// Decides which events a command produces against the current state.
    ///
    /// # Errors
    /// A typed domain error when the command breaks a rule; nothing is appended then.
    fn decide(&self, command: Self::Command) -> Result<Vec<Self::Event>, Self::Error>;

    /// Folds one event into the state. Must accept every event `decide` ever produced.
    fn evolve(&mut self, event: &Self::Event);
}

/// A command together with the stream version the client based it on, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Guarded<C> {
    /// When set, the command is refused unless the aggregate is at exactly this version.
    pub expected_version: Option<u64>,
    /// The command itself.
    pub command: C,
}

impl<C> Guarded<C> {
    /// A command without a version expectation (last writer wins between commands that
    /// are each valid on their own; concurrent appends still conflict in the store).
    pub fn new(command: C) -> Self {
        Self {
            expected_version: None,
            command,
        }
    }

    /// A command valid only against the given stream version.
    pub fn expecting(expected_version: Option<u64>, command: C) -> Self {
        Self {
            expected_version,
            command,
        }
    }
}

/// Why a guarded command was refused.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum Rejection<E> {
    /// The client expected another version than the stream has.
    #[error("expected version {expected}, but the stream is at version {actual}")]
    VersionMismatch {
        /// The version the client based its command on.
        expected: u64,
        /// The stream's version when the command was decided.
        actual: u64,
    },
    /// The aggregate refused the command.
    #[error(transparent)]
    Domain(E),
}

impl<E: DomainError> DomainError for Rejection<E> {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::VersionMismatch { .. } => ErrorKind::Conflict,
            Self::Domain(error) => error.kind(),
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::VersionMismatch { .. } => "version_mismatch",
            Self::Domain(error) => error.code(),
        }
    }
}

/// A [`Decider`] with its stream version: the cqrs-es aggregate the write side runs.
#[derive(Default, Serialize, Deserialize, PartialEq)]
pub struct Versioned<D> {
    version: u64,
    state: D,
}

impl<D> Versioned<D> {
    /// The number of events applied so far (the sequence of the last one).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The domain state.
    pub fn state(&self) -> &D {
        &self.state
    }
}

impl<D: fmt::Debug> fmt::Debug for Versioned<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Versioned")
            .field("version", &self.version)
            .field("state", &self.state)
            .finish()
    }
}

impl<D: Decider> Aggregate for Versioned<D> {
    const TYPE: &'static str = D::TYPE;
    type Command = Guarded<D::Command>;
    type Event = D::Event;
    type Error = Rejection<D::Error>;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        if let Some(expected) = command.expected_version {
            if expected != self.version {
                return Err(Rejection::VersionMismatch {
                    expected,
                    actual: self.version,
                });
            }
        }
        let events = self
            .state
            .decide(command.command)
            .map_err(Rejection::Domain)?;
        for event in events {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        self.state.evolve(&event);
        self.version += 1;
    }
}

/// Rebuilds a state from its full history: what an auditor's replay and a test's
/// "replay equals live state" check both need.
pub fn replay<'a, D: Decider + 'a>(events: impl IntoIterator<Item = &'a D::Event>) -> Versioned<D> {
    resume(Versioned::default(), events)
}

/// Continues a state (a snapshot of it) with the events recorded after it.
pub fn resume<'a, D: Decider + 'a>(
    mut from: Versioned<D>,
    events: impl IntoIterator<Item = &'a D::Event>,
) -> Versioned<D> {
    for event in events {
        from.state.evolve(event);
        from.version += 1;
    }
    from
}

/// Test support: the events a sequence of commands records, each decided against the state
/// the ones before it left (refused commands record nothing).
#[cfg(test)]
pub(crate) fn history_of<D: Decider>(
    commands: impl IntoIterator<Item = D::Command>,
) -> Vec<D::Event> {
    let mut live = D::default();
    let mut history = Vec::new();
    for command in commands {
        if let Ok(events) = live.decide(command) {
            for event in &events {
                live.evolve(event);
            }
            history.extend(events);
        }
    }
    history
}

/// Test support: a snapshot taken after any prefix of `history` (saved as JSON and read back,
/// as the store does) and resumed with the rest equals the replay of the whole history.
#[cfg(test)]
pub(crate) fn assert_snapshots_resume<D: Decider + PartialEq + fmt::Debug>(history: &[D::Event]) {
    let full = replay::<D>(history);
    for cut in 0..=history.len() {
        let saved = serde_json::to_value(replay::<D>(&history[..cut])).expect("state saves");
        let snapshot: Versioned<D> = serde_json::from_value(saved).expect("state reads back");
        assert_eq!(snapshot.version, cut as u64);
        assert_eq!(
            resume(snapshot, &history[cut..]),
            full,
            "a snapshot after {cut} of {} events",
            history.len()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::users::UserError;

    #[test]
    fn a_rejection_is_classified_as_its_cause() {
        let mismatch = Rejection::<UserError>::VersionMismatch {
            expected: 1,
            actual: 2,
        };
        assert_eq!(
            (mismatch.kind(), mismatch.code()),
            (ErrorKind::Conflict, "version_mismatch")
        );
        let domain = Rejection::Domain(UserError::NotFound);
        assert_eq!(
            (domain.kind(), domain.code()),
            (ErrorKind::NotFound, "user_not_found")
        );
        assert_eq!(
            Rejection::Domain(UserError::Deactivated).kind(),
            ErrorKind::Rejected
        );
    }

    #[test]
    fn a_guarded_command_carries_the_version_it_expects() {
        let guarded = Guarded::expecting(Some(3), "rename");
        assert_eq!(
            (guarded.expected_version, guarded.command),
            (Some(3), "rename")
        );
        assert_eq!(Guarded::new("rename").expected_version, None);
    }
}
