//! The moderation read models: reports (the queue is the open ones, oldest first, with what
//! they report) and members' standing.

use chrono::{DateTime, Utc};
use domain::community::{MemberEvent, ReportEvent};
use domain::event::RecordedEvent;
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::projection::one_row;
use crate::engine::ApplyError;

pub(super) async fn apply_report(
    connection: &mut PgConnection,
    event: &RecordedEvent,
    report: Uuid,
) -> Result<(), ApplyError> {
    let changed = match ApplyError::decode::<ReportEvent>(event)? {
        ReportEvent::ReportFiled {
            target,
            reporter,
            reason,
            at,
        } => sqlx::query(
            "INSERT INTO community_reports
                (tenant_id, report_id, target_kind, target_id, reporter, reason, status, version,
                 filed_at)
             VALUES ($1, $2, $3, $4, $5, $6, 'open', $7, $8)",
        )
        .bind(&event.tenant_id)
        .bind(report)
        .bind(target.kind())
        .bind(target.id())
        .bind(reporter)
        .bind(reason.as_str())
        .bind(event.sequence)
        .bind(at)
        .execute(connection)
        .await?,
        ReportEvent::ReportResolved { resolution, by, at } => sqlx::query(
            "UPDATE community_reports
                SET status = $3, resolved_by = $4, resolved_at = $5, version = $6
              WHERE tenant_id = $1 AND report_id = $2",
        )
        .bind(&event.tenant_id)
        .bind(report)
        .bind(resolution.as_str())
        .bind(by)
        .bind(at)
        .bind(event.sequence)
        .execute(connection)
        .await?,
    };
    one_row(changed.rows_affected(), event, "report", report)
}

pub(super) async fn apply_member(
    connection: &mut PgConnection,
    event: &RecordedEvent,
    member: Uuid,
) -> Result<(), ApplyError> {
    let (until, reason, by, at) = match ApplyError::decode::<MemberEvent>(event)? {
        MemberEvent::MemberSuspended {
            until,
            reason,
            by,
            at,
        } => (Some(until), Some(reason.as_str().to_owned()), Some(by), at),
        MemberEvent::SuspensionLifted { at, .. } => (None, None, None, at),
    };
    sqlx::query(
        "INSERT INTO community_members
            (tenant_id, member, suspended_until, reason, suspended_by, version, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (tenant_id, member) DO UPDATE
            SET suspended_until = EXCLUDED.suspended_until, reason = EXCLUDED.reason,
                suspended_by = EXCLUDED.suspended_by, version = EXCLUDED.version,
                updated_at = EXCLUDED.updated_at",
    )
    .bind(&event.tenant_id)
    .bind(member)
    .bind(until)
    .bind(reason)
    .bind(by)
    .bind(event.sequence)
    .bind(at)
    .execute(connection)
    .await?;
    Ok(())
}

/// An open report with what it reports, as the moderation queue shows it. Moderators see
/// reported writing whatever became of it since (marked removed or hidden).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct ReportView {
    pub report_id: Uuid,
    /// `post` or `comment`.
    pub target_kind: String,
    pub target_id: Uuid,
    pub reporter: Uuid,
    pub reason: String,
    /// `open`, `hidden` or `dismissed`.
    pub status: String,
    pub filed_at: DateTime<Utc>,
    /// The reported post's title (posts only).
    pub title: Option<String>,
    /// The reported text, if the read model has it yet.
    pub body: Option<String>,
    /// Who wrote it.
    pub author: Option<Uuid>,
    /// Whether its author (or a moderator) removed it since.
    pub removed: Option<bool>,
    /// Whether a moderator hid it since.
    pub hidden: Option<bool>,
    pub version: i64,
}

/// A report with what it reports (a post's or comment's row, whichever it names).
const SELECT_REPORT: &str = "
    SELECT r.report_id, r.target_kind, r.target_id, r.reporter, r.reason, r.status, r.filed_at,
           p.title, coalesce(p.body, c.body) AS body, coalesce(p.author, c.author) AS author,
           coalesce(p.removed, c.removed) AS removed, coalesce(p.hidden, c.hidden) AS hidden,
           r.version
      FROM read_models.community_reports r
      LEFT JOIN read_models.community_posts p
        ON r.target_kind = 'post' AND p.tenant_id = r.tenant_id AND p.post_id = r.target_id
      LEFT JOIN read_models.community_comments c
        ON r.target_kind = 'comment' AND c.tenant_id = r.tenant_id AND c.comment_id = r.target_id";

/// A page of the tenant's open reports, oldest first, after report `after` (filed at, id).
///
/// # Errors
/// When the database fails.
pub async fn moderation_queue(
    pool: &PgPool,
    tenant_id: &str,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<ReportView>, sqlx::Error> {
    sqlx::query_as(&format!(
        "{SELECT_REPORT}
          WHERE r.tenant_id = $1 AND r.status = 'open'
            AND ($2::timestamptz IS NULL OR (r.filed_at, r.report_id) > ($2, $3))
          ORDER BY r.filed_at, r.report_id
          LIMIT $4"
    ))
    .bind(tenant_id)
    .bind(after.map(|(at, _)| at))
    .bind(after.map(|(_, id)| id))
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// One report of the tenant, open or resolved.
///
/// # Errors
/// When the database fails.
pub async fn get_report(
    pool: &PgPool,
    tenant_id: &str,
    report: Uuid,
) -> Result<Option<ReportView>, sqlx::Error> {
    sqlx::query_as(&format!(
        "{SELECT_REPORT} WHERE r.tenant_id = $1 AND r.report_id = $2"
    ))
    .bind(tenant_id)
    .bind(report)
    .fetch_optional(pool)
    .await
}

/// A member's standing as the read model shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct MemberView {
    pub member: Uuid,
    /// Until when they may not write (a time in the past means the suspension ran out).
    pub suspended_until: Option<DateTime<Utc>>,
    pub reason: Option<String>,
    pub suspended_by: Option<String>,
    pub version: i64,
    pub updated_at: DateTime<Utc>,
}

/// Member `member`'s standing; `None` when no moderator ever acted on it.
///
/// # Errors
/// When the database fails.
pub async fn get_member(
    pool: &PgPool,
    tenant_id: &str,
    member: Uuid,
) -> Result<Option<MemberView>, sqlx::Error> {
    sqlx::query_as(
        "SELECT member, suspended_until, reason, suspended_by, version, updated_at
           FROM read_models.community_members
          WHERE tenant_id = $1 AND member = $2",
    )
    .bind(tenant_id)
    .bind(member)
    .fetch_optional(pool)
    .await
}
