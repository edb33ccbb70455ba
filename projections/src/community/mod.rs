//! The community read models: categories and posts with their activity, comments as threads,
//! and reactions.
//!
//! What a reader may see is decided by the queries, from the reader they are given: a removed
//! post stays in the model (marked), so its author and the staff still find it, and the queries
//! leave it out for everyone else.

mod announcements;
pub mod live;
mod moderation;
mod projection;
mod queries;
mod settings;
mod threads;

pub use projection::CommunityProjection;
pub use queries::{
    get_category, get_post, list_categories, list_posts, CategoryView, Cursor, PostOrder,
    PostSummary, PostView, Reader,
};
pub use announcements::{
    all_announcements, current_announcements, get_announcement, AnnouncementCursor,
    AnnouncementView, Audience,
};
pub use moderation::{get_member, get_report, moderation_queue, MemberView, ReportView};
pub use settings::{settings, SettingsView};
pub use threads::{
    activity, get_comment, list_threads, reactions, ActivityView, CommentView, ReactionSummary,
    Thread,
};
