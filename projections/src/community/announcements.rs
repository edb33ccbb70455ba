//! The announcements read models: every announcement, who read which, and the announcements
//! current for a reader at a given instant.

use chrono::{DateTime, Utc};
use domain::community::{AnnouncementEvent, AnnouncementStatus, Notice, ReadingEvent};
use domain::event::RecordedEvent;
use domain::identity::Roles;
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::projection::one_row;
use crate::engine::ApplyError;

pub(super) async fn apply_announcement(
    connection: &mut PgConnection,
    event: &RecordedEvent,
    announcement: Uuid,
) -> Result<(), ApplyError> {
    let payload: AnnouncementEvent = ApplyError::decode(event)?;
    let at = payload.at();
    let changed = match payload {
        AnnouncementEvent::AnnouncementDrafted { notice, .. } => {
            let roles = audience(&notice);
            sqlx::query(
                "INSERT INTO community_announcements
                    (tenant_id, announcement_id, title, body, audience, starts_at, ends_at,
                     pinned, status, version, drafted_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'draft', $9, $10, $10)",
            )
            .bind(&event.tenant_id)
            .bind(announcement)
            .bind(notice.title.as_str())
            .bind(notice.body.as_str())
            .bind(roles)
            .bind(notice.starts_at)
            .bind(notice.ends_at)
            .bind(notice.pinned)
            .bind(event.sequence)
            .bind(at)
            .execute(connection)
            .await?
        }
        AnnouncementEvent::AnnouncementEdited { notice, .. } => {
            let roles = audience(&notice);
            sqlx::query(
                "UPDATE community_announcements
                    SET title = $3, body = $4, audience = $5, starts_at = $6, ends_at = $7,
                        pinned = $8, version = $9, updated_at = $10
                  WHERE tenant_id = $1 AND announcement_id = $2",
            )
            .bind(&event.tenant_id)
            .bind(announcement)
            .bind(notice.title.as_str())
            .bind(notice.body.as_str())
            .bind(roles)
            .bind(notice.starts_at)
            .bind(notice.ends_at)
            .bind(notice.pinned)
            .bind(event.sequence)
            .bind(at)
            .execute(connection)
            .await?
        }
        status @ (AnnouncementEvent::AnnouncementPublished { .. }
        | AnnouncementEvent::AnnouncementRetracted { .. }) => {
            let (status, published) = match status {
                AnnouncementEvent::AnnouncementPublished { .. } => {
                    (AnnouncementStatus::Published, Some(at))
                }
                _ => (AnnouncementStatus::Retracted, None),
            };
            sqlx::query(
                "UPDATE community_announcements
                    SET status = $3, published_at = coalesce($4, published_at), version = $5,
                        updated_at = $6
                  WHERE tenant_id = $1 AND announcement_id = $2",
            )
            .bind(&event.tenant_id)
            .bind(announcement)
            .bind(status.as_str())
            .bind(published)
            .bind(event.sequence)
            .bind(at)
            .execute(connection)
            .await?
        }
    };
    one_row(changed.rows_affected(), event, "announcement", announcement)
}

/// The roles a notice is for, as stored: `None` for everyone.
fn audience(notice: &Notice) -> Option<Vec<&'static str>> {
    notice
        .audience
        .as_ref()
        .map(|roles| roles.iter().map(|role| role.as_str()).collect())
}

pub(super) async fn apply_reading(
    connection: &mut PgConnection,
    event: &RecordedEvent,
) -> Result<(), ApplyError> {
    let ReadingEvent::AnnouncementRead {
        announcement,
        reader,
        at,
    } = ApplyError::decode(event)?;
    sqlx::query(
        "INSERT INTO community_announcement_reads (tenant_id, announcement_id, reader, read_at)
         VALUES ($1, $2, $3, $4)",
    )
    .bind(&event.tenant_id)
    .bind(announcement)
    .bind(reader)
    .bind(at)
    .execute(connection)
    .await?;
    Ok(())
}

/// An announcement as the read model shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct AnnouncementView {
    pub announcement_id: Uuid,
    pub title: String,
    pub body: String,
    /// The roles it is for; `None`: everyone.
    pub audience: Option<Vec<String>>,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub pinned: bool,
    /// `draft`, `published` or `retracted`.
    pub status: String,
    pub published_at: Option<DateTime<Utc>>,
    /// Whether the reader marked it read (always false in the admin's list).
    pub read: bool,
    pub version: i64,
    pub drafted_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const SELECT_ANNOUNCEMENT: &str = "
    SELECT a.announcement_id, a.title, a.body, a.audience, a.starts_at, a.ends_at, a.pinned,
           a.status, a.published_at, r.reader IS NOT NULL AS read, a.version, a.drafted_at,
           a.updated_at
      FROM read_models.community_announcements a
      LEFT JOIN read_models.community_announcement_reads r
        ON r.tenant_id = a.tenant_id AND r.announcement_id = a.announcement_id AND r.reader = $2";

