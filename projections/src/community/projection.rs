//! Builds the community tables from category, post, comment and reaction events.

use chrono::{DateTime, Utc};
use domain::aggregate::Decider;
use domain::community::{
    Announcement, Category, CategoryEvent, Comment, CommentEvent, Member, Post, PostEvent,
    ReactionEvent, PublicPages, Reactions, Readings, Report,
};
use domain::event::RecordedEvent;
use domain::identity::StreamId;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{announcements, moderation, settings};
use crate::engine::{ApplyError, Projection};

/// Builds the `read_models.community_*` tables.
#[derive(Debug, Clone, Copy, Default)]
pub struct CommunityProjection;

impl CommunityProjection {
    /// The projection's stable name.
    pub const NAME: &'static str = "community";
}

impl Projection for CommunityProjection {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn version(&self) -> u32 {
        1
    }

    fn aggregate_types(&self) -> &'static [&'static str] {
        &[
            Category::TYPE,
            Post::TYPE,
            Comment::TYPE,
            Reactions::TYPE,
            Report::TYPE,
            Member::TYPE,
            Announcement::TYPE,
            Readings::TYPE,
            PublicPages::TYPE,
        ]
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            "community_categories",
            "community_category_activity",
            "community_posts",
            "community_post_activity",
            "community_comments",
            "community_reactions",
            "community_reports",
            "community_members",
            "community_announcements",
            "community_announcement_reads",
            "community_settings",
        ]
    }

    async fn apply(
        &self,
        connection: &mut PgConnection,
        event: &RecordedEvent,
    ) -> Result<(), ApplyError> {
        let stream: StreamId = event
            .aggregate_id
            .parse()
            .map_err(|_| ApplyError::Inconsistent(format!("stream id {:?}", event.aggregate_id)))?;
        match event.aggregate_type.as_str() {
            Category::TYPE => apply_category(connection, event, stream.id).await,
            Post::TYPE => apply_post(connection, event, stream.id).await,
            Comment::TYPE => apply_comment(connection, event, stream.id).await,
            Reactions::TYPE => apply_reaction(connection, event).await,
            Report::TYPE => moderation::apply_report(connection, event, stream.id).await,
            Member::TYPE => moderation::apply_member(connection, event, stream.id).await,
            Announcement::TYPE => {
                announcements::apply_announcement(connection, event, stream.id).await
            }
            Readings::TYPE => announcements::apply_reading(connection, event).await,
            _ => settings::apply_public_pages(connection, event).await,
        }
    }
}

async fn apply_category(
    connection: &mut PgConnection,
    event: &RecordedEvent,
    category: Uuid,
) -> Result<(), ApplyError> {
    let payload: CategoryEvent = ApplyError::decode(event)?;
    let at = payload.at();
    let (name, description, archived) = match payload {
        CategoryEvent::CategoryCreated {
            name, description, ..
        } => {
            sqlx::query(
                "INSERT INTO community_categories
                    (tenant_id, category_id, name, description, archived, version, created_at,
                     updated_at)
                 VALUES ($1, $2, $3, $4, false, $5, $6, $6)",
            )
            .bind(&event.tenant_id)
            .bind(category)
            .bind(name.as_str())
            .bind(description.as_ref().map(|body| body.as_str()))
            .bind(event.sequence)
            .bind(at)
            .execute(connection)
            .await?;
            return Ok(());
        }
        CategoryEvent::CategoryRenamed { name, .. } => (Some(name), None, None),
        CategoryEvent::CategoryDescribed { description, .. } => (None, Some(description), None),
        CategoryEvent::CategoryArchived { .. } => (None, None, Some(true)),
    };
    let updated = sqlx::query(
        "UPDATE community_categories
            SET name = coalesce($3, name),
                description = CASE WHEN $4 THEN $5 ELSE description END,
                archived = coalesce($6, archived),
                version = $7,
                updated_at = $8
          WHERE tenant_id = $1 AND category_id = $2",
    )
    .bind(&event.tenant_id)
    .bind(category)
    .bind(name.as_ref().map(|name| name.as_str()))
    .bind(description.is_some())
    .bind(description.flatten().as_ref().map(|body| body.as_str().to_owned()))
    .bind(archived)
    .bind(event.sequence)
    .bind(at)
    .execute(connection)
    .await?;
    one_row(updated.rows_affected(), event, "category", category)
}

