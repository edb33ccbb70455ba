//! A post: written in a category by a member, edited by its author within a window, removed by
//! its author or a moderator, locked and pinned by moderators, hidden when a moderator upholds
//! a report on it.

use chrono::{DateTime, TimeDelta, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Body, CommunityError, Title};
use crate::aggregate::Decider;

/// A written post's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WrittenPost {
    /// The category it was written in.
    pub category: Uuid,
    /// The account that wrote it: the only one who may edit it.
    pub author: Uuid,
    /// Its title.
    pub title: Title,
    /// Its markdown.
    pub body: Body,
    /// When it was written: the edit window starts here.
    pub written_at: DateTime<Utc>,
    /// Whether it takes no new comments.
    pub locked: bool,
    /// Whether it is shown before the others of its category.
    pub pinned: bool,
    /// Whether it was removed: hidden from readers, kept in history, changed no more.
    pub removed: bool,
    /// Whether a moderator hid it over a report: like removed, but marked as moderated.
    #[serde(default)]
    pub hidden: bool,
}

impl WrittenPost {
    /// Whether comments (and reactions) may be added to this post now.
    ///
    /// # Errors
    /// [`CommunityError::PostRemoved`], [`CommunityError::PostHidden`], or
    /// [`CommunityError::PostLocked`] when `locked_matters` (a lock stops comments, not
    /// reactions).
    pub fn takes(&self, locked_matters: bool) -> Result<(), CommunityError> {
        self.changeable()?;
        if locked_matters && self.locked {
            return Err(CommunityError::PostLocked);
        }
        Ok(())
    }
}

impl WrittenPost {
    /// Whether the post can still change: neither removed nor hidden.
    ///
    /// # Errors
    /// [`CommunityError::PostRemoved`] or [`CommunityError::PostHidden`].
    pub fn changeable(&self) -> Result<(), CommunityError> {
        if self.removed {
            Err(CommunityError::PostRemoved)
        } else if self.hidden {
            Err(CommunityError::PostHidden)
        } else {
            Ok(())
        }
    }
}

/// The post aggregate's state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub enum Post {
    /// Not written yet: the only command accepted is `Write`.
    #[default]
    Unwritten,
    /// A post.
    Written(WrittenPost),
}

/// What can be asked of a post. Times and the edit window are supplied by the caller.
#[derive(Debug, Clone, PartialEq)]
pub enum PostCommand {
    /// Write the post under the aggregate's id. The category was checked to take posts.
    Write {
        /// The category.
        category: Uuid,
        /// The writing account.
        author: Uuid,
        /// Its title.
        title: Title,
        /// Its markdown.
        body: Body,
        /// When.
        at: DateTime<Utc>,
    },
    /// Replace the title and body (the author, within `window` of writing it).
    Edit {
        /// The new title.
        title: Title,
        /// The new body.
        body: Body,
        /// How long after writing a post its author may edit it.
        window: TimeDelta,
        /// When.
        at: DateTime<Utc>,
    },
    /// Remove the post: readers no longer see it; its history stays.
    Remove {
        /// Who removed it (the principal's id).
        by: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// Lock (`true`) or unlock the post.
    SetLocked {
        /// Whether it should be locked.
        locked: bool,
        /// When.
        at: DateTime<Utc>,
    },
    /// Hide the post: a moderator upheld a report on it.
    Hide {
        /// The moderator (the principal's id).
        by: String,
        /// The report upheld.
        report: Uuid,
        /// When.
        at: DateTime<Utc>,
    },
    /// Pin (`true`) or unpin the post.
    SetPinned {
        /// Whether it should be pinned.
        pinned: bool,
        /// When.
        at: DateTime<Utc>,
    },
}

impl PostCommand {
    /// The command's name as recorded in event metadata.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Write { .. } => "WritePost",
            Self::Edit { .. } => "EditPost",
            Self::Remove { .. } => "RemovePost",
            Self::SetLocked { locked: true, .. } => "LockPost",
            Self::SetLocked { locked: false, .. } => "UnlockPost",
            Self::SetPinned { pinned: true, .. } => "PinPost",
            Self::SetPinned { pinned: false, .. } => "UnpinPost",
            Self::Hide { .. } => "HidePost",
        }
    }
}

/// What happened to a post. Stored forever: add variants, never change existing ones without
/// an upcaster and a new `event_version`. The serde tag is the `event_type()`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PostEvent {
    /// A post was written.
    PostWritten {
        /// The category.
        category: Uuid,
        /// The writing account.
        author: Uuid,
        /// Its title.
        title: Title,
        /// Its markdown.
        body: Body,
        /// When.
        at: DateTime<Utc>,
    },
    /// Its author edited it; the previous text stays in the events before this one.
    PostEdited {
        /// The new title.
        title: Title,
        /// The new body.
        body: Body,
        /// When.
        at: DateTime<Utc>,
    },
    /// It was removed.
    PostRemoved {
        /// Who removed it.
        by: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// A moderator hid it, upholding a report.
    PostHidden {
        /// The moderator.
        by: String,
        /// The report upheld.
        report: Uuid,
        /// When.
        at: DateTime<Utc>,
    },
    /// It was locked.
    PostLocked {
        /// When.
        at: DateTime<Utc>,
    },
    /// It was unlocked.
    PostUnlocked {
        /// When.
        at: DateTime<Utc>,
    },
    /// It was pinned.
    PostPinned {
        /// When.
        at: DateTime<Utc>,
    },
    /// It was unpinned.
    PostUnpinned {
        /// When.
        at: DateTime<Utc>,
    },
}

