//! Announcements: drafted, edited, published and retracted by admins, shown to their audience
//! within their window; members mark them read.

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Body, CommunityError, Title};
use crate::aggregate::Decider;
use crate::identity::Roles;

/// What an announcement says and to whom, when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    /// Its title.
    pub title: Title,
    /// Its text (markdown).
    pub body: Body,
    /// Who it is for: everyone of the tenant (`None`), or those holding any of these roles.
    pub audience: Option<Roles>,
    /// When it starts being shown, if not as soon as it is published.
    pub starts_at: Option<DateTime<Utc>>,
    /// When it stops being shown, if ever.
    pub ends_at: Option<DateTime<Utc>>,
    /// Whether it is shown before the others.
    pub pinned: bool,
}

impl Notice {
    /// A notice whose audience, if listed, is not empty and whose window ends after it starts.
    ///
    /// # Errors
    /// [`CommunityError::AudienceEmpty`] or [`CommunityError::WindowInverted`].
    pub fn new(
        title: Title,
        body: Body,
        audience: Option<Roles>,
        (starts_at, ends_at): (Option<DateTime<Utc>>, Option<DateTime<Utc>>),
        pinned: bool,
    ) -> Result<Self, CommunityError> {
        if audience.as_ref().is_some_and(Roles::is_empty) {
            return Err(CommunityError::AudienceEmpty);
        }
        if let (Some(start), Some(end)) = (starts_at, ends_at) {
            if end <= start {
                return Err(CommunityError::WindowInverted);
            }
        }
        Ok(Self {
            title,
            body,
            audience,
            starts_at,
            ends_at,
            pinned,
        })
    }
}

/// Where an announcement is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AnnouncementStatus {
    /// Seen by admins only.
    Draft,
    /// Shown to its audience within its window.
    Published,
    /// No longer shown; changed no more.
    Retracted,
}

impl AnnouncementStatus {
    /// The status as stored in read models and shown by the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Published => "published",
            Self::Retracted => "retracted",
        }
    }
}

/// The announcement aggregate's state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub enum Announcement {
    /// Not drafted yet.
    #[default]
    Absent,
    /// Drafted, and perhaps published or retracted since.
    Drafted {
        /// What it says, to whom, when.
        notice: Notice,
        /// Where it is in its life.
        status: AnnouncementStatus,
    },
}

/// What admins can ask of an announcement.
#[derive(Debug, Clone, PartialEq)]
pub enum AnnouncementCommand {
    /// Draft it under the aggregate's id.
    Draft {
        /// What it says, to whom, when.
        notice: Notice,
        /// When.
        at: DateTime<Utc>,
    },
    /// Replace what it says (a draft or a published one).
    Edit {
        /// The new notice.
        notice: Notice,
        /// When.
        at: DateTime<Utc>,
    },
    /// Publish a draft.
    Publish {
        /// When.
        at: DateTime<Utc>,
    },
    /// Stop showing it.
    Retract {
        /// When.
        at: DateTime<Utc>,
    },
}

impl AnnouncementCommand {
    /// The command's name as recorded in event metadata.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Draft { .. } => "DraftAnnouncement",
            Self::Edit { .. } => "EditAnnouncement",
            Self::Publish { .. } => "PublishAnnouncement",
            Self::Retract { .. } => "RetractAnnouncement",
        }
    }
}

/// What happened to an announcement. Stored forever: add variants, never change existing ones
/// without an upcaster and a new `event_version`. The serde tag is the `event_type()`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AnnouncementEvent {
    /// It was drafted.
    AnnouncementDrafted {
        /// What it says, to whom, when.
        notice: Notice,
        /// When.
        at: DateTime<Utc>,
    },
    /// What it says was replaced.
    AnnouncementEdited {
        /// The new notice.
        notice: Notice,
        /// When.
        at: DateTime<Utc>,
    },
    /// It was published.
    AnnouncementPublished {
        /// When.
        at: DateTime<Utc>,
    },
    /// It was retracted.
    AnnouncementRetracted {
        /// When.
        at: DateTime<Utc>,
    },
}

impl AnnouncementEvent {
    /// When the change was accepted.
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            Self::AnnouncementDrafted { at, .. }
            | Self::AnnouncementEdited { at, .. }
            | Self::AnnouncementPublished { at }
            | Self::AnnouncementRetracted { at } => *at,
        }
    }
}

impl DomainEvent for AnnouncementEvent {
    /// The stored event type. These strings are part of the stored data: never change one.
    fn event_type(&self) -> String {
        match self {
            Self::AnnouncementDrafted { .. } => "AnnouncementDrafted",
            Self::AnnouncementEdited { .. } => "AnnouncementEdited",
            Self::AnnouncementPublished { .. } => "AnnouncementPublished",
            Self::AnnouncementRetracted { .. } => "AnnouncementRetracted",
        }
        .to_owned()
    }

    /// Changes only together with an upcaster for the previous version.
    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

impl Decider for Announcement {
    const TYPE: &'static str = "Announcement";
    const SNAPSHOT_SCHEMA: u32 = 1;
    type Command = AnnouncementCommand;
    type Event = AnnouncementEvent;
    type Error = CommunityError;

