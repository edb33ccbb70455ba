//! Job query routes: detail, lists, dashboard statistics and usage, read from the jobs
//! projection only.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use domain::aggregate::Decider;
use domain::jobs::{JobKind, JobStatus, LanguageCode, TranslationJob};
use domain::policy::JobAction;
use projections::jobs::{self as jobs_model, JobCursor, JobFilter, JobsProjection};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::http::error::{ApiError, Problem};
use crate::http::extract::{consistent, Caller, Consistency, IdPath, QueryParams};
use crate::http::respond::{not_found, page_limit, with_etag};
use crate::http::schema;
use crate::routes::AppState;

/// One job with its attempts and children.
#[utoipa::path(
    get, path = "/api/v1/jobs/{id}", tag = "jobs",
    params(("id" = Uuid, Path, description = "Job id"),
           ("X-Consistency-Token" = Option<String>, Header, description = "Token from a command"),
           ("consistency_token" = Option<String>, Query, description = "Token from a command")),
    responses(
        (status = 200, description = "The job", body = serde_json::Value),
        (status = 404, description = "No such job", body = Problem),
        (status = 503, description = "Projection behind the token", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn get_job(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    caller: Caller,
    token: Consistency,
) -> Result<Response, ApiError> {
    let tenant = &caller.principal.tenant;
    consistent(
        &state,
        tenant,
        token,
        &[TranslationJob::TYPE],
        JobsProjection::NAME,
    )
    .await?;
    let detail = jobs_model::get(&state.read_pool, tenant.as_str(), id)
        .await?
        .ok_or_else(|| not_found("job_not_found", "job", id))?;
    caller.may_read(JobAction::ReadJob, Some(detail.job.owner_id))?;
    let version = detail.job.version;
    Ok(with_etag(detail, version))
}

/// Filters and paging of a job list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListJobs {
    /// Only jobs in this status.
    #[param(value_type = Option<schema::JobStatus>, inline)]
    pub status: Option<String>,
    /// Only jobs of this kind.
    #[param(value_type = Option<schema::JobKind>, inline)]
    pub kind: Option<String>,
    /// Only this owner's jobs (staff); others always see only their own.
    pub owner: Option<Uuid>,
    /// Only jobs from this language.
    #[param(value_type = Option<schema::LanguageCode>, inline)]
    pub source_language: Option<String>,
    /// Only jobs into this language.
    #[param(value_type = Option<schema::LanguageCode>, inline)]
    pub target_language: Option<String>,
    /// Submitted at or after (RFC 3339).
    pub submitted_from: Option<DateTime<Utc>>,
    /// Submitted before (RFC 3339).
    pub submitted_to: Option<DateTime<Utc>>,
    /// The previous page's `next_cursor`: opaque, as this API wrote it.
    #[param(
        max_length = 56,
        pattern = "^-?[0-9]{1,18}_[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    )]
    pub after: Option<String>,
    /// Page size: 1 to `queries.max_page_size` (100 unless configured otherwise); default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// Wait until this command's effects are visible.
    pub consistency_token: Option<String>,
}

/// A page of jobs, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobPage {
    /// The jobs.
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<jobs_model::JobView>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// A page of jobs with filters. Staff see the tenant's jobs; everyone else sees their own.
#[utoipa::path(
    get, path = "/api/v1/jobs", tag = "jobs",
    params(ListJobs,
           ("X-Consistency-Token" = Option<String>, Header, description = "Token from a command")),
    responses(
        (status = 200, description = "A page of jobs", body = JobPage),
        (status = 400, description = "Invalid parameters", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn list_jobs(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(params): QueryParams<ListJobs>,
    token: Consistency,
) -> Result<Json<JobPage>, ApiError> {
    let owner = match params.owner {
        Some(owner) => Some(owner),
        // Without the right to list everyone's jobs, a list is of one's own.
        None if caller.may_read(JobAction::ListJobs, None).is_err() => {
            Some(caller.principal.account)
        }
        None => None,
    };
    let tenant = caller.may_read(JobAction::ListJobs, owner)?;
    let bad = |code: &'static str, detail: String| ApiError::bad_request(code, detail);
    if let Some(status) = params
        .status
        .as_deref()
        .filter(|s| !JobStatus::NAMES.contains(s))
    {
        return Err(bad(
            "invalid_status",
            format!(
                "unknown status {status:?}; one of {}",
                JobStatus::NAMES.join(", ")
            ),
        ));
    }
    if let Some(kind) = params
        .kind
        .as_deref()
        .filter(|kind| !JobKind::ALL.iter().any(|k| k.as_str() == *kind))
    {
        return Err(bad("invalid_kind", format!("unknown job kind {kind:?}")));
    }
    let language = |raw: &Option<String>, name: &str| {
        raw.as_deref()
            .map(|code| {
                LanguageCode::parse(code)
                    .map(|code| code.to_string())
                    .map_err(|_| {
                        bad(
                            "invalid_language",
                            format!("{name}: {code:?} is not a language code"),
                        )
                    })
            })
            .transpose()
    };
    let after = params
        .after
        .as_deref()
        .map(|raw| {
            raw.parse::<JobCursor>().map_err(|()| {
                bad(
                    "invalid_cursor",
                    "after: not a cursor from this API".to_owned(),
                )
            })
        })
        .transpose()?;
    let limit = page_limit(params.limit, state.settings.queries.max_page_size)?;
    let filter = JobFilter {
        status: params.status.clone(),
        kind: params.kind.clone(),
        owner,
        source_language: language(&params.source_language, "source_language")?,
        target_language: language(&params.target_language, "target_language")?,
        submitted_from: params.submitted_from,
        submitted_to: params.submitted_to,
    };
    consistent(
        &state,
        tenant,
        token,
        &[TranslationJob::TYPE],
        JobsProjection::NAME,
    )
    .await?;
    let (items, next) = jobs_model::list(
        &state.read_pool,
        tenant.as_str(),
        &filter,
        after,
        i64::from(limit),
    )
    .await?;
    Ok(Json(JobPage {
        items,
        next_cursor: next.map(|cursor| cursor.to_string()),
    }))
}

/// The moment statistics windows end at.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StatsParams {
    /// End of the time windows (RFC 3339); now when absent.
    pub at: Option<DateTime<Utc>>,
}

/// Dashboard statistics: jobs by status, throughput per minute (last hour) and per hour (last
/// day), p50/p95 duration per kind, failure and retry rates.
#[utoipa::path(
    get, path = "/api/v1/jobs/stats", tag = "jobs",
    params(StatsParams),
    responses((status = 200, description = "Statistics", body = serde_json::Value)),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn job_stats(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(params): QueryParams<StatsParams>,
) -> Result<Response, ApiError> {
    let tenant = caller.may_read(JobAction::ReadJobStats, None)?;
    let stats = jobs_model::stats(
        &state.read_pool,
        tenant.as_str(),
        params.at.unwrap_or_else(Utc::now),
    )
    .await?;
    Ok(Json(stats).into_response())
}

/// A user's usage: jobs submitted and succeeded, characters processed and translated.
#[utoipa::path(
    get, path = "/api/v1/users/{id}/usage", tag = "jobs",
    params(("id" = Uuid, Path, description = "User (or API key) id")),
    responses(
        (status = 200, description = "Usage", body = serde_json::Value),
        (status = 404, description = "The account never submitted a job", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn user_usage(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    caller: Caller,
) -> Result<Response, ApiError> {
    let tenant = caller.may_read(JobAction::ReadUsage, Some(id))?;
    let usage = jobs_model::usage(&state.read_pool, tenant.as_str(), id)
        .await?
        .ok_or_else(|| ApiError::NotFound {
            code: "usage_not_found",
            detail: format!("account {id} has not submitted any job"),
        })?;
    Ok(Json(usage).into_response())
}
