//! Community: categories of posts that the tenant's users write for each other to read.
//!
//! Admins keep the categories; members write posts in open ones, comment on them (replies go
//! one level deep) and react to posts and comments; authors edit their own writing within a
//! window and remove it; moderators remove, lock and pin. Nothing is ever deleted: removed
//! writing keeps its history, and only the read side decides who still sees it.
//!
//! Each aggregate decides alone what it can: whether a post's category takes posts, or a
//! comment's post takes comments, is read by the command side before it appends (see
//! `commands`).

mod announcement;
mod category;
mod comment;
mod error;
mod member;
mod policy;
mod post;
mod public_pages;
mod reaction;
mod report;
mod values;

#[cfg(test)]
mod stored_events;
#[cfg(test)]
mod tests;

pub use announcement::{
    Announcement, AnnouncementCommand, AnnouncementEvent, AnnouncementStatus, MarkRead, Notice,
    ReadingEvent, Readings,
};
pub use category::{Category, CategoryCommand, CategoryEvent};
pub use comment::{Comment, CommentCommand, CommentEvent, WrittenComment};
pub use error::CommunityError;
pub use member::{Member, MemberCommand, MemberEvent};
pub use policy::{sees_removed, CommunityAction};
pub use post::{Post, PostCommand, PostEvent, WrittenPost};
pub use public_pages::{PublicPages, PublicPagesEvent, SetPublicPages};
pub use reaction::{ReactionCommand, ReactionEvent, ReactionKind, Reactions, Target};
pub use report::{Reason, Report, ReportCommand, ReportEvent, Resolution};
pub use values::{Body, TextLimits, Title};
