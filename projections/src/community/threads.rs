//! Reading a post's comments as threads, and the reactions to posts and comments.
//!
//! A removed or hidden comment's text and author are never served to a reader who may not see
//! such writing: a top-level one stays in its thread as a tombstone (so its replies keep their
//! place), and a reply is left out.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use super::Reader;

/// A comment as one reader may see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct CommentView {
    pub comment_id: Uuid,
    pub post_id: Uuid,
    /// The comment it replies to, if it is a reply.
    pub parent_id: Option<Uuid>,
    /// `None` in a tombstone: a removed comment this reader may not see.
    pub author: Option<Uuid>,
    /// `None` in a tombstone.
    pub body: Option<String>,
    pub removed: bool,
    /// Hidden by a moderator over a report.
    pub hidden: bool,
    pub edits: i32,
    pub version: i64,
    pub written_at: DateTime<Utc>,
    pub edited_at: Option<DateTime<Utc>>,
}

/// The columns of a comment, with its text and author blanked for a reader who may not see it.
const COMMENT: &str = "SELECT comment_id, post_id, parent_id,
           CASE WHEN NOT (removed OR hidden) OR $3 OR author = $4 THEN author END AS author,
           CASE WHEN NOT (removed OR hidden) OR $3 OR author = $4 THEN body END AS body,
           removed, hidden, edits, version, written_at, edited_at
      FROM read_models.community_comments";

/// Comment `comment` of the tenant, if `reader` may see it (a removed one only by its author
/// and staff).
///
/// # Errors
/// When the database fails.
pub async fn get_comment(
    pool: &PgPool,
    tenant_id: &str,
    comment: Uuid,
    reader: Reader,
) -> Result<Option<CommentView>, sqlx::Error> {
    // A comment is read only with its post: under a post this reader may not see, it is not
    // there either.
    sqlx::query_as(&format!(
        "{COMMENT} c
          WHERE tenant_id = $1 AND comment_id = $2 AND (NOT (removed OR hidden) OR $3 OR author = $4)
            AND EXISTS (SELECT 1 FROM read_models.community_posts p
                         WHERE p.tenant_id = c.tenant_id AND p.post_id = c.post_id
                           AND (NOT (p.removed OR p.hidden) OR $3 OR p.author = $4))"
    ))
    .bind(tenant_id)
    .bind(comment)
    .bind(reader.sees_removed)
    .bind(reader.account)
    .fetch_optional(pool)
    .await
}

/// A top-level comment and its replies, in the order they were written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Thread {
    pub comment: CommentView,
    pub replies: Vec<CommentView>,
}

/// A page of post `post`'s threads (top-level comments after `after`, in the order written,
/// each with every reply `reader` may see); the cursor of the next page if there is one.
///
/// # Errors
/// When the database fails.
pub async fn list_threads(
    pool: &PgPool,
    tenant_id: &str,
    post: Uuid,
    reader: Reader,
    after: Option<Uuid>,
    limit: i64,
) -> Result<(Vec<Thread>, Option<Uuid>), sqlx::Error> {
    // Comment ids are time-ordered (UUIDv7): id order is the order they were written in.
    let mut tops: Vec<CommentView> = sqlx::query_as(&format!(
        "{COMMENT} WHERE tenant_id = $1 AND post_id = $2 AND parent_id IS NULL
            AND comment_id > coalesce($5, $6)
          ORDER BY comment_id LIMIT $7"
    ))
    .bind(tenant_id)
    .bind(post)
    .bind(reader.sees_removed)
    .bind(reader.account)
    .bind(after)
    .bind(Uuid::nil())
    .bind(limit + 1)
    .fetch_all(pool)
    .await?;
    let next = if tops.len() as i64 > limit {
        tops.truncate(limit.max(0) as usize);
        tops.last().map(|comment| comment.comment_id)
    } else {
        None
    };
    let parents: Vec<Uuid> = tops.iter().map(|comment| comment.comment_id).collect();
    let replies: Vec<CommentView> = sqlx::query_as(&format!(
        "{COMMENT} WHERE tenant_id = $1 AND post_id = $2 AND parent_id = ANY($5)
            AND (NOT (removed OR hidden) OR $3 OR author = $4)
          ORDER BY comment_id"
    ))
    .bind(tenant_id)
    .bind(post)
    .bind(reader.sees_removed)
    .bind(reader.account)
    .bind(&parents)
    .fetch_all(pool)
    .await?;
    let mut by_parent: HashMap<Uuid, Vec<CommentView>> = HashMap::new();
    for reply in replies {
        if let Some(parent) = reply.parent_id {
            by_parent.entry(parent).or_default().push(reply);
        }
    }
    let threads = tops
        .into_iter()
        .map(|comment| Thread {
            replies: by_parent.remove(&comment.comment_id).unwrap_or_default(),
            comment,
        })
        .collect();
    Ok((threads, next))
}

