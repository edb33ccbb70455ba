//! Reading the community models, with what each reader may see applied here, once.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

/// Who is reading: removed and hidden writing is shown to its author and to staff only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reader {
    /// The reader's account (its own removed posts stay visible to it).
    pub account: Uuid,
    /// Whether the reader sees everyone's removed and hidden writing (moderators, admins,
    /// auditors).
    pub sees_removed: bool,
}

/// A category with its activity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct CategoryView {
    pub category_id: Uuid,
    pub name: String,
    pub description: Option<String>,
    pub archived: bool,
    /// Posts readers see (removed ones are not counted).
    pub posts: i64,
    /// Comments readers see, on the posts readers see.
    pub comments: i64,
    /// The latest post written or edited in it, or its creation.
    pub last_activity_at: DateTime<Utc>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const SELECT_CATEGORY: &str = "
    SELECT c.category_id, c.name, c.description, c.archived, coalesce(a.posts, 0) AS posts,
           (SELECT coalesce(sum(pa.comments), 0)::bigint
              FROM read_models.community_posts p
              JOIN read_models.community_post_activity pa
                ON pa.tenant_id = p.tenant_id AND pa.post_id = p.post_id
             WHERE p.tenant_id = c.tenant_id AND p.category_id = c.category_id
               AND NOT (p.removed OR p.hidden)) AS comments,
           greatest(c.created_at, a.last_activity_at) AS last_activity_at, c.version,
           c.created_at, c.updated_at
      FROM read_models.community_categories c
      LEFT JOIN read_models.community_category_activity a
        ON a.tenant_id = c.tenant_id AND a.category_id = c.category_id";

/// One category of the tenant.
///
/// # Errors
/// When the database fails.
pub async fn get_category(
    pool: &PgPool,
    tenant_id: &str,
    category: Uuid,
) -> Result<Option<CategoryView>, sqlx::Error> {
    sqlx::query_as(&format!(
        "{SELECT_CATEGORY} WHERE c.tenant_id = $1 AND c.category_id = $2"
    ))
    .bind(tenant_id)
    .bind(category)
    .fetch_optional(pool)
    .await
}

/// A page of the tenant's categories in the order they were created (ids are time-ordered).
///
/// # Errors
/// When the database fails.
pub async fn list_categories(
    pool: &PgPool,
    tenant_id: &str,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<CategoryView>, sqlx::Error> {
    sqlx::query_as(&format!(
        "{SELECT_CATEGORY} WHERE c.tenant_id = $1 AND c.category_id > coalesce($2, $4)
          ORDER BY c.category_id LIMIT $3"
    ))
    .bind(tenant_id)
    .bind(after)
    .bind(limit)
    .bind(Uuid::nil())
    .fetch_all(pool)
    .await
}

/// A post as its readers see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct PostView {
    pub post_id: Uuid,
    pub category_id: Uuid,
    pub author: Uuid,
    pub title: String,
    /// Markdown, as written.
    pub body: String,
    pub locked: bool,
    pub pinned: bool,
    /// Only ever true for its author and staff: others do not see removed posts.
    pub removed: bool,
    /// Hidden by a moderator over a report; like `removed`, shown to its author and staff only.
    pub hidden: bool,
    /// How many times its author edited it.
    pub edits: i32,
    /// Comments readers see, replies included.
    pub comments: i64,
    pub version: i64,
    pub written_at: DateTime<Utc>,
    pub edited_at: Option<DateTime<Utc>>,
    /// Its writing, its last edit or its latest comment, whichever is last.
    pub last_activity_at: DateTime<Utc>,
}

/// A post in a list: everything but its body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct PostSummary {
    pub post_id: Uuid,
    pub category_id: Uuid,
    pub author: Uuid,
    pub title: String,
    pub locked: bool,
    pub pinned: bool,
    pub removed: bool,
    pub hidden: bool,
    pub edits: i32,
    pub comments: i64,
    pub version: i64,
    pub written_at: DateTime<Utc>,
    pub last_activity_at: DateTime<Utc>,
}

/// The posts with their activity (comments count and time, kept apart by comment events).
const FROM_POSTS: &str = "FROM read_models.community_posts p
      LEFT JOIN read_models.community_post_activity a
        ON a.tenant_id = p.tenant_id AND a.post_id = p.post_id";
/// A post's comments readers see.
const COMMENTS: &str = "coalesce(a.comments, 0) AS comments";
/// A post's last activity: its own, or its latest comment's.
const ACTIVITY: &str = "greatest(p.last_activity_at, a.last_activity_at)";

