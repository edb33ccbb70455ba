//! Moderation routes: members report posts and comments; moderators read the queue, resolve
//! reports (hiding what they report, or dismissing them) and suspend members from writing.

use axum::extract::State;
use axum::response::Response;
use axum::Json;
use chrono::{DateTime, Utc};
use domain::community::{MemberCommand, Reason, Resolution, Target};
use domain::policy::CommunityAction;
use projections::community::{self as model, MemberView, ReportView};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::caught_up;
use crate::http::error::{ApiError, Problem};
use crate::http::extract::{Caller, Consistency, IdPath, JsonBody, QueryParams};
use crate::http::respond::{
    changed, created, not_found, one_field, page_limit, paged, read_ahead, with_etag,
    CommandAccepted,
};
use crate::http::schema;
use crate::routes::AppState;

const REPORTS: &str = "/api/v1/community/reports";

/// Report a post or comment to the moderators.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"reason": "Advertising, posted in every category"})))]
pub struct FileReport {
    /// Why.
    #[schema(value_type = schema::Reason)]
    pub reason: String,
}

/// A moderator's decision on a report.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"resolution": "hide"})))]
pub struct ResolveReport {
    /// `hide` the reported writing from readers, or `dismiss` the report.
    pub resolution: ResolutionDto,
}

/// What a moderator decides about a report.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResolutionDto {
    /// Uphold it: hide the writing from readers (its author and staff still see it, marked).
    Hide,
    /// Dismiss it: the writing stays.
    Dismiss,
}

/// Suspend a member from writing.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"until": "2030-01-01T00:00:00Z", "reason": "Repeated advertising"})))]
pub struct SuspendMember {
    /// Until when (RFC 3339, in the future; a later suspension replaces an earlier one).
    pub until: DateTime<Utc>,
    /// Why (shown to moderators).
    #[schema(value_type = schema::Reason)]
    pub reason: String,
}

/// A report with what it reports.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReportDto {
    /// Its id.
    pub id: Uuid,
    /// `post` or `comment`.
    pub target_kind: String,
    /// The post's or comment's id.
    pub target_id: Uuid,
    /// Who reported it.
    pub reporter: Uuid,
    /// Why.
    pub reason: String,
    /// `open`, `hidden` (upheld) or `dismissed`.
    pub status: String,
    /// When it was filed.
    pub filed_at: DateTime<Utc>,
    /// The reported post's title (posts only).
    pub title: Option<String>,
    /// The reported text (markdown, as written), whatever became of it since.
    pub body: Option<String>,
    /// Who wrote it.
    pub author: Option<Uuid>,
    /// Whether it was removed since.
    pub removed: Option<bool>,
    /// Whether it is hidden.
    pub hidden: Option<bool>,
    /// The report's stream version.
    pub version: i64,
}

impl From<ReportView> for ReportDto {
    fn from(view: ReportView) -> Self {
        Self {
            id: view.report_id,
            target_kind: view.target_kind,
            target_id: view.target_id,
            reporter: view.reporter,
            reason: view.reason,
            status: view.status,
            filed_at: view.filed_at,
            title: view.title,
            body: view.body,
            author: view.author,
            removed: view.removed,
            hidden: view.hidden,
            version: view.version,
        }
    }
}

/// A page of the moderation queue.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReportPage {
    /// Open reports, oldest first.
    pub items: Vec<ReportDto>,
    /// Pass as `after` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Paging parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListReports {
    /// The previous page's `next_cursor`: opaque, as this API wrote it.
    #[param(
        max_length = 54,
        pattern = "^[0-9]{1,16}_[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    )]
    pub after: Option<String>,
    /// Page size: 1 to `queries.max_page_size` (100 unless configured otherwise); default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// Wait until this command's effects are visible.
    pub consistency_token: Option<String>,
}

/// A member's standing.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberDto {
    /// The member's account.
    pub id: Uuid,
    /// Until when they may not write; absent, or in the past, when they may.
    pub suspended_until: Option<DateTime<Utc>>,
    /// Why they were suspended.
    pub reason: Option<String>,
    /// The moderator who suspended them.
    pub suspended_by: Option<String>,
    /// The stream version this reflects.
    pub version: i64,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl From<MemberView> for MemberDto {
    fn from(view: MemberView) -> Self {
        Self {
            id: view.member,
            suspended_until: view.suspended_until,
            reason: view.reason,
            suspended_by: view.suspended_by,
            version: view.version,
            updated_at: view.updated_at,
        }
    }
}

