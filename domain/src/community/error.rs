use crate::error::{DomainError, ErrorKind};
use crate::names::CodePoint;

/// Why a community command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommunityError {
    /// A title or category name is too short or too long.
    #[error("a title must be {min} to {max} characters, got {actual}")]
    TitleLength {
        /// Minimum characters.
        min: usize,
        /// Maximum characters.
        max: usize,
        /// Characters given (after trimming, or as sent when too long).
        actual: usize,
    },
    /// A title contains a control character or a line break.
    #[error("a title must not contain control characters or line breaks")]
    TitleCharacters,
    /// A title contains a character a reader cannot see that changes what is shown.
    #[error(
        "a title must not contain invisible or bidirectional control characters ({character})"
    )]
    TitleInvisibleCharacter {
        /// The first such character.
        character: CodePoint,
    },
    /// A body is blank or too long.
    #[error("a body must hold some text and at most {max} characters, got {actual}")]
    BodyLength {
        /// Maximum characters.
        max: usize,
        /// Characters given.
        actual: usize,
    },
    /// A body contains a control character other than a line break or a tab.
    #[error("a body must not contain control characters other than line breaks and tabs")]
    BodyCharacters,
    /// No category with this id exists.
    #[error("no such category")]
    CategoryNotFound,
    /// A category with this id already exists.
    #[error("a category with this id already exists")]
    CategoryExists,
    /// The category is archived: it takes no changes and no new posts.
    #[error("the category is archived")]
    CategoryArchived,
    /// The change would leave the category as it is.
    #[error("the category already has this name and description")]
    CategoryUnchanged,
    /// No post with this id exists.
    #[error("no such post")]
    PostNotFound,
    /// A post with this id already exists.
    #[error("a post with this id already exists")]
    PostExists,
    /// The post was removed: it takes no changes.
    #[error("the post was removed")]
    PostRemoved,
    /// A moderator hid the post: it takes no changes, comments or reactions.
    #[error("the post was hidden by a moderator")]
    PostHidden,
    /// A moderator hid the comment: it takes no changes, replies or reactions.
    #[error("the comment was hidden by a moderator")]
    CommentHidden,
    /// A report's reason is blank or too long.
    #[error("a reason must hold some text and at most {max} characters")]
    ReasonLength {
        /// Maximum characters.
        max: usize,
    },
    /// The member already reported this post or comment.
    #[error("you already reported this")]
    AlreadyReported,
    /// No such report.
    #[error("no such report")]
    ReportNotFound,
    /// The report was resolved already.
    #[error("the report was resolved already")]
    ReportResolved,
    /// The member is suspended from writing.
    #[error("you are suspended from writing until {until}")]
    Suspended {
        /// When the suspension ends.
        until: chrono::DateTime<chrono::Utc>,
    },
    /// No user or API key of the tenant has this id.
    #[error("no such member")]
    MemberNotFound,
    /// No announcement with this id exists.
    #[error("no such announcement")]
    AnnouncementNotFound,
    /// An announcement with this id already exists.
    #[error("an announcement with this id already exists")]
    AnnouncementExists,
    /// The announcement was retracted: it changes no more.
    #[error("the announcement was retracted")]
    AnnouncementRetracted,
    /// Publishing a published announcement.
    #[error("the announcement is published already")]
    AlreadyPublished,
    /// The edit would leave the announcement as it is.
    #[error("the announcement already says this, to these readers, at these times")]
    AnnouncementUnchanged,
    /// Marking read an announcement that is not published.
    #[error("the announcement is not published")]
    NotPublished,
    /// A listed audience with no role in it.
    #[error("an audience lists at least one role (or is absent: everyone)")]
    AudienceEmpty,
    /// A window that ends before it starts.
    #[error("an announcement's window must end after it starts")]
    WindowInverted,
    /// A suspension must end after it starts.
    #[error("a suspension must end in the future")]
    SuspensionInPast,
    /// Lifting a suspension from a member who is not suspended.
    #[error("the member is not suspended")]
    NotSuspended,
    /// The post is locked: it takes no new comments.
    #[error("the post is locked")]
    PostLocked,
    /// No comment with this id exists.
    #[error("no such comment")]
    CommentNotFound,
    /// A comment with this id already exists.
    #[error("a comment with this id already exists")]
    CommentExists,
    /// The comment was removed: it takes no changes and no replies.
    #[error("the comment was removed")]
    CommentRemoved,
    /// The edit would leave the comment as it is.
    #[error("the comment already has this body")]
    CommentUnchanged,
    /// The comment replied to is not a comment of this post.
    #[error("no such comment on this post to reply to")]
    ParentNotFound,
    /// Replies go one level deep: a reply to a reply is refused.
    #[error("a reply cannot be replied to: reply to the comment it answers")]
    ReplyToReply,
    /// The edit would leave the post as it is.
    #[error("the post already has this title and body")]
    PostUnchanged,
    /// The author's time to edit the post has passed.
    #[error("the post can no longer be edited: authors edit within {window_minutes} minutes")]
    EditWindowClosed {
        /// How long after writing a post its author may edit it.
        window_minutes: i64,
    },
    /// Locking a locked post, or unlocking one that is not.
    #[error("the post is already {}", if *locked { "locked" } else { "unlocked" })]
    LockUnchanged {
        /// Whether the post is locked.
        locked: bool,
    },
    /// Pinning a pinned post, or unpinning one that is not.
    #[error("the post is already {}", if *pinned { "pinned" } else { "unpinned" })]
    PinUnchanged {
        /// Whether the post is pinned.
        pinned: bool,
    },
}

