//! The community context over HTTP: categories kept by admins; posts, comments and reactions
//! by members, moderated; read from the community projection as each reader may see them.

pub mod activity;
pub mod announcements;
pub mod categories;
pub mod comments;
pub mod live;
pub mod moderation;
pub mod posts;
pub mod public;
pub mod reactions;
pub mod reading;
pub mod settings;

use domain::aggregate::Decider;
use domain::community::{
    Announcement, Category, Comment, Member, Post, PublicPages, Reactions, Readings, Report,
};
use domain::policy::CommunityAction;
use utoipa_axum::routes;

use domain::identity::TenantId;
use projections::community::CommunityProjection;

use crate::http::error::ApiError;
use crate::http::extract::{consistent, Consistency};
use crate::routes::{AppState, Routes};

/// The aggregates whose commands' consistency tokens the community queries wait for.
const TOKEN_TYPES: &[&str] = &[
    Category::TYPE,
    Post::TYPE,
    Comment::TYPE,
    Reactions::TYPE,
    Report::TYPE,
    Member::TYPE,
    Announcement::TYPE,
    Readings::TYPE,
    PublicPages::TYPE,
];

/// Waits, when the query carries a consistency token, until the community projection shows the
/// command that returned it.
///
/// # Errors
/// 404 for a token of no community write of `tenant`, 503 when the projection stays behind it.
async fn caught_up(
    state: &AppState,
    tenant: &TenantId,
    token: Consistency,
) -> Result<(), ApiError> {
    consistent(state, tenant, token, TOKEN_TYPES, CommunityProjection::NAME).await
}

/// The community routes.
pub fn routes() -> Routes {
    Routes::new()
        .tag(
            "community",
            "Community: categories, posts, comments and reactions",
        )
        .command(
            CommunityAction::CreateCategory,
            routes!(categories::create_category),
        )
        .command(
            CommunityAction::ChangeCategory,
            routes!(categories::rename_category),
        )
        .command(
            CommunityAction::ChangeCategory,
            routes!(categories::describe_category),
        )
        .command(
            CommunityAction::ArchiveCategory,
            routes!(categories::archive_category),
        )
        .command(CommunityAction::WritePost, routes!(posts::write_post))
        .command(CommunityAction::EditPost, routes!(posts::edit_post))
        .command(CommunityAction::RemovePost, routes!(posts::remove_post))
        .command(CommunityAction::LockPost, routes!(posts::lock_post))
        .command(CommunityAction::LockPost, routes!(posts::unlock_post))
        .command(CommunityAction::PinPost, routes!(posts::pin_post))
        .command(CommunityAction::PinPost, routes!(posts::unpin_post))
        .query(
            CommunityAction::ReadCommunity,
            routes!(categories::list_categories),
        )
        .query(
            CommunityAction::ReadCommunity,
            routes!(categories::get_category),
        )
        .query(CommunityAction::ReadCommunity, routes!(reading::list_posts))
        .query(CommunityAction::ReadCommunity, routes!(reading::get_post))
        .command(
            CommunityAction::WriteComment,
            routes!(comments::write_comment),
        )
        .command(
            CommunityAction::EditComment,
            routes!(comments::edit_comment),
        )
        .command(
            CommunityAction::RemoveComment,
            routes!(comments::remove_comment),
        )
        .query(
            CommunityAction::ReadCommunity,
            routes!(comments::get_comment),
        )
        .query(
            CommunityAction::ReadCommunity,
            routes!(comments::list_comments),
        )
        .command(CommunityAction::React, routes!(reactions::react_to_post))
        .command(CommunityAction::React, routes!(reactions::react_to_comment))
        .command(
            CommunityAction::ReportContent,
            routes!(moderation::report_post),
        )
        .command(
            CommunityAction::ReportContent,
            routes!(moderation::report_comment),
        )
        .command(
            CommunityAction::ResolveReport,
            routes!(moderation::resolve_report),
        )
        .query(
            CommunityAction::ReadModerationQueue,
            routes!(moderation::get_report),
        )
        .query(
            CommunityAction::ReadModerationQueue,
            routes!(moderation::moderation_queue),
        )
        .command(
            CommunityAction::SuspendMember,
            routes!(moderation::suspend_member),
        )
        .command(
            CommunityAction::SuspendMember,
            routes!(moderation::lift_suspension),
        )
        .query(CommunityAction::ReadMember, routes!(moderation::get_member))
        .query(CommunityAction::ReadCommunity, routes!(activity::activity))
        .query(CommunityAction::ReadCommunity, routes!(live::category_live))
        .query(CommunityAction::ReadCommunity, routes!(live::post_live))
        .command(
            CommunityAction::ManageAnnouncements,
            routes!(announcements::draft_announcement),
        )
        .command(
            CommunityAction::ManageAnnouncements,
            routes!(announcements::edit_announcement),
        )
        .command(
            CommunityAction::ManageAnnouncements,
            routes!(announcements::publish_announcement),
        )
        .command(
            CommunityAction::ManageAnnouncements,
            routes!(announcements::retract_announcement),
        )
        .command(
            CommunityAction::ReadAnnouncements,
            routes!(announcements::mark_read),
        )
        .query(
            CommunityAction::ListAnnouncements,
            routes!(announcements::get_announcement),
        )
        .query(
            CommunityAction::ListAnnouncements,
            routes!(announcements::list_announcements),
        )
        .query(
            CommunityAction::ReadAnnouncements,
            routes!(announcements::current_announcements),
        )
        .command(
            CommunityAction::ManageCommunitySettings,
            routes!(settings::set_settings),
        )
        .query(
            CommunityAction::ReadCommunitySettings,
            routes!(settings::get_settings),
        )
        .tag(
            "public",
            "A tenant's community as anyone may read it, once its admin turned it on",
        )
        .anonymous(routes!(public::categories))
        .anonymous(routes!(public::posts))
        .anonymous(routes!(public::post))
        .anonymous(routes!(public::comments))
}

#[cfg(test)]
mod tests {
    use projections::community::Cursor;

    use crate::http::schema::parameter;

    #[test]
    fn the_documented_cursor_is_the_one_the_server_reads() {
        let after = parameter::<super::reading::ListPosts>("after");
        assert_eq!(after["pattern"], Cursor::PATTERN);
        let public = parameter::<super::public::PublicPosts>("after");
        assert_eq!(public["pattern"], Cursor::PATTERN);
    }
}