async fn apply_post(
    connection: &mut PgConnection,
    event: &RecordedEvent,
    post: Uuid,
) -> Result<(), ApplyError> {
    let payload: PostEvent = ApplyError::decode(event)?;
    let at = payload.at();
    let (locked, pinned) = match payload {
        PostEvent::PostWritten {
            category,
            author,
            title,
            body,
            ..
        } => {
            sqlx::query(
                "INSERT INTO community_posts
                    (tenant_id, post_id, category_id, author, title, body, locked, pinned,
                     removed, hidden, edits, version, written_at, last_activity_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, false, false, false, false, 0, $7, $8, $8, $8)",
            )
            .bind(&event.tenant_id)
            .bind(post)
            .bind(category)
            .bind(author)
            .bind(title.as_str())
            .bind(body.as_str())
            .bind(event.sequence)
            .bind(at)
            .execute(&mut *connection)
            .await?;
            return category_activity(connection, &event.tenant_id, category, 1, at).await;
        }
        PostEvent::PostEdited { title, body, .. } => {
            let category: Option<Uuid> = sqlx::query_scalar(
                "UPDATE community_posts
                    SET title = $3, body = $4, edits = edits + 1, edited_at = $5,
                        last_activity_at = greatest(last_activity_at, $5), version = $6,
                        updated_at = $5
                  WHERE tenant_id = $1 AND post_id = $2
              RETURNING category_id",
            )
            .bind(&event.tenant_id)
            .bind(post)
            .bind(title.as_str())
            .bind(body.as_str())
            .bind(at)
            .bind(event.sequence)
            .fetch_optional(&mut *connection)
            .await?;
            let category = category.ok_or_else(|| unknown(event, "post", post))?;
            return category_activity(connection, &event.tenant_id, category, 0, at).await;
        }
        gone @ (PostEvent::PostRemoved { .. } | PostEvent::PostHidden { .. }) => {
            // Neither happens to a post that is already gone: each takes one off the count.
            let flag = match gone {
                PostEvent::PostRemoved { .. } => "removed",
                _ => "hidden",
            };
            let category: Option<(Uuid, DateTime<Utc>)> = sqlx::query_as(&format!(
                "UPDATE community_posts
                    SET {flag} = true, version = $3, updated_at = $4
                  WHERE tenant_id = $1 AND post_id = $2
              RETURNING category_id, last_activity_at"
            ))
            .bind(&event.tenant_id)
            .bind(post)
            .bind(event.sequence)
            .bind(at)
            .fetch_optional(&mut *connection)
            .await?;
            let (category, last) = category.ok_or_else(|| unknown(event, "post", post))?;
            return category_activity(connection, &event.tenant_id, category, -1, last).await;
        }
        PostEvent::PostLocked { .. } => (Some(true), None),
        PostEvent::PostUnlocked { .. } => (Some(false), None),
        PostEvent::PostPinned { .. } => (None, Some(true)),
        PostEvent::PostUnpinned { .. } => (None, Some(false)),
    };
    let updated = sqlx::query(
        "UPDATE community_posts
            SET locked = coalesce($3, locked), pinned = coalesce($4, pinned), version = $5,
                updated_at = $6
          WHERE tenant_id = $1 AND post_id = $2",
    )
    .bind(&event.tenant_id)
    .bind(post)
    .bind(locked)
    .bind(pinned)
    .bind(event.sequence)
    .bind(at)
    .execute(connection)
    .await?;
    one_row(updated.rows_affected(), event, "post", post)
}

async fn apply_comment(
    connection: &mut PgConnection,
    event: &RecordedEvent,
    comment: Uuid,
) -> Result<(), ApplyError> {
    let tenant = &event.tenant_id;
    let (post, written_at) = match ApplyError::decode::<CommentEvent>(event)? {
        CommentEvent::CommentWritten {
            post,
            category,
            parent,
            author,
            body,
            at,
        } => {
            sqlx::query(
                "INSERT INTO community_comments
                    (tenant_id, comment_id, post_id, category_id, parent_id, author, body,
                     removed, hidden, edits, version, written_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, false, false, 0, $8, $9, $9)",
            )
            .bind(tenant)
            .bind(comment)
            .bind(post)
            .bind(category)
            .bind(parent)
            .bind(author)
            .bind(body.as_str())
            .bind(event.sequence)
            .bind(at)
            .execute(&mut *connection)
            .await?;
            post_activity(connection, tenant, post, 1, at).await?;
            return category_activity(connection, tenant, category, 0, at).await;
        }
        CommentEvent::CommentEdited { body, at } => {
            let updated = sqlx::query(
                "UPDATE community_comments
                    SET body = $3, edits = edits + 1, edited_at = $4, version = $5,
                        updated_at = $4
                  WHERE tenant_id = $1 AND comment_id = $2",
            )
            .bind(tenant)
            .bind(comment)
            .bind(body.as_str())
            .bind(at)
            .bind(event.sequence)
            .execute(connection)
            .await?;
            return one_row(updated.rows_affected(), event, "comment", comment);
        }
        gone @ (CommentEvent::CommentRemoved { .. } | CommentEvent::CommentHidden { .. }) => {
            // Neither happens to a comment that is already gone: each takes one off its post's
            // count.
            let flag = match gone {
                CommentEvent::CommentRemoved { .. } => "removed",
                _ => "hidden",
            };
            let at = gone.at();
            let row: Option<(Uuid, DateTime<Utc>)> = sqlx::query_as(&format!(
                "UPDATE community_comments
                    SET {flag} = true, version = $3, updated_at = $4
                  WHERE tenant_id = $1 AND comment_id = $2
              RETURNING post_id, written_at"
            ))
            .bind(tenant)
            .bind(comment)
            .bind(event.sequence)
            .bind(at)
            .fetch_optional(&mut *connection)
            .await?;
            row.ok_or_else(|| unknown(event, "comment", comment))?
        }
    };
    // Going leaves the last activity where it was (given the comment's writing). The category
    // counts its comments from its posts' counts when read, so a post that goes takes its
    // comments out with it, whatever order the partitions applied them in.
    post_activity(connection, tenant, post, -1, written_at).await
}