/// Files the caller's report of `target`.
async fn report(
    state: &AppState,
    caller: &Caller,
    target: Target,
    body: &FileReport,
) -> Result<Response, ApiError> {
    let context = caller.may(CommunityAction::ReportContent, None, body)?;
    let reason = one_field("reason", Reason::parse(&body.reason))?;
    let outcome = state
        .write
        .community
        .report(
            &context,
            target,
            caller.principal.account,
            reason,
            Utc::now(),
        )
        .await?;
    Ok(created(REPORTS, outcome, None))
}

/// Report a post to the moderators (members; once per member and post).
#[utoipa::path(
    post, path = "/api/v1/community/posts/{id}/reports", tag = "community",
    params(("id" = Uuid, Path, description = "Post id"),
           ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    request_body = FileReport,
    responses(
        (status = 201, description = "Reported", body = CommandAccepted),
        (status = 404, description = "No such post", body = Problem),
        (status = 409, description = "Already reported by you, or removed or hidden",
         body = Problem),
        (status = 422, description = "Invalid fields", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn report_post(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    caller: Caller,
    JsonBody(body): JsonBody<FileReport>,
) -> Result<Response, ApiError> {
    report(&state, &caller, Target::Post(id), &body).await
}

/// Report a comment to the moderators (members; once per member and comment).
#[utoipa::path(
    post, path = "/api/v1/community/comments/{id}/reports", tag = "community",
    params(("id" = Uuid, Path, description = "Comment id"),
           ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    request_body = FileReport,
    responses(
        (status = 201, description = "Reported", body = CommandAccepted),
        (status = 404, description = "No such comment", body = Problem),
        (status = 409, description = "Already reported by you, or removed or hidden",
         body = Problem),
        (status = 422, description = "Invalid fields", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn report_comment(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    caller: Caller,
    JsonBody(body): JsonBody<FileReport>,
) -> Result<Response, ApiError> {
    report(&state, &caller, Target::Comment(id), &body).await
}

/// Resolve a report (moderators): `hide` hides the reported post or comment from readers,
/// `dismiss` leaves it.
#[utoipa::path(
    post, path = "/api/v1/community/reports/{id}/resolve", tag = "community",
    params(("id" = Uuid, Path, description = "Report id"),
           ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    request_body = ResolveReport,
    responses(
        (status = 200, description = "Resolved", body = CommandAccepted),
        (status = 404, description = "No such report", body = Problem),
        (status = 409, description = "Resolved already", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn resolve_report(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    caller: Caller,
    JsonBody(body): JsonBody<ResolveReport>,
) -> Result<Response, ApiError> {
    let context = caller.may(CommunityAction::ResolveReport, None, &body)?;
    let resolution = match body.resolution {
        ResolutionDto::Hide => Resolution::Hide,
        ResolutionDto::Dismiss => Resolution::Dismiss,
    };
    let outcome = state
        .write
        .community
        .resolve_report(&context, id, resolution, Utc::now())
        .await?;
    Ok(changed(outcome))
}

/// One report, with what it reports (moderators, admins, auditors).
#[utoipa::path(
    get, path = "/api/v1/community/reports/{id}", tag = "community",
    params(("id" = Uuid, Path, description = "Report id"),
           ("X-Consistency-Token" = Option<String>, Header, description = "Token from a command"),
           ("consistency_token" = Option<String>, Query, description = "Token from a command")),
    responses(
        (status = 200, description = "The report", body = ReportDto),
        (status = 404, description = "No such report", body = Problem),
        (status = 503, description = "Projection behind the token", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn get_report(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    caller: Caller,
    token: Consistency,
) -> Result<Response, ApiError> {
    let tenant = caller.may_read(CommunityAction::ReadModerationQueue, None)?;
    caught_up(&state, tenant, token).await?;
    let report = model::get_report(&state.read_pool, tenant.as_str(), id)
        .await?
        .ok_or_else(|| not_found("report_not_found", "report", id))?;
    let version = report.version;
    Ok(with_etag(ReportDto::from(report), version))
}

/// The moderation queue: open reports, oldest first, with what they report.
#[utoipa::path(
    get, path = "/api/v1/community/reports", tag = "community",
    params(ListReports,
           ("X-Consistency-Token" = Option<String>, Header, description = "Token from a command")),
    responses(
        (status = 200, description = "A page of open reports", body = ReportPage),
        (status = 400, description = "Invalid parameters", body = Problem),
        (status = 503, description = "Projection behind the token", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn moderation_queue(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(params): QueryParams<ListReports>,
    token: Consistency,
) -> Result<Json<ReportPage>, ApiError> {
    let tenant = caller.may_read(CommunityAction::ReadModerationQueue, None)?;
    let limit = page_limit(params.limit, state.settings.queries.max_page_size)?;
    let after = params.after.as_deref().map(read_cursor).transpose()?;
    caught_up(&state, tenant, token).await?;
    let reports =
        model::moderation_queue(&state.read_pool, tenant.as_str(), after, read_ahead(limit))
            .await?;
    let (reports, next_cursor) = paged(reports, limit, |report| {
        format!(
            "{}_{}",
            report.filed_at.timestamp_micros(),
            report.report_id
        )
    });
    Ok(Json(ReportPage {
        items: reports.into_iter().map(ReportDto::from).collect(),
        next_cursor,
    }))
}

/// A cursor of a list ordered by time then id, `{microseconds}_{uuid}`: exactly what the
/// `after` patterns admit (up to 16 digits, the year 2286; the hyphenated id).
///
/// # Errors
/// `400 invalid_cursor`.
pub(super) fn read_cursor(raw: &str) -> Result<(DateTime<Utc>, Uuid), ApiError> {
    let invalid = || ApiError::bad_request("invalid_cursor", "after: not a cursor from this API");
    let (micros, id) = raw.split_once('_').ok_or_else(invalid)?;
    let digits = (1..=16).contains(&micros.len()) && micros.bytes().all(|b| b.is_ascii_digit());
    if !digits || id.len() != 36 {
        return Err(invalid());
    }
    let at = micros
        .parse()
        .ok()
        .and_then(DateTime::from_timestamp_micros)
        .ok_or_else(invalid)?;
    Ok((at, id.parse().map_err(|_| invalid())?))
}

/// Suspend a member from writing until a time (moderators).
#[utoipa::path(
    post, path = "/api/v1/community/members/{id}/suspension", tag = "community",
    params(("id" = Uuid, Path, description = "The member's account (user or API key id)"),
           ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    request_body = SuspendMember,
    responses(
        (status = 200, description = "Suspended", body = CommandAccepted),
        (status = 422, description = "Invalid fields, or an end that is not in the future",
         body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn suspend_member(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    caller: Caller,
    JsonBody(body): JsonBody<SuspendMember>,
) -> Result<Response, ApiError> {
    let context = caller.may(CommunityAction::SuspendMember, None, &body)?;
    let command = MemberCommand::Suspend {
        until: body.until,
        reason: one_field("reason", Reason::parse(&body.reason))?,
        by: caller.principal.id.clone(),
        at: Utc::now(),
    };
    let outcome = state
        .write
        .community
        .member(&context, id, command, Utc::now())
        .await?;
    Ok(changed(outcome))
}

/// Lift a member's suspension (moderators).
#[utoipa::path(
    post, path = "/api/v1/community/members/{id}/suspension/lift", tag = "community",
    params(("id" = Uuid, Path, description = "The member's account (user or API key id)"),
           ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    responses(
        (status = 200, description = "Lifted", body = CommandAccepted),
        (status = 409, description = "Not suspended", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn lift_suspension(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    caller: Caller,
) -> Result<Response, ApiError> {
    let context = caller.may(CommunityAction::SuspendMember, None, &())?;
    let command = MemberCommand::Lift {
        by: caller.principal.id.clone(),
        at: Utc::now(),
    };
    let outcome = state
        .write
        .community
        .member(&context, id, command, Utc::now())
        .await?;
    Ok(changed(outcome))
}

/// A member's standing (the member, or moderators, admins and auditors). `404` when no
/// moderator ever acted on it: the member may write.
#[utoipa::path(
    get, path = "/api/v1/community/members/{id}", tag = "community",
    params(("id" = Uuid, Path, description = "The member's account (user or API key id)"),
           ("X-Consistency-Token" = Option<String>, Header, description = "Token from a command"),
           ("consistency_token" = Option<String>, Query, description = "Token from a command")),
    responses(
        (status = 200, description = "The member's standing", body = MemberDto),
        (status = 404, description = "No moderator ever acted on this member", body = Problem),
        (status = 503, description = "Projection behind the token", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn get_member(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    caller: Caller,
    token: Consistency,
) -> Result<Response, ApiError> {
    let tenant = caller.may_read(CommunityAction::ReadMember, Some(id))?;
    caught_up(&state, tenant, token).await?;
    let member = model::get_member(&state.read_pool, tenant.as_str(), id)
        .await?
        .ok_or_else(|| not_found("member_not_found", "member", id))?;
    let version = member.version;
    Ok(with_etag(MemberDto::from(member), version))
}
