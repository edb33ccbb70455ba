//! Announcement routes: admins draft, edit, publish and retract; every member reads the ones
//! current for them (their audience, within their window, unread first) and marks them read.

use std::collections::BTreeSet;

use axum::extract::State;
use axum::response::Response;
use axum::Json;
use chrono::{DateTime, Utc};
use domain::community::{AnnouncementCommand, Body, Notice, TextLimits, Title};
use domain::identity::Role;
use domain::policy::CommunityAction;
use projections::community::{self as model, AnnouncementCursor, AnnouncementView, Audience};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::caught_up;
use super::moderation::read_cursor;
use crate::http::error::{ApiError, Problem};
use crate::http::extract::{Caller, Consistency, ExpectedVersion, IdPath, JsonBody, QueryParams};
use crate::http::respond::{
    changed, created, field, not_found, page_limit, paged, read_ahead, with_etag, CommandAccepted,
};
use crate::http::schema::{self, GrantableRole};
use crate::routes::AppState;

const COLLECTION: &str = "/api/v1/community/announcements";

/// What an announcement says, to whom, and when.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({
    "title": "Maintenance on Sunday",
    "body": "The platform is read-only from 02:00 to 03:00 UTC.",
    "audience": ["user", "moderator"],
    "starts_at": "2030-01-01T00:00:00Z",
    "ends_at": "2030-01-08T00:00:00Z",
    "pinned": true
})))]
pub struct WriteAnnouncement {
    /// Its title.
    #[schema(value_type = schema::Title)]
    pub title: String,
    /// Its text (markdown).
    #[schema(value_type = schema::Body)]
    pub body: String,
    /// The roles it is for, each at most once; absent or `null`: everyone of the tenant.
    #[serde(default, deserialize_with = "schema::unique_or_none")]
    #[schema(min_items = 1, max_items = 5)]
    pub audience: Option<BTreeSet<GrantableRole>>,
    /// When it starts being shown (inclusive); absent: as soon as it is published.
    pub starts_at: Option<DateTime<Utc>>,
    /// When it stops being shown (exclusive); after `starts_at`. Absent: never.
    pub ends_at: Option<DateTime<Utc>>,
    /// Whether it is shown before the others; default `false`.
    #[serde(default)]
    pub pinned: bool,
}

impl WriteAnnouncement {
    /// The notice, each refusal named by its field.
    fn notice(&self, limits: TextLimits) -> Result<Notice, ApiError> {
        let mut errors = Vec::new();
        let title = field(
            "title",
            Title::parse_within(&self.title, limits),
            &mut errors,
        );
        let body = field("body", Body::parse_within(&self.body, limits), &mut errors);
        let (Some(title), Some(body)) = (title, body) else {
            return Err(ApiError::validation(errors));
        };
        let audience = self
            .audience
            .as_ref()
            .map(|roles| roles.iter().copied().map(Role::from).collect());
        let window = (self.starts_at, self.ends_at);
        let notice = Notice::new(title, body, audience, window, self.pinned);
        field("ends_at", notice, &mut errors).ok_or_else(|| ApiError::validation(errors))
    }
}

