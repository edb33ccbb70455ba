//! A comment on a post, or a reply to one (one level deep): written by a member, edited by its
//! author within a window, removed by its author or a moderator, hidden when a moderator
//! upholds a report on it.

use chrono::{DateTime, TimeDelta, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Body, CommunityError};
use crate::aggregate::Decider;

/// A written comment's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WrittenComment {
    /// The post it belongs to.
    pub post: Uuid,
    /// The post's category (so the category's counts need not wait for the post).
    pub category: Uuid,
    /// The comment it replies to, if it is a reply.
    pub parent: Option<Uuid>,
    /// The account that wrote it: the only one who may edit it.
    pub author: Uuid,
    /// Its markdown.
    pub body: Body,
    /// When it was written: the edit window starts here.
    pub written_at: DateTime<Utc>,
    /// Whether it was removed: hidden from readers, kept in history, changed no more.
    pub removed: bool,
    /// Whether a moderator hid it over a report: like removed, but marked as moderated.
    #[serde(default)]
    pub hidden: bool,
}

impl WrittenComment {
    /// Whether a reply to this comment may be written on `post`: it is a top-level comment of
    /// that post and was not removed.
    ///
    /// # Errors
    /// [`CommunityError::ParentNotFound`], [`CommunityError::ReplyToReply`] or
    /// [`CommunityError::CommentRemoved`] or [`CommunityError::CommentHidden`].
    pub fn takes_replies_on(&self, post: Uuid) -> Result<(), CommunityError> {
        if self.post != post {
            return Err(CommunityError::ParentNotFound);
        }
        if self.parent.is_some() {
            return Err(CommunityError::ReplyToReply);
        }
        self.changeable()
    }

    /// Whether the comment can still change (or be replied or reacted to): neither removed
    /// nor hidden.
    ///
    /// # Errors
    /// [`CommunityError::CommentRemoved`] or [`CommunityError::CommentHidden`].
    pub fn changeable(&self) -> Result<(), CommunityError> {
        if self.removed {
            Err(CommunityError::CommentRemoved)
        } else if self.hidden {
            Err(CommunityError::CommentHidden)
        } else {
            Ok(())
        }
    }
}

/// The comment aggregate's state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub enum Comment {
    /// Not written yet: the only command accepted is `Write`.
    #[default]
    Unwritten,
    /// A comment.
    Written(WrittenComment),
}

/// What can be asked of a comment. Times and the edit window are supplied by the caller.
#[derive(Debug, Clone, PartialEq)]
pub enum CommentCommand {
    /// Write the comment under the aggregate's id. Its post (and parent) were checked.
    Write {
        /// The post.
        post: Uuid,
        /// The post's category.
        category: Uuid,
        /// The comment replied to.
        parent: Option<Uuid>,
        /// The writing account.
        author: Uuid,
        /// Its markdown.
        body: Body,
        /// When.
        at: DateTime<Utc>,
    },
    /// Replace the body (the author, within `window` of writing it).
    Edit {
        /// The new body.
        body: Body,
        /// How long after writing a comment its author may edit it.
        window: TimeDelta,
        /// When.
        at: DateTime<Utc>,
    },
    /// Remove the comment: readers no longer see it; its history stays.
    Remove {
        /// Who removed it (the principal's id).
        by: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// Hide the comment: a moderator upheld a report on it.
    Hide {
        /// The moderator (the principal's id).
        by: String,
        /// The report upheld.
        report: Uuid,
        /// When.
        at: DateTime<Utc>,
    },
}

impl CommentCommand {
    /// The command's name as recorded in event metadata.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Write { .. } => "WriteComment",
            Self::Edit { .. } => "EditComment",
            Self::Remove { .. } => "RemoveComment",
            Self::Hide { .. } => "HideComment",
        }
    }
}