/// Post `post` of the tenant, if `reader` may see it.
///
/// # Errors
/// When the database fails.
pub async fn get_post(
    pool: &PgPool,
    tenant_id: &str,
    post: Uuid,
    reader: Reader,
) -> Result<Option<PostView>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT p.post_id, p.category_id, p.author, p.title, p.body, p.locked, p.pinned,
                p.removed, p.hidden, p.edits, {COMMENTS}, p.version, p.written_at, p.edited_at,
                {ACTIVITY} AS last_activity_at
           {FROM_POSTS}
          WHERE p.tenant_id = $1 AND p.post_id = $2 AND (NOT (p.removed OR p.hidden) OR $3 OR p.author = $4)"
    ))
    .bind(tenant_id)
    .bind(post)
    .bind(reader.sees_removed)
    .bind(reader.account)
    .fetch_optional(pool)
    .await
}

/// The order of a category's posts; pinned posts come first in either.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PostOrder {
    /// Newest written first.
    #[default]
    Newest,
    /// Most recently written or edited first.
    Active,
}

/// Where a page of posts starts: after this post (pinned or not, its time in the order, id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// Whether the last post was pinned.
    pub pinned: bool,
    /// The last post's time in the page's order.
    pub at: DateTime<Utc>,
    /// The last post's id.
    pub post_id: Uuid,
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}_{}_{}",
            u8::from(self.pinned),
            self.at.timestamp_micros(),
            self.post_id
        )
    }
}

impl std::str::FromStr for Cursor {
    type Err = ();

    /// Exactly what [`Cursor::PATTERN`] admits.
    fn from_str(raw: &str) -> Result<Self, ()> {
        let mut parts = raw.splitn(3, '_');
        let pinned = match parts.next() {
            Some("0") => false,
            Some("1") => true,
            _ => return Err(()),
        };
        let micros = parts
            .next()
            .filter(|digits| (1..=16).contains(&digits.len()))
            .filter(|digits| digits.bytes().all(|b| b.is_ascii_digit()))
            .ok_or(())?;
        // 36 characters: the hyphenated form only (the others are 32, 38 and 45 long).
        let post_id = parts.next().filter(|id| id.len() == 36).ok_or(())?;
        Ok(Self {
            pinned,
            at: DateTime::from_timestamp_micros(micros.parse().map_err(|_| ())?).ok_or(())?,
            post_id: post_id.parse().map_err(|_| ())?,
        })
    }
}

impl Cursor {
    /// The pattern of every cursor: pinned (`0` or `1`), microseconds since 1970 (up to 16
    /// digits, the year 2286), the post's id.
    pub const PATTERN: &'static str = "^[01]_[0-9]{1,16}_[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";
}

/// A page of a category's posts that `reader` may see, pinned first, then in `order`; the
/// cursor of the next page if there is one.
///
/// # Errors
/// When the database fails.
pub async fn list_posts(
    pool: &PgPool,
    tenant_id: &str,
    category: Uuid,
    order: PostOrder,
    reader: Reader,
    after: Option<Cursor>,
    limit: i64,
) -> Result<(Vec<PostSummary>, Option<Cursor>), sqlx::Error> {
    let time = match order {
        PostOrder::Newest => "p.written_at",
        PostOrder::Active => ACTIVITY,
    };
    // Pinned posts (true) come first: after a cursor are the less pinned, then the older.
    let mut posts: Vec<PostSummary> = sqlx::query_as(&format!(
        "SELECT p.post_id, p.category_id, p.author, p.title, p.locked, p.pinned, p.removed,
                p.hidden, p.edits, {COMMENTS}, p.version, p.written_at, {ACTIVITY} AS last_activity_at
           {FROM_POSTS}
          WHERE p.tenant_id = $1 AND p.category_id = $2 AND (NOT (p.removed OR p.hidden) OR $3 OR p.author = $4)
            AND ($5::boolean IS NULL OR p.pinned < $5
                 OR (p.pinned = $5 AND ({time}, p.post_id) < ($7::timestamptz, $8::uuid)))
          ORDER BY p.pinned DESC, {time} DESC, p.post_id DESC
          LIMIT $6"
    ))
    .bind(tenant_id)
    .bind(category)
    .bind(reader.sees_removed)
    .bind(reader.account)
    .bind(after.map(|cursor| cursor.pinned))
    .bind(limit + 1)
    .bind(after.map(|cursor| cursor.at))
    .bind(after.map(|cursor| cursor.post_id))
    .fetch_all(pool)
    .await?;
    let next = if posts.len() as i64 > limit {
        posts.truncate(limit.max(0) as usize);
        posts.last().map(|post| Cursor {
            pinned: post.pinned,
            at: match order {
                PostOrder::Newest => post.written_at,
                PostOrder::Active => post.last_activity_at,
            },
            post_id: post.post_id,
        })
    } else {
        None
    };
    Ok((posts, next))
}