impl PostEvent {
    /// When the change was accepted.
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            Self::PostWritten { at, .. }
            | Self::PostEdited { at, .. }
            | Self::PostRemoved { at, .. }
            | Self::PostHidden { at, .. }
            | Self::PostLocked { at }
            | Self::PostUnlocked { at }
            | Self::PostPinned { at }
            | Self::PostUnpinned { at } => *at,
        }
    }
}

impl DomainEvent for PostEvent {
    /// The stored event type. These strings are part of the stored data: never change one.
    fn event_type(&self) -> String {
        match self {
            Self::PostWritten { .. } => "PostWritten",
            Self::PostEdited { .. } => "PostEdited",
            Self::PostRemoved { .. } => "PostRemoved",
            Self::PostHidden { .. } => "PostHidden",
            Self::PostLocked { .. } => "PostLocked",
            Self::PostUnlocked { .. } => "PostUnlocked",
            Self::PostPinned { .. } => "PostPinned",
            Self::PostUnpinned { .. } => "PostUnpinned",
        }
        .to_owned()
    }

    /// Changes only together with an upcaster for the previous version.
    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

impl Decider for Post {
    const TYPE: &'static str = "Post";
    const SNAPSHOT_SCHEMA: u32 = 1;
    type Command = PostCommand;
    type Event = PostEvent;
    type Error = CommunityError;

    fn decide(&self, command: PostCommand) -> Result<Vec<PostEvent>, CommunityError> {
        let post = match (self, command) {
            (
                Self::Unwritten,
                PostCommand::Write {
                    category,
                    author,
                    title,
                    body,
                    at,
                },
            ) => {
                return Ok(vec![PostEvent::PostWritten {
                    category,
                    author,
                    title,
                    body,
                    at,
                }])
            }
            (Self::Unwritten, _) => return Err(CommunityError::PostNotFound),
            (Self::Written(_), PostCommand::Write { .. }) => {
                return Err(CommunityError::PostExists)
            }
            (Self::Written(post), command) => {
                post.changeable()?;
                (post, command)
            }
        };
        let event = match post {
            (
                post,
                PostCommand::Edit {
                    title,
                    body,
                    window,
                    at,
                },
            ) => {
                if at > post.written_at + window {
                    return Err(CommunityError::EditWindowClosed {
                        window_minutes: window.num_minutes(),
                    });
                }
                if post.title == title && post.body == body {
                    return Err(CommunityError::PostUnchanged);
                }
                PostEvent::PostEdited { title, body, at }
            }
            (_, PostCommand::Remove { by, at }) => PostEvent::PostRemoved { by, at },
            (_, PostCommand::Hide { by, report, at }) => PostEvent::PostHidden { by, report, at },
            (post, PostCommand::SetLocked { locked, at }) => match (post.locked, locked) {
                (false, true) => PostEvent::PostLocked { at },
                (true, false) => PostEvent::PostUnlocked { at },
                _ => return Err(CommunityError::LockUnchanged { locked }),
            },
            (post, PostCommand::SetPinned { pinned, at }) => match (post.pinned, pinned) {
                (false, true) => PostEvent::PostPinned { at },
                (true, false) => PostEvent::PostUnpinned { at },
                _ => return Err(CommunityError::PinUnchanged { pinned }),
            },
            (_, PostCommand::Write { .. }) => return Err(CommunityError::PostExists),
        };
        Ok(vec![event])
    }

    fn evolve(&mut self, event: &PostEvent) {
        match (self, event) {
            (
                this @ Self::Unwritten,
                PostEvent::PostWritten {
                    category,
                    author,
                    title,
                    body,
                    at,
                },
            ) => {
                *this = Self::Written(WrittenPost {
                    category: *category,
                    author: *author,
                    title: title.clone(),
                    body: body.clone(),
                    written_at: *at,
                    locked: false,
                    pinned: false,
                    removed: false,
                    hidden: false,
                });
            }
            (Self::Written(post), event) => match event {
                PostEvent::PostEdited { title, body, .. } => {
                    post.title = title.clone();
                    post.body = body.clone();
                }
                PostEvent::PostRemoved { .. } => post.removed = true,
                PostEvent::PostHidden { .. } => post.hidden = true,
                PostEvent::PostLocked { .. } => post.locked = true,
                PostEvent::PostUnlocked { .. } => post.locked = false,
                PostEvent::PostPinned { .. } => post.pinned = true,
                PostEvent::PostUnpinned { .. } => post.pinned = false,
                PostEvent::PostWritten { .. } => {}
            },
            // `decide` never produces any other pairing; history is applied as recorded.
            _ => {}
        }
    }
}