/// What happened to a comment. Stored forever: add variants, never change existing ones
/// without an upcaster and a new `event_version`. The serde tag is the `event_type()`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CommentEvent {
    /// A comment was written.
    CommentWritten {
        /// The post.
        post: Uuid,
        /// The post's category.
        category: Uuid,
        /// The comment replied to.
        parent: Option<Uuid>,
        /// The writing account.
        author: Uuid,
        /// Its markdown.
        body: Body,
        /// When.
        at: DateTime<Utc>,
    },
    /// Its author edited it; the previous text stays in the events before this one.
    CommentEdited {
        /// The new body.
        body: Body,
        /// When.
        at: DateTime<Utc>,
    },
    /// It was removed.
    CommentRemoved {
        /// Who removed it.
        by: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// A moderator hid it, upholding a report.
    CommentHidden {
        /// The moderator.
        by: String,
        /// The report upheld.
        report: Uuid,
        /// When.
        at: DateTime<Utc>,
    },
}

impl CommentEvent {
    /// When the change was accepted.
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            Self::CommentWritten { at, .. }
            | Self::CommentEdited { at, .. }
            | Self::CommentRemoved { at, .. }
            | Self::CommentHidden { at, .. } => *at,
        }
    }
}

impl DomainEvent for CommentEvent {
    /// The stored event type. These strings are part of the stored data: never change one.
    fn event_type(&self) -> String {
        match self {
            Self::CommentWritten { .. } => "CommentWritten",
            Self::CommentEdited { .. } => "CommentEdited",
            Self::CommentRemoved { .. } => "CommentRemoved",
            Self::CommentHidden { .. } => "CommentHidden",
        }
        .to_owned()
    }

    /// Changes only together with an upcaster for the previous version.
    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

impl Decider for Comment {
    const TYPE: &'static str = "Comment";
    const SNAPSHOT_SCHEMA: u32 = 1;
    type Command = CommentCommand;
    type Event = CommentEvent;
    type Error = CommunityError;

    fn decide(&self, command: CommentCommand) -> Result<Vec<CommentEvent>, CommunityError> {
        let comment = match (self, command) {
            (
                Self::Unwritten,
                CommentCommand::Write {
                    post,
                    category,
                    parent,
                    author,
                    body,
                    at,
                },
            ) => {
                return Ok(vec![CommentEvent::CommentWritten {
                    post,
                    category,
                    parent,
                    author,
                    body,
                    at,
                }])
            }
            (Self::Unwritten, _) => return Err(CommunityError::CommentNotFound),
            (Self::Written(_), CommentCommand::Write { .. }) => {
                return Err(CommunityError::CommentExists)
            }
            (Self::Written(comment), command) => {
                comment.changeable()?;
                (comment, command)
            }
        };
        let event = match comment {
            (comment, CommentCommand::Edit { body, window, at }) => {
                if at > comment.written_at + window {
                    return Err(CommunityError::EditWindowClosed {
                        window_minutes: window.num_minutes(),
                    });
                }
                if comment.body == body {
                    return Err(CommunityError::CommentUnchanged);
                }
                CommentEvent::CommentEdited { body, at }
            }
            (_, CommentCommand::Remove { by, at }) => CommentEvent::CommentRemoved { by, at },
            (_, CommentCommand::Hide { by, report, at }) => {
                CommentEvent::CommentHidden { by, report, at }
            }
            (_, CommentCommand::Write { .. }) => return Err(CommunityError::CommentExists),
        };
        Ok(vec![event])
    }

    fn evolve(&mut self, event: &CommentEvent) {
        match (self, event) {
            (
                this @ Self::Unwritten,
                CommentEvent::CommentWritten {
                    post,
                    category,
                    parent,
                    author,
                    body,
                    at,
                },
            ) => {
                *this = Self::Written(WrittenComment {
                    post: *post,
                    category: *category,
                    parent: *parent,
                    author: *author,
                    body: body.clone(),
                    written_at: *at,
                    removed: false,
                    hidden: false,
                });
            }
            (Self::Written(comment), CommentEvent::CommentEdited { body, .. }) => {
                comment.body = body.clone();
            }
            (Self::Written(comment), CommentEvent::CommentRemoved { .. }) => {
                comment.removed = true;
            }
            (Self::Written(comment), CommentEvent::CommentHidden { .. }) => {
                comment.hidden = true;
            }
            // `decide` never produces any other pairing; history is applied as recorded.
            _ => {}
        }
    }
}
