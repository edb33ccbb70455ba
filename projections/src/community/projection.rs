//! Builds the community tables from category and post events.

use chrono::{DateTime, Utc};
use domain::aggregate::Decider;
use domain::community::{Category, CategoryEvent, Post, PostEvent};
use domain::event::RecordedEvent;
use domain::identity::StreamId;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::engine::{ApplyError, Projection};

/// Builds `read_models.community_categories`, `community_category_activity` and
/// `community_posts`.
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
        &[Category::TYPE, Post::TYPE]
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            "community_categories",
            "community_category_activity",
            "community_posts",
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
        if event.aggregate_type == Category::TYPE {
            apply_category(connection, event, stream.id).await
        } else {
            apply_post(connection, event, stream.id).await
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
                     removed, edits, version, written_at, last_activity_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, false, false, false, 0, $7, $8, $8, $8)",
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
            return activity(connection, &event.tenant_id, category, 1, at).await;
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
            return activity(connection, &event.tenant_id, category, 0, at).await;
        }
        PostEvent::PostRemoved { .. } => {
            let category: Option<(Uuid, DateTime<Utc>)> = sqlx::query_as(
                "UPDATE community_posts
                    SET removed = true, version = $3, updated_at = $4
                  WHERE tenant_id = $1 AND post_id = $2
              RETURNING category_id, last_activity_at",
            )
            .bind(&event.tenant_id)
            .bind(post)
            .bind(event.sequence)
            .bind(at)
            .fetch_optional(&mut *connection)
            .await?;
            let (category, last) = category.ok_or_else(|| unknown(event, "post", post))?;
            return activity(connection, &event.tenant_id, category, -1, last).await;
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

/// Adds `posts` to a category's count of visible posts and moves its last activity to `at` if
/// later. Additive, so it commutes with the category's own events in another partition.
async fn activity(
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

fn unknown(event: &RecordedEvent, what: &str, id: Uuid) -> ApplyError {
    ApplyError::Inconsistent(format!("{} for unknown {what} {id}", event.event_type))
}

fn one_row(affected: u64, event: &RecordedEvent, what: &str, id: Uuid) -> Result<(), ApplyError> {
    if affected == 1 {
        Ok(())
    } else {
        Err(unknown(event, what, id))
    }
}
