//! What may be done in the community, and by whom.

use crate::identity::Role;
use crate::policy::{context_actions, Rule};

/// Everyone of the tenant who takes part: users and the staff who look after them.
const MEMBERS: &[Role] = &[Role::User, Role::Moderator, Role::Admin];
/// Those who look after what members write.
const MODERATORS: &[Role] = &[Role::Moderator, Role::Admin];

context_actions! {
    /// The community context's actions.
    pub enum CommunityAction in "community" {
        /// Create a category.
        CreateCategory = "create_category" => Rule::roles(&[Role::Admin]),
        /// Rename a category or change its description.
        ChangeCategory = "change_category" => Rule::roles(&[Role::Admin]),
        /// Archive a category: it takes no new posts; its posts stay readable.
        ArchiveCategory = "archive_category" => Rule::roles(&[Role::Admin]),
        /// Write a post in an open category.
        WritePost = "write_post" => Rule::roles(MEMBERS),
        /// Edit a post (its author only, within the edit window).
        EditPost = "edit_post" => Rule::roles(&[]).or_subject(),
        /// Remove a post (its author, or a moderator).
        RemovePost = "remove_post" => Rule::roles(MODERATORS).or_subject(),
        /// Lock or unlock a post.
        LockPost = "lock_post" => Rule::roles(MODERATORS),
        /// Pin or unpin a post.
        PinPost = "pin_post" => Rule::roles(MODERATORS),
        /// Comment on a post that is neither locked nor removed, or reply to a comment.
        WriteComment = "write_comment" => Rule::roles(MEMBERS),
        /// Edit a comment (its author only, within the edit window).
        EditComment = "edit_comment" => Rule::roles(&[]).or_subject(),
        /// Remove a comment (its author, or a moderator).
        RemoveComment = "remove_comment" => Rule::roles(MODERATORS).or_subject(),
        /// Add or withdraw one's own reaction to a post or comment.
        React = "react" => Rule::roles(MEMBERS),
        /// Report a post or comment to the moderators (once per member and target).
        ReportContent = "report_content" => Rule::roles(MEMBERS),
        /// Read the moderation queue: open reports with what they report.
        ReadModerationQueue = "read_moderation_queue" =>
            Rule::roles(&[Role::Moderator, Role::Admin, Role::Auditor]),
        /// Resolve a report: hide what it reports, or dismiss it.
        ResolveReport = "resolve_report" => Rule::roles(MODERATORS),
        /// Suspend a member from writing until a time, or lift it.
        SuspendMember = "suspend_member" => Rule::roles(MODERATORS),
        /// Read a member's standing (the member, or staff).
        ReadMember = "read_member" =>
            Rule::roles(&[Role::Moderator, Role::Admin, Role::Auditor]).or_subject(),
        /// Draft, edit, publish and retract announcements.
        ManageAnnouncements = "manage_announcements" => Rule::roles(&[Role::Admin]),
        /// List every announcement, drafts and retracted ones included.
        ListAnnouncements = "list_announcements" => Rule::roles(&[Role::Admin, Role::Auditor]),
        /// Read the announcements current for oneself, and mark them read.
        ReadAnnouncements = "read_announcements" => Rule::roles(&[
            Role::User,
            Role::Moderator,
            Role::Admin,
            Role::Auditor,
            Role::Worker,
        ]),
        /// Open the community to anonymous readers, or close it again.
        ManageCommunitySettings = "manage_community_settings" => Rule::roles(&[Role::Admin]),
        /// Read the community's settings.
        ReadCommunitySettings = "read_community_settings" =>
            Rule::roles(&[Role::Admin, Role::Moderator, Role::Auditor]),
        /// Read categories and posts. Auditors read everything, removed posts included.
        ReadCommunity = "read_community" =>
            Rule::roles(&[Role::User, Role::Moderator, Role::Admin, Role::Auditor]),
    }
}

/// Whether a reader with `roles` sees removed posts of others (marked as removed).
pub fn sees_removed(roles: &crate::identity::Roles) -> bool {
    [Role::Moderator, Role::Admin, Role::Auditor]
        .iter()
        .any(|role| roles.contains(role))
}