/// An announcement.
#[derive(Debug, Serialize, ToSchema)]
pub struct AnnouncementDto {
    /// Its id.
    pub id: Uuid,
    /// Its title.
    pub title: String,
    /// Its text (markdown, as written).
    pub body: String,
    /// The roles it is for; absent: everyone.
    #[schema(value_type = Option<Vec<GrantableRole>>)]
    pub audience: Option<Vec<String>>,
    /// When it starts being shown, if set.
    pub starts_at: Option<DateTime<Utc>>,
    /// When it stops being shown, if set.
    pub ends_at: Option<DateTime<Utc>>,
    /// Whether it is shown first.
    pub pinned: bool,
    /// `draft`, `published` or `retracted`.
    pub status: String,
    /// When it was published.
    pub published_at: Option<DateTime<Utc>>,
    /// Whether the reader marked it read (in the admin's list: always `false`).
    pub read: bool,
    /// The stream version this reflects (use as `If-Match` for commands).
    pub version: i64,
    /// When it was drafted.
    pub drafted_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl From<AnnouncementView> for AnnouncementDto {
    fn from(view: AnnouncementView) -> Self {
        Self {
            id: view.announcement_id,
            title: view.title,
            body: view.body,
            audience: view.audience,
            starts_at: view.starts_at,
            ends_at: view.ends_at,
            pinned: view.pinned,
            status: view.status,
            published_at: view.published_at,
            read: view.read,
            version: view.version,
            drafted_at: view.drafted_at,
            updated_at: view.updated_at,
        }
    }
}

/// A page of announcements.
#[derive(Debug, Serialize, ToSchema)]
pub struct AnnouncementPage {
    /// The announcements of this page.
    pub items: Vec<AnnouncementDto>,
    /// Pass as `after` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Paging parameters of the admin's list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListAnnouncements {
    /// Return announcements older than this one (the previous page's `next_cursor`).
    pub after: Option<Uuid>,
    /// Page size: 1 to `queries.max_page_size` (100 unless configured otherwise); default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// Wait until this command's effects are visible.
    pub consistency_token: Option<String>,
}

/// Paging parameters of one's current announcements.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CurrentAnnouncements {
    /// The previous page's `next_cursor`: opaque, as this API wrote it.
    #[param(
        max_length = 57,
        pattern = "^[01]_[01]_[0-9]{1,16}_[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    )]
    pub after: Option<String>,
    /// Page size: 1 to `queries.max_page_size` (100 unless configured otherwise); default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// Wait until this command's effects are visible.
    pub consistency_token: Option<String>,
}

/// Runs a command on an existing announcement for an admin.
async fn announcement_command(
    state: &AppState,
    caller: &Caller,
    (announcement, expected): (Uuid, ExpectedVersion),
    body: &impl Serialize,
    command: impl FnOnce() -> Result<AnnouncementCommand, ApiError>,
) -> Result<Response, ApiError> {
    let context = caller.may(CommunityAction::ManageAnnouncements, None, body)?;
    let outcome = state
        .write
        .community
        .announcement(&context, announcement, expected.0, command()?, Utc::now())
        .await?;
    Ok(changed(outcome))
}

