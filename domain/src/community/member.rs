//! A member of the community as moderators see them: whether they may write, and until when.
//! The stream's id is the member's account.

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use super::{CommunityError, Reason};
use crate::aggregate::Decider;

/// A member's standing: no stream means never suspended.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Member {
    /// Until when the member may not write, if suspended (a suspension that has run out needs
    /// no lifting).
    pub suspended_until: Option<DateTime<Utc>>,
}

impl Member {
    /// Whether the member may write at `now`.
    ///
    /// # Errors
    /// [`CommunityError::Suspended`] naming the end of the suspension.
    pub fn may_write(&self, now: DateTime<Utc>) -> Result<(), CommunityError> {
        match self.suspended_until {
            Some(until) if until > now => Err(CommunityError::Suspended { until }),
            _ => Ok(()),
        }
    }
}

/// What moderators can ask of a member's standing.
#[derive(Debug, Clone, PartialEq)]
pub enum MemberCommand {
    /// Suspend the member from writing until `until` (a later time replaces an earlier one).
    Suspend {
        /// The end of the suspension; after `at`.
        until: DateTime<Utc>,
        /// Why.
        reason: Reason,
        /// The moderator (the principal's id).
        by: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// End a suspension now.
    Lift {
        /// The moderator.
        by: String,
        /// When.
        at: DateTime<Utc>,
    },
}

impl MemberCommand {
    /// The command's name as recorded in event metadata.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Suspend { .. } => "SuspendMember",
            Self::Lift { .. } => "LiftSuspension",
        }
    }
}

/// What happened to a member's standing. Stored forever: add variants, never change existing
/// ones without an upcaster and a new `event_version`. The serde tag is the `event_type()`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MemberEvent {
    /// The member was suspended from writing.
    MemberSuspended {
        /// Until when.
        until: DateTime<Utc>,
        /// Why.
        reason: Reason,
        /// The moderator.
        by: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// The suspension was lifted before it ran out.
    SuspensionLifted {
        /// The moderator.
        by: String,
        /// When.
        at: DateTime<Utc>,
    },
}

impl MemberEvent {
    /// When the change was accepted.
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            Self::MemberSuspended { at, .. } | Self::SuspensionLifted { at, .. } => *at,
        }
    }
}

impl DomainEvent for MemberEvent {
    /// The stored event type. These strings are part of the stored data: never change one.
    fn event_type(&self) -> String {
        match self {
            Self::MemberSuspended { .. } => "MemberSuspended",
            Self::SuspensionLifted { .. } => "SuspensionLifted",
        }
        .to_owned()
    }

    /// Changes only together with an upcaster for the previous version.
    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

impl Decider for Member {
    const TYPE: &'static str = "Member";
    const SNAPSHOT_SCHEMA: u32 = 1;
    type Command = MemberCommand;
    type Event = MemberEvent;
    type Error = CommunityError;

    fn decide(&self, command: MemberCommand) -> Result<Vec<MemberEvent>, CommunityError> {
        let event = match command {
            MemberCommand::Suspend {
                until,
                reason,
                by,
                at,
            } => {
                if until <= at {
                    return Err(CommunityError::SuspensionInPast);
                }
                MemberEvent::MemberSuspended {
                    until,
                    reason,
                    by,
                    at,
                }
            }
            MemberCommand::Lift { by, at } => {
                if self.may_write(at).is_ok() {
                    return Err(CommunityError::NotSuspended);
                }
                MemberEvent::SuspensionLifted { by, at }
            }
        };
        Ok(vec![event])
    }

    fn evolve(&mut self, event: &MemberEvent) {
        self.suspended_until = match event {
            MemberEvent::MemberSuspended { until, .. } => Some(*until),
            MemberEvent::SuspensionLifted { .. } => None,
        };
    }
}
