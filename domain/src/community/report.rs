//! A member's report of a post or comment, and its resolution by a moderator.
//!
//! Each (target, reporter) pair is one stream, named from the pair ([`Report::stream_id`]), so
//! a member reports a piece of writing once: a second report of it is refused by the store's
//! one-stream rule, however the two race.

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{CommunityError, Target};
use crate::aggregate::Decider;

/// Why a member reports something: trimmed, 1 to [`Reason::MAX_CHARS`] characters of any text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Reason(String);

impl Reason {
    /// Longest accepted reason, in characters as sent.
    pub const MAX_CHARS: usize = 1000;

    /// Parses a reason.
    ///
    /// # Errors
    /// [`CommunityError::ReasonLength`].
    pub fn parse(raw: &str) -> Result<Self, CommunityError> {
        let reason = raw.trim();
        if raw.chars().count() <= Self::MAX_CHARS && !reason.is_empty() {
            Ok(Self(reason.to_owned()))
        } else {
            Err(CommunityError::ReasonLength {
                max: Self::MAX_CHARS,
            })
        }
    }

    /// The reason.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a moderator decided about a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    /// The report is upheld: the writing is hidden from readers.
    Hide,
    /// The report is dismissed: the writing stays.
    Dismiss,
}

impl Resolution {
    /// The resolution as stored in read models and shown by the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hide => "hidden",
            Self::Dismiss => "dismissed",
        }
    }
}

/// A report's state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub enum Report {
    /// Not filed.
    #[default]
    Unfiled,
    /// Filed, and resolved if `resolution` says so.
    Filed {
        /// What is reported.
        target: Target,
        /// How a moderator resolved it, once one did.
        resolution: Option<Resolution>,
    },
}

/// The namespace of [`Report::stream_id`]'s name-based ids. Never change it.
const REPORTS_NAMESPACE: Uuid = Uuid::from_u128(0x2c7a_91e4_05bd_4f3a_9e6c_d8b1_47f0_a2e5);

impl Report {
    /// The stream of `reporter`'s report of `target`.
    pub fn stream_id(target: Target, reporter: Uuid) -> Uuid {
        let name = format!("{}:{}:{reporter}", target.kind(), target.id());
        Uuid::new_v5(&REPORTS_NAMESPACE, name.as_bytes())
    }
}

/// What can be asked of a report.
#[derive(Debug, Clone, PartialEq)]
pub enum ReportCommand {
    /// File it. The target was checked to be there.
    File {
        /// What is reported.
        target: Target,
        /// Who reports it.
        reporter: Uuid,
        /// Why.
        reason: Reason,
        /// When.
        at: DateTime<Utc>,
    },
    /// Resolve it (a moderator).
    Resolve {
        /// Hide the writing, or dismiss the report.
        resolution: Resolution,
        /// The moderator (the principal's id).
        by: String,
        /// When.
        at: DateTime<Utc>,
    },
}

impl ReportCommand {
    /// The command's name as recorded in event metadata.
    pub fn name(&self) -> &'static str {
        match self {
            Self::File { .. } => "FileReport",
            Self::Resolve { .. } => "ResolveReport",
        }
    }
}

/// What happened to a report. Stored forever: add variants, never change existing ones
/// without an upcaster and a new `event_version`. The serde tag is the `event_type()`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ReportEvent {
    /// A member reported a post or comment.
    ReportFiled {
        /// What is reported.
        target: Target,
        /// Who reports it.
        reporter: Uuid,
        /// Why.
        reason: Reason,
        /// When.
        at: DateTime<Utc>,
    },
    /// A moderator resolved the report.
    ReportResolved {
        /// Hidden or dismissed.
        resolution: Resolution,
        /// The moderator.
        by: String,
        /// When.
        at: DateTime<Utc>,
    },
}

impl ReportEvent {
    /// When the change was accepted.
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            Self::ReportFiled { at, .. } | Self::ReportResolved { at, .. } => *at,
        }
    }
}

impl DomainEvent for ReportEvent {
    /// The stored event type. These strings are part of the stored data: never change one.
    fn event_type(&self) -> String {
        match self {
            Self::ReportFiled { .. } => "ReportFiled",
            Self::ReportResolved { .. } => "ReportResolved",
        }
        .to_owned()
    }

    /// Changes only together with an upcaster for the previous version.
    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

impl Decider for Report {
    const TYPE: &'static str = "Report";
    const SNAPSHOT_SCHEMA: u32 = 1;
    type Command = ReportCommand;
    type Event = ReportEvent;
    type Error = CommunityError;

    fn decide(&self, command: ReportCommand) -> Result<Vec<ReportEvent>, CommunityError> {
        let event = match (self, command) {
            (
                Self::Unfiled,
                ReportCommand::File {
                    target,
                    reporter,
                    reason,
                    at,
                },
            ) => ReportEvent::ReportFiled {
                target,
                reporter,
                reason,
                at,
            },
            (Self::Filed { .. }, ReportCommand::File { .. }) => {
                return Err(CommunityError::AlreadyReported)
            }
            (Self::Unfiled, ReportCommand::Resolve { .. }) => {
                return Err(CommunityError::ReportNotFound)
            }
            (
                Self::Filed {
                    resolution: Some(_),
                    ..
                },
                ReportCommand::Resolve { .. },
            ) => return Err(CommunityError::ReportResolved),
            (
                Self::Filed {
                    resolution: None, ..
                },
                ReportCommand::Resolve { resolution, by, at },
            ) => ReportEvent::ReportResolved { resolution, by, at },
        };
        Ok(vec![event])
    }

    fn evolve(&mut self, event: &ReportEvent) {
        match (self, event) {
            (this @ Self::Unfiled, ReportEvent::ReportFiled { target, .. }) => {
                *this = Self::Filed {
                    target: *target,
                    resolution: None,
                };
            }
            (
                Self::Filed { resolution, .. },
                ReportEvent::ReportResolved {
                    resolution: new, ..
                },
            ) => *resolution = Some(*new),
            // `decide` never produces any other pairing; history is applied as recorded.
            _ => {}
        }
    }
}