/// Draft an announcement (admins).
#[utoipa::path(
    post, path = "/api/v1/community/announcements", tag = "community",
    request_body = WriteAnnouncement,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    responses(
        (status = 201, description = "Drafted", body = CommandAccepted),
        (status = 422, description = "Invalid fields, or a window that ends before it starts",
         body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn draft_announcement(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<WriteAnnouncement>,
) -> Result<Response, ApiError> {
    let context = caller.may(CommunityAction::ManageAnnouncements, None, &body)?;
    let command = AnnouncementCommand::Draft {
        notice: body.notice(state.settings.community.text_limits())?,
        at: Utc::now(),
    };
    let outcome = state
        .write
        .community
        .announcement(&context, Uuid::now_v7(), None, command, Utc::now())
        .await?;
    Ok(created(COLLECTION, outcome, None))
}

/// Replace what an announcement says, to whom and when (admins; drafts and published ones).
#[utoipa::path(
    post, path = "/api/v1/community/announcements/{id}/edit", tag = "community",
    params(("id" = Uuid, Path, description = "Announcement id"),
           ("If-Match" = Option<String>, Header, description = "Expected version, e.g. \"3\""),
           ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    request_body = WriteAnnouncement,
    responses(
        (status = 200, description = "Edited", body = CommandAccepted),
        (status = 404, description = "No such announcement", body = Problem),
        (status = 409, description = "Retracted, unchanged, or a version conflict",
         body = Problem),
        (status = 422, description = "Invalid fields, or a window that ends before it starts",
         body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn edit_announcement(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    expected: ExpectedVersion,
    caller: Caller,
    JsonBody(body): JsonBody<WriteAnnouncement>,
) -> Result<Response, ApiError> {
    let command = || {
        Ok(AnnouncementCommand::Edit {
            notice: body.notice(state.settings.community.text_limits())?,
            at: Utc::now(),
        })
    };
    announcement_command(&state, &caller, (id, expected), &body, command).await
}

/// Publish a draft (admins): its audience sees it within its window.
#[utoipa::path(
    post, path = "/api/v1/community/announcements/{id}/publish", tag = "community",
    params(("id" = Uuid, Path, description = "Announcement id"),
           ("If-Match" = Option<String>, Header, description = "Expected version, e.g. \"3\""),
           ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    responses(
        (status = 200, description = "Published", body = CommandAccepted),
        (status = 404, description = "No such announcement", body = Problem),
        (status = 409, description = "Published already, retracted, or a version conflict",
         body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn publish_announcement(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    expected: ExpectedVersion,
    caller: Caller,
) -> Result<Response, ApiError> {
    let command = || Ok(AnnouncementCommand::Publish { at: Utc::now() });
    announcement_command(&state, &caller, (id, expected), &(), command).await
}

/// Retract an announcement (admins): it is shown no more and changes no more.
#[utoipa::path(
    post, path = "/api/v1/community/announcements/{id}/retract", tag = "community",
    params(("id" = Uuid, Path, description = "Announcement id"),
           ("If-Match" = Option<String>, Header, description = "Expected version, e.g. \"3\""),
           ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    responses(
        (status = 200, description = "Retracted", body = CommandAccepted),
        (status = 404, description = "No such announcement", body = Problem),
        (status = 409, description = "Retracted already, or a version conflict", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn retract_announcement(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    expected: ExpectedVersion,
    caller: Caller,
) -> Result<Response, ApiError> {
    let command = || Ok(AnnouncementCommand::Retract { at: Utc::now() });
    announcement_command(&state, &caller, (id, expected), &(), command).await
}

/// Mark a published announcement read (every member; once is enough, again changes nothing).
#[utoipa::path(
    post, path = "/api/v1/community/announcements/{id}/read", tag = "community",
    params(("id" = Uuid, Path, description = "Announcement id"),
           ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    responses(
        (status = 200, description = "Marked read", body = CommandAccepted),
        (status = 404, description = "No such published announcement", body = Problem),
        (status = 409, description = "Retracted", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn mark_read(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    caller: Caller,
) -> Result<Response, ApiError> {
    let context = caller.may(CommunityAction::ReadAnnouncements, None, &())?;
    let outcome = state
        .write
        .community
        .mark_read(&context, id, caller.principal.account, Utc::now())
        .await?;
    Ok(changed(outcome))
}

/// One announcement, whatever its status (admins, auditors).
#[utoipa::path(
    get, path = "/api/v1/community/announcements/{id}", tag = "community",
    params(("id" = Uuid, Path, description = "Announcement id"),
           ("X-Consistency-Token" = Option<String>, Header, description = "Token from a command"),
           ("consistency_token" = Option<String>, Query, description = "Token from a command")),
    responses(
        (status = 200, description = "The announcement", body = AnnouncementDto),
        (status = 404, description = "No such announcement", body = Problem),
        (status = 503, description = "Projection behind the token", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn get_announcement(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    caller: Caller,
    token: Consistency,
) -> Result<Response, ApiError> {
    let tenant = caller.may_read(CommunityAction::ListAnnouncements, None)?;
    caught_up(&state, tenant, token).await?;
    let announcement = model::get_announcement(&state.read_pool, tenant.as_str(), id)
        .await?
        .ok_or_else(|| not_found("announcement_not_found", "announcement", id))?;
    let version = announcement.version;
    Ok(with_etag(AnnouncementDto::from(announcement), version))
}

/// Every announcement of the tenant, drafts and retracted ones included, newest first
/// (admins, auditors).
#[utoipa::path(
    get, path = "/api/v1/community/announcements", tag = "community",
    params(ListAnnouncements,
           ("X-Consistency-Token" = Option<String>, Header, description = "Token from a command")),
    responses(
        (status = 200, description = "A page of announcements", body = AnnouncementPage),
        (status = 400, description = "Invalid parameters", body = Problem),
        (status = 503, description = "Projection behind the token", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn list_announcements(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(params): QueryParams<ListAnnouncements>,
    token: Consistency,
) -> Result<Json<AnnouncementPage>, ApiError> {
    let tenant = caller.may_read(CommunityAction::ListAnnouncements, None)?;
    let limit = page_limit(params.limit, state.settings.queries.max_page_size)?;
    caught_up(&state, tenant, token).await?;
    let page = model::all_announcements(
        &state.read_pool,
        tenant.as_str(),
        params.after,
        read_ahead(limit),
    )
    .await?;
    let (page, next_cursor) = paged(page, limit, |last| last.announcement_id.to_string());
    Ok(Json(AnnouncementPage {
        items: page.into_iter().map(AnnouncementDto::from).collect(),
        next_cursor,
    }))
}

/// The announcements current for the caller: published, within their window, for everyone
/// or for one of the caller's roles; unread first, then pinned, then newest.
#[utoipa::path(
    get, path = "/api/v1/community/announcements/current", tag = "community",
    params(CurrentAnnouncements,
           ("X-Consistency-Token" = Option<String>, Header, description = "Token from a command")),
    responses(
        (status = 200, description = "A page of current announcements", body = AnnouncementPage),
        (status = 400, description = "Invalid parameters", body = Problem),
        (status = 503, description = "Projection behind the token", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn current_announcements(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(params): QueryParams<CurrentAnnouncements>,
    token: Consistency,
) -> Result<Json<AnnouncementPage>, ApiError> {
    let tenant = caller.may_read(CommunityAction::ReadAnnouncements, None)?;
    let limit = page_limit(params.limit, state.settings.queries.max_page_size)?;
    let after = params
        .after
        .as_deref()
        .map(read_announcement_cursor)
        .transpose()?;
    caught_up(&state, tenant, token).await?;
    let reader = Audience {
        account: caller.principal.account,
        roles: &caller.principal.roles,
    };
    let (page, next) = model::current_announcements(
        &state.read_pool,
        tenant.as_str(),
        &reader,
        Utc::now(),
        after,
        i64::from(limit),
    )
    .await?;
    Ok(Json(AnnouncementPage {
        items: page.into_iter().map(AnnouncementDto::from).collect(),
        next_cursor: next.map(|cursor| {
            format!(
                "{}_{}_{}_{}",
                u8::from(cursor.read),
                u8::from(cursor.pinned),
                cursor.published_at.timestamp_micros(),
                cursor.announcement_id
            )
        }),
    }))
}

/// A current-announcements cursor: exactly what the `after` pattern admits.
fn read_announcement_cursor(raw: &str) -> Result<AnnouncementCursor, ApiError> {
    let invalid = || ApiError::bad_request("invalid_cursor", "after: not a cursor from this API");
    let flag = |part: Option<&str>| match part {
        Some("0") => Some(false),
        Some("1") => Some(true),
        _ => None,
    };
    let mut parts = raw.splitn(3, '_');
    let read = flag(parts.next()).ok_or_else(invalid)?;
    let pinned = flag(parts.next()).ok_or_else(invalid)?;
    let (published_at, announcement_id) = read_cursor(parts.next().ok_or_else(invalid)?)?;
    Ok(AnnouncementCursor {
        read,
        pinned,
        published_at,
        announcement_id,
    })
}