async fn apply_reaction(
    connection: &mut PgConnection,
    event: &RecordedEvent,
) -> Result<(), ApplyError> {
    let (target, member, kind, added) = match ApplyError::decode::<ReactionEvent>(event)? {
        ReactionEvent::ReactionAdded {
            target,
            member,
            kind,
            ..
        } => (target, member, kind, true),
        ReactionEvent::ReactionWithdrawn {
            target,
            member,
            kind,
            ..
        } => (target, member, kind, false),
    };
    let statement = if added {
        "INSERT INTO community_reactions (tenant_id, target_kind, target_id, member, kind)
         VALUES ($1, $5, $2, $3, $4)"
    } else {
        "DELETE FROM community_reactions
          WHERE tenant_id = $1 AND target_id = $2 AND member = $3 AND kind = $4
            AND target_kind = $5"
    };
    let changed = sqlx::query(statement)
        .bind(&event.tenant_id)
        .bind(target.id())
        .bind(member)
        .bind(kind.as_str())
        .bind(target.kind())
        .execute(connection)
        .await?;
    one_row(changed.rows_affected(), event, "reaction of", member)
}

/// Adds `posts` to a category's count of posts readers see, and moves its last activity to
/// `at` if later. Additive, so it commutes with the category's own events in another partition.
async fn category_activity(
    connection: &mut PgConnection,
    tenant: &str,
    category: Uuid,
    posts: i64,
    at: DateTime<Utc>,
) -> Result<(), ApplyError> {
    sqlx::query(
        "INSERT INTO community_category_activity (tenant_id, category_id, posts, last_activity_at)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (tenant_id, category_id) DO UPDATE
            SET posts = community_category_activity.posts + EXCLUDED.posts,
                last_activity_at = greatest(community_category_activity.last_activity_at,
                                            EXCLUDED.last_activity_at)",
    )
    .bind(tenant)
    .bind(category)
    .bind(posts)
    .bind(at)
    .execute(connection)
    .await?;
    Ok(())
}

/// Adds `comments` to a post's count of what readers see, and moves its last activity to `at`
/// if later; additive, like [`category_activity`].
async fn post_activity(
    connection: &mut PgConnection,
    tenant: &str,
    post: Uuid,
    comments: i64,
    at: DateTime<Utc>,
) -> Result<(), ApplyError> {
    sqlx::query(
        "INSERT INTO community_post_activity (tenant_id, post_id, comments, last_activity_at)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (tenant_id, post_id) DO UPDATE
            SET comments = community_post_activity.comments + EXCLUDED.comments,
                last_activity_at = greatest(community_post_activity.last_activity_at,
                                            EXCLUDED.last_activity_at)",
    )
    .bind(tenant)
    .bind(post)
    .bind(comments)
    .bind(at)
    .execute(connection)
    .await?;
    Ok(())
}

pub(super) fn unknown(event: &RecordedEvent, what: &str, id: Uuid) -> ApplyError {
    ApplyError::Inconsistent(format!("{} for unknown {what} {id}", event.event_type))
}

pub(super) fn one_row(affected: u64, event: &RecordedEvent, what: &str, id: Uuid) -> Result<(), ApplyError> {
    if affected == 1 {
        Ok(())
    } else {
        Err(unknown(event, what, id))
    }
}