    fn decide(
        &self,
        command: AnnouncementCommand,
    ) -> Result<Vec<AnnouncementEvent>, CommunityError> {
        let (notice_now, status) = match (self, &command) {
            (Self::Absent, AnnouncementCommand::Draft { .. }) => (None, None),
            (Self::Absent, _) => return Err(CommunityError::AnnouncementNotFound),
            (Self::Drafted { .. }, AnnouncementCommand::Draft { .. }) => {
                return Err(CommunityError::AnnouncementExists)
            }
            (
                Self::Drafted {
                    status: AnnouncementStatus::Retracted,
                    ..
                },
                _,
            ) => return Err(CommunityError::AnnouncementRetracted),
            (Self::Drafted { notice, status }, _) => (Some(notice), Some(*status)),
        };
        let event = match command {
            AnnouncementCommand::Draft { notice, at } => {
                AnnouncementEvent::AnnouncementDrafted { notice, at }
            }
            AnnouncementCommand::Edit { notice, at } => {
                if notice_now == Some(&notice) {
                    return Err(CommunityError::AnnouncementUnchanged);
                }
                AnnouncementEvent::AnnouncementEdited { notice, at }
            }
            AnnouncementCommand::Publish { at } => {
                if status == Some(AnnouncementStatus::Published) {
                    return Err(CommunityError::AlreadyPublished);
                }
                AnnouncementEvent::AnnouncementPublished { at }
            }
            AnnouncementCommand::Retract { at } => AnnouncementEvent::AnnouncementRetracted { at },
        };
        Ok(vec![event])
    }

    fn evolve(&mut self, event: &AnnouncementEvent) {
        match (self, event) {
            (this @ Self::Absent, AnnouncementEvent::AnnouncementDrafted { notice, .. }) => {
                *this = Self::Drafted {
                    notice: notice.clone(),
                    status: AnnouncementStatus::Draft,
                };
            }
            (
                Self::Drafted { notice, .. },
                AnnouncementEvent::AnnouncementEdited { notice: new, .. },
            ) => {
                *notice = new.clone();
            }
            (Self::Drafted { status, .. }, AnnouncementEvent::AnnouncementPublished { .. }) => {
                *status = AnnouncementStatus::Published;
            }
            (Self::Drafted { status, .. }, AnnouncementEvent::AnnouncementRetracted { .. }) => {
                *status = AnnouncementStatus::Retracted;
            }
            // `decide` never produces any other pairing; history is applied as recorded.
            _ => {}
        }
    }
}

/// A member's reading of one announcement: one stream per (announcement, reader), named from
/// the pair ([`Readings::stream_id`]), so marking it read twice records it once.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Readings {
    /// Whether the reader marked it read.
    pub read: bool,
}

/// The namespace of [`Readings::stream_id`]'s name-based ids. Never change it.
const READINGS_NAMESPACE: Uuid = Uuid::from_u128(0x8d34_0be6_7f21_4c5a_b3e9_1a6f_20d4_c78b);

impl Readings {
    /// The stream of `reader`'s reading of `announcement`.
    pub fn stream_id(announcement: Uuid, reader: Uuid) -> Uuid {
        let name = format!("announcement:{announcement}:{reader}");
        Uuid::new_v5(&READINGS_NAMESPACE, name.as_bytes())
    }
}

/// Mark an announcement read; marking it again changes nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct MarkRead {
    /// The announcement.
    pub announcement: Uuid,
    /// Who read it.
    pub reader: Uuid,
    /// When.
    pub at: DateTime<Utc>,
}

/// What happened to a member's reading of an announcement. Stored forever.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ReadingEvent {
    /// The member marked the announcement read.
    AnnouncementRead {
        /// The announcement.
        announcement: Uuid,
        /// Who read it.
        reader: Uuid,
        /// When.
        at: DateTime<Utc>,
    },
}

impl DomainEvent for ReadingEvent {
    /// The stored event type. These strings are part of the stored data: never change one.
    fn event_type(&self) -> String {
        match self {
            Self::AnnouncementRead { .. } => "AnnouncementRead".to_owned(),
        }
    }

    /// Changes only together with an upcaster for the previous version.
    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

impl Decider for Readings {
    const TYPE: &'static str = "AnnouncementReading";
    const SNAPSHOT_SCHEMA: u32 = 1;
    type Command = MarkRead;
    type Event = ReadingEvent;
    type Error = CommunityError;

    fn decide(&self, command: MarkRead) -> Result<Vec<ReadingEvent>, CommunityError> {
        if self.read {
            return Ok(Vec::new());
        }
        Ok(vec![ReadingEvent::AnnouncementRead {
            announcement: command.announcement,
            reader: command.reader,
            at: command.at,
        }])
    }

    fn evolve(&mut self, event: &ReadingEvent) {
        match event {
            ReadingEvent::AnnouncementRead { .. } => self.read = true,
        }
    }
}