/// The reactions to one post or comment: how many of each kind, and the reader's own.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReactionSummary {
    /// Kind → how many members reacted so (kinds nobody used are absent).
    pub counts: BTreeMap<String, i64>,
    /// The kinds the reader reacted with.
    pub mine: Vec<String>,
}

/// The reactions to each of `targets` (posts or comments of the tenant), as `reader` sees them.
///
/// # Errors
/// When the database fails.
pub async fn reactions(
    pool: &PgPool,
    tenant_id: &str,
    targets: &[Uuid],
    reader: Reader,
) -> Result<HashMap<Uuid, ReactionSummary>, sqlx::Error> {
    let rows: Vec<(Uuid, String, i64, bool)> = sqlx::query_as(
        "SELECT target_id, kind, count(*), bool_or(member = $3)
           FROM read_models.community_reactions
          WHERE tenant_id = $1 AND target_id = ANY($2)
          GROUP BY target_id, kind
          ORDER BY target_id, kind",
    )
    .bind(tenant_id)
    .bind(targets)
    .bind(reader.account)
    .fetch_all(pool)
    .await?;
    let mut summaries: HashMap<Uuid, ReactionSummary> = HashMap::new();
    for (target, kind, count, mine) in rows {
        let summary = summaries.entry(target).or_default();
        if mine {
            summary.mine.push(kind.clone());
        }
        summary.counts.insert(kind, count);
    }
    Ok(summaries)
}

/// A member's post or comment in their activity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct ActivityView {
    /// `post` or `comment`.
    pub kind: String,
    /// The post's or comment's id.
    pub id: Uuid,
    /// The post (a comment's post, or the post itself).
    pub post_id: Uuid,
    /// A post's title; `None` for a comment.
    pub title: Option<String>,
    pub body: String,
    pub removed: bool,
    pub hidden: bool,
    pub written_at: DateTime<Utc>,
}

/// A page of `member`'s posts and comments that `reader` may see, newest first, after
/// `after` (written at, id); the cursor of the next page if there is one. A comment counts
/// only while its post is one the reader may see.
///
/// # Errors
/// When the database fails.
pub async fn activity(
    pool: &PgPool,
    tenant_id: &str,
    member: Uuid,
    reader: Reader,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<(Vec<ActivityView>, Option<(DateTime<Utc>, Uuid)>), sqlx::Error> {
    let mut page: Vec<ActivityView> = sqlx::query_as(
        "SELECT * FROM (
             SELECT 'post' AS kind, p.post_id AS id, p.post_id, p.title, p.body, p.removed,
                    p.hidden, p.written_at
               FROM read_models.community_posts p
              WHERE p.tenant_id = $1 AND p.author = $2
                AND (NOT (p.removed OR p.hidden) OR $3 OR p.author = $4)
             UNION ALL
             SELECT 'comment', c.comment_id, c.post_id, NULL, c.body, c.removed, c.hidden,
                    c.written_at
               FROM read_models.community_comments c
               JOIN read_models.community_posts p
                 ON p.tenant_id = c.tenant_id AND p.post_id = c.post_id
              WHERE c.tenant_id = $1 AND c.author = $2
                AND (NOT (c.removed OR c.hidden) OR $3 OR c.author = $4)
                AND (NOT (p.removed OR p.hidden) OR $3 OR p.author = $4)
         ) activity
          WHERE $5::timestamptz IS NULL OR (written_at, id) < ($5, $6::uuid)
          ORDER BY written_at DESC, id DESC
          LIMIT $7",
    )
    .bind(tenant_id)
    .bind(member)
    .bind(reader.sees_removed)
    .bind(reader.account)
    .bind(after.map(|(at, _)| at))
    .bind(after.map(|(_, id)| id))
    .bind(limit + 1)
    .fetch_all(pool)
    .await?;
    let next = if page.len() as i64 > limit {
        page.truncate(limit.max(0) as usize);
        page.last().map(|last| (last.written_at, last.id))
    } else {
        None
    };
    Ok((page, next))
}