/// Announcement `announcement` of the tenant, whatever its status.
///
/// # Errors
/// When the database fails.
pub async fn get_announcement(
    pool: &PgPool,
    tenant_id: &str,
    announcement: Uuid,
) -> Result<Option<AnnouncementView>, sqlx::Error> {
    sqlx::query_as(&format!(
        "{SELECT_ANNOUNCEMENT} WHERE a.tenant_id = $1 AND a.announcement_id = $3"
    ))
    .bind(tenant_id)
    .bind(Uuid::nil())
    .bind(announcement)
    .fetch_optional(pool)
    .await
}

/// A page of every announcement of the tenant, newest first (ids are time-ordered).
///
/// # Errors
/// When the database fails.
pub async fn all_announcements(
    pool: &PgPool,
    tenant_id: &str,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<AnnouncementView>, sqlx::Error> {
    sqlx::query_as(&format!(
        "{SELECT_ANNOUNCEMENT}
          WHERE a.tenant_id = $1 AND ($3::uuid IS NULL OR a.announcement_id < $3)
          ORDER BY a.announcement_id DESC LIMIT $4"
    ))
    .bind(tenant_id)
    .bind(Uuid::nil())
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Who is asking for their current announcements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audience<'a> {
    /// The reader's account (whose readings count).
    pub account: Uuid,
    /// The reader's roles (an announcement for listed roles needs one of them).
    pub roles: &'a Roles,
}

/// Where a page of current announcements starts: after this one (read or not, pinned or not,
/// published at, id), in the order unread first, pinned first, newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnnouncementCursor {
    /// Whether the last one was read.
    pub read: bool,
    /// Whether it was pinned.
    pub pinned: bool,
    /// When it was published.
    pub published_at: DateTime<Utc>,
    /// Its id.
    pub announcement_id: Uuid,
}

/// The announcements current for `reader` at `now`: published, within their window (a start
/// is inclusive, an end exclusive), for everyone or for one of the reader's roles; unread
/// first, then pinned, then newest. With the cursor of the next page, if there is one.
///
/// `now` is a parameter so that what is current at any instant can be asked and tested.
///
/// # Errors
/// When the database fails.
pub async fn current_announcements(
    pool: &PgPool,
    tenant_id: &str,
    reader: &Audience<'_>,
    now: DateTime<Utc>,
    after: Option<AnnouncementCursor>,
    limit: i64,
) -> Result<(Vec<AnnouncementView>, Option<AnnouncementCursor>), sqlx::Error> {
    let roles: Vec<&str> = reader.roles.iter().map(|role| role.as_str()).collect();
    let mut page: Vec<AnnouncementView> = sqlx::query_as(&format!(
        "SELECT * FROM ({SELECT_ANNOUNCEMENT}
          WHERE a.tenant_id = $1 AND a.status = 'published'
            AND (a.starts_at IS NULL OR a.starts_at <= $3)
            AND (a.ends_at IS NULL OR a.ends_at > $3)
            AND (a.audience IS NULL OR a.audience && $4::text[])) shown
          WHERE $5::boolean IS NULL
             OR (read, NOT pinned) > ($5, NOT $6)
             OR ((read, NOT pinned) = ($5, NOT $6)
                 AND (published_at, announcement_id) < ($7::timestamptz, $8::uuid))
          ORDER BY read, pinned DESC, published_at DESC, announcement_id DESC
          LIMIT $9"
    ))
    .bind(tenant_id)
    .bind(reader.account)
    .bind(now)
    .bind(&roles)
    .bind(after.map(|cursor| cursor.read))
    .bind(after.map(|cursor| cursor.pinned))
    .bind(after.map(|cursor| cursor.published_at))
    .bind(after.map(|cursor| cursor.announcement_id))
    .bind(limit + 1)
    .fetch_all(pool)
    .await?;
    let next = if page.len() as i64 > limit {
        page.truncate(limit.max(0) as usize);
        page.last().and_then(|last| {
            Some(AnnouncementCursor {
                read: last.read,
                pinned: last.pinned,
                published_at: last.published_at?,
                announcement_id: last.announcement_id,
            })
        })
    } else {
        None
    };
    Ok((page, next))
}