impl DomainError for CommunityError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::TitleLength { .. }
            | Self::TitleCharacters
            | Self::TitleInvisibleCharacter { .. }
            | Self::BodyLength { .. }
            | Self::BodyCharacters
            | Self::ReasonLength { .. }
            | Self::SuspensionInPast
            | Self::AudienceEmpty
            | Self::WindowInverted => ErrorKind::Invalid,
            Self::CategoryNotFound
            | Self::PostNotFound
            | Self::CommentNotFound
            | Self::ParentNotFound
            | Self::ReportNotFound
            | Self::MemberNotFound
            | Self::AnnouncementNotFound => ErrorKind::NotFound,
            Self::CategoryExists
            | Self::PostExists
            | Self::CommentExists
            | Self::AlreadyReported
            | Self::AnnouncementExists => ErrorKind::Conflict,
            Self::CategoryArchived
            | Self::CategoryUnchanged
            | Self::PostRemoved
            | Self::PostLocked
            | Self::PostHidden
            | Self::CommentHidden
            | Self::ReportResolved
            | Self::Suspended { .. }
            | Self::NotSuspended
            | Self::AnnouncementRetracted
            | Self::AlreadyPublished
            | Self::AnnouncementUnchanged
            | Self::NotPublished
            | Self::CommentRemoved
            | Self::CommentUnchanged
            | Self::ReplyToReply
            | Self::PostUnchanged
            | Self::EditWindowClosed { .. }
            | Self::LockUnchanged { .. }
            | Self::PinUnchanged { .. } => ErrorKind::Rejected,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::TitleLength { .. } => "title_length",
            Self::TitleCharacters => "title_characters",
            Self::TitleInvisibleCharacter { .. } => "title_invisible_character",
            Self::BodyLength { .. } => "body_length",
            Self::BodyCharacters => "body_characters",
            Self::CategoryNotFound => "category_not_found",
            Self::CategoryExists => "category_exists",
            Self::CategoryArchived => "category_archived",
            Self::CategoryUnchanged => "category_unchanged",
            Self::PostNotFound => "post_not_found",
            Self::PostExists => "post_exists",
            Self::PostRemoved => "post_removed",
            Self::PostUnchanged => "post_unchanged",
            Self::PostLocked => "post_locked",
            Self::PostHidden => "post_hidden",
            Self::ReasonLength { .. } => "reason_length",
            Self::AlreadyReported => "already_reported",
            Self::ReportNotFound => "report_not_found",
            Self::ReportResolved => "report_resolved",
            Self::Suspended { .. } => "suspended",
            Self::SuspensionInPast => "suspension_in_past",
            Self::NotSuspended => "not_suspended",
            Self::MemberNotFound => "member_not_found",
            Self::AnnouncementNotFound => "announcement_not_found",
            Self::AnnouncementExists => "announcement_exists",
            Self::AnnouncementRetracted => "announcement_retracted",
            Self::AlreadyPublished => "already_published",
            Self::AnnouncementUnchanged => "announcement_unchanged",
            Self::NotPublished => "not_published",
            Self::AudienceEmpty => "audience_empty",
            Self::WindowInverted => "window_inverted",
            Self::CommentHidden => "comment_hidden",
            Self::CommentNotFound => "comment_not_found",
            Self::CommentExists => "comment_exists",
            Self::CommentRemoved => "comment_removed",
            Self::CommentUnchanged => "comment_unchanged",
            Self::ParentNotFound => "parent_comment_not_found",
            Self::ReplyToReply => "reply_to_reply",
            Self::EditWindowClosed { .. } => "edit_window_closed",
            Self::LockUnchanged { .. } => "lock_unchanged",
            Self::PinUnchanged { .. } => "pin_unchanged",
        }
    }
}
