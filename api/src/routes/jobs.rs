//! Job command routes: submitting and cancelling jobs, and the worker protocol (claim,
//! heartbeat, progress, complete, fail). Every route appends events only through `commands`.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use chrono::{DateTime, TimeDelta, Utc};
use commands::bus::CommandError;
use commands::jobs::Submission;
use commands::CommandContext;
use domain::aggregate::Rejection;
use domain::identity::StreamId;
use domain::jobs::{
    DocumentRef, ErrorCode, Failure, Jitter, Job, JobCommand, JobError, JobKind, JobMetrics,
    JobOptions, JobSpec, LanguageCode, Lease, Priority, Progress, Text,
};
use domain::policy::Action;
use projections::jobs::{claim_next, ClaimAttempt, QueueFilter};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::commands::{accepted, field};
use super::AppState;
use crate::error::ApiError;
use crate::extract::{Caller, ExpectedVersion, IdPath, JsonBody};

/// The job command routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/jobs", post(submit_job))
        .route("/api/v1/jobs/{id}/cancel", post(cancel_job))
        .route("/api/v1/jobs/{id}/resubmit", post(resubmit_job))
        .route("/api/v1/worker/claim", post(claim_job))
        .route("/api/v1/worker/jobs/{id}/heartbeat", post(heartbeat))
        .route("/api/v1/worker/jobs/{id}/progress", post(report_progress))
        .route("/api/v1/worker/jobs/{id}/complete", post(complete_job))
        .route("/api/v1/worker/jobs/{id}/fail", post(fail_job))
}

/// Submit a job.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitJob {
    /// `translation`, `validation`, `post_edit` or `illustration`.
    #[schema(value_type = String)]
    pub kind: JobKind,
    /// e.g. `en`, `pt-BR`.
    pub source_language: String,
    /// e.g. `de`.
    pub target_language: String,
    /// An uploaded document of yours. For validation and post-edit jobs, the parent's result
    /// is worked on instead; name the parent's source or result here.
    pub document_id: Uuid,
    /// 0 (lowest) to 9; default 5.
    pub priority: Option<i64>,
    /// Settings for the worker: up to 20 string keys and values.
    pub options: Option<BTreeMap<String, String>>,
    /// Required for validation and post-edit jobs: the succeeded job they work on.
    pub parent_job_id: Option<Uuid>,
}

/// Cancel a job.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelJob {
    /// Why (1 to 1000 characters).
    pub reason: String,
}

/// Claim the next job.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimJob {
    /// The kinds this worker handles (at least one).
    #[schema(value_type = Vec<String>)]
    pub kinds: Vec<JobKind>,
    /// Source languages it handles; any when absent or empty.
    #[serde(default)]
    pub source_languages: Vec<String>,
    /// Target languages it handles; any when absent or empty.
    #[serde(default)]
    pub target_languages: Vec<String>,
}

/// A claimed job: everything a worker needs to do it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClaimedJob {
    /// The job.
    pub job_id: Uuid,
    /// Name it in every call about this job.
    pub lease_id: Uuid,
    /// Send a heartbeat before this.
    pub lease_expires_at: DateTime<Utc>,
    /// 1-based attempt in the current chain.
    pub attempt: u32,
    /// What to do.
    pub kind: String,
    /// The document's language.
    pub source_language: String,
    /// The language wanted.
    pub target_language: String,
    /// Download it from `/api/v1/documents/{id}`.
    pub document_id: Uuid,
    /// Its sha-256, to check the download.
    pub document_sha256: String,
    /// Its type.
    pub document_content_type: String,
    /// Settings from the submitter.
    pub options: BTreeMap<String, String>,
    /// 0 to 9.
    pub priority: u8,
    /// For validation and post-edit jobs.
    pub parent_job_id: Option<Uuid>,
}

/// A lease holder's heartbeat.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    /// The lease from the claim.
    pub lease_id: Uuid,
}

/// What a heartbeat tells the worker.
#[derive(Debug, Serialize, ToSchema)]
pub struct HeartbeatAck {
    /// True when the job was cancelled: stop working on it (nothing else is accepted).
    pub cancelled: bool,
    /// The extended lease's expiry (absent when cancelled).
    pub lease_expires_at: Option<DateTime<Utc>>,
}

/// A progress report.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportProgress {
    /// The lease from the claim.
    pub lease_id: Uuid,
    /// Units done: never less than last reported, never above `total`.
    pub done: u64,
    /// Units in total (at least 1; fixed by the first report).
    pub total: u64,
}

/// A finished job.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteJob {
    /// The lease from the claim.
    pub lease_id: Uuid,
    /// The result, uploaded by this worker through `/api/v1/documents`.
    pub result_document_id: Uuid,
    /// Characters processed.
    pub characters: u64,
    /// Segments processed.
    pub segments: u64,
}

/// A failed attempt.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FailJob {
    /// The lease from the claim.
    pub lease_id: Uuid,
    /// Machine-readable: 1 to 64 of a-z, 0-9, `_`, `.`, `-`.
    pub error_code: String,
    /// What happened (1 to 1000 characters).
    pub message: String,
    /// Whether another attempt may succeed (it is then retried with backoff, up to the
    /// configured attempts, then dead-lettered).
    pub retryable: bool,
}

/// Submit a job on an uploaded document.
#[utoipa::path(
    post, path = "/api/v1/jobs", tag = "jobs",
    request_body = SubmitJob,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    responses(
        (status = 201, description = "Submitted and queued", body = super::commands::CommandAccepted),
        (status = 404, description = "No such document or parent", body = crate::error::Problem),
        (status = 422, description = "Invalid fields, or the parent has not succeeded", body = crate::error::Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn submit_job(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<SubmitJob>,
) -> Result<Response, ApiError> {
    let context = caller.may(Action::SubmitJob, None, &body)?;
    let mut errors = Vec::new();
    let source_language = field(
        "source_language",
        LanguageCode::parse(&body.source_language),
        &mut errors,
    );
    let target_language = field(
        "target_language",
        LanguageCode::parse(&body.target_language),
        &mut errors,
    );
    let priority = field(
        "priority",
        body.priority.map_or(Ok(Priority::NORMAL), Priority::new),
        &mut errors,
    );
    let options = field(
        "options",
        JobOptions::new(body.options.clone().unwrap_or_default()),
        &mut errors,
    );
    let (Some(source_language), Some(target_language), Some(priority), Some(options)) =
        (source_language, target_language, priority, options)
    else {
        return Err(ApiError::validation(errors));
    };
    let retry_policy = state.settings.retry_policy().map_err(ApiError::internal)?;
    let staff = caller.principal.has(domain::identity::Role::Admin);
    let submission = Submission {
        spec: JobSpec {
            owner: caller.principal.account,
            kind: body.kind,
            source_language,
            target_language,
            // Replaced by the stored document's record.
            source: DocumentRef {
                document_id: body.document_id,
                sha256: String::new(),
                size_bytes: 0,
                content_type: String::new(),
            },
            priority,
            options,
            parent: None,
            retry_policy,
        },
        source_document: body.document_id,
        parent_job: body.parent_job_id,
        may_use_any_document: staff,
    };
    let outcome = state
        .jobs
        .submit(&context, Uuid::now_v7(), submission, Utc::now())
        .await?;
    Ok(accepted(
        StatusCode::CREATED,
        Some("/api/v1/jobs"),
        outcome,
        None,
    ))
}

/// The job's current state, or 404.
async fn job_of(state: &AppState, caller: &Caller, id: Uuid) -> Result<Job, ApiError> {
    let stream = StreamId::new(caller.principal.tenant.clone(), id);
    let job = state.jobs.load(&stream).await?;
    job.state()
        .job()
        .cloned()
        .ok_or_else(|| ApiError::NotFound {
            code: "job_not_found",
            detail: format!("no job with id {id}"),
        })
}

/// Cancel a job (its owner or an admin). A running job's worker learns of it at its next
/// heartbeat.
#[utoipa::path(
    post, path = "/api/v1/jobs/{id}/cancel", tag = "jobs",
    request_body = CancelJob,
    params(("id" = Uuid, Path, description = "Job id"),
           ("If-Match" = Option<String>, Header, description = "Expected version, e.g. \"3\""),
           ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    responses(
        (status = 200, description = "Cancelled", body = super::commands::CommandAccepted),
        (status = 404, description = "No such job", body = crate::error::Problem),
        (status = 422, description = "Already finished", body = crate::error::Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn cancel_job(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    caller: Caller,
    expected: ExpectedVersion,
    JsonBody(body): JsonBody<CancelJob>,
) -> Result<Response, ApiError> {
    let job = job_of(&state, &caller, id).await?;
    let context = caller.may(Action::CancelJob, Some(job.owner), &body)?;
    let reason = Text::parse(&body.reason).map_err(|error| {
        ApiError::validation(vec![crate::error::FieldError {
            field: "reason".to_owned(),
            code: domain::error::DomainError::code(&error).to_owned(),
            message: error.to_string(),
        }])
    })?;
    let command = JobCommand::Cancel {
        by: caller.principal.id.clone(),
        reason,
        at: Utc::now(),
    };
    let outcome = state
        .jobs
        .execute(&context, id, expected.0, command, Utc::now())
        .await?;
    Ok(accepted(StatusCode::OK, None, outcome, None))
}

/// Give a dead-lettered job a new chain of attempts (admins).
#[utoipa::path(
    post, path = "/api/v1/jobs/{id}/resubmit", tag = "jobs",
    params(("id" = Uuid, Path, description = "Job id"),
           ("If-Match" = Option<String>, Header, description = "Expected version, e.g. \"3\""),
           ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    responses(
        (status = 200, description = "Queued again", body = super::commands::CommandAccepted),
        (status = 404, description = "No such job", body = crate::error::Problem),
        (status = 422, description = "Not dead-lettered", body = crate::error::Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn resubmit_job(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    caller: Caller,
    expected: ExpectedVersion,
) -> Result<Response, ApiError> {
    let context = caller.may(Action::ResubmitJob, None, &())?;
    let command = JobCommand::Resubmit {
        by: caller.principal.id.clone(),
        at: Utc::now(),
    };
    let outcome = state
        .jobs
        .execute(&context, id, expected.0, command, Utc::now())
        .await?;
    Ok(accepted(StatusCode::OK, None, outcome, None))
}

/// Claim the next queued job for the worker's kinds and languages: highest priority first,
/// then oldest. Two workers never hold the same job.
#[utoipa::path(
    post, path = "/api/v1/worker/claim", tag = "worker",
    request_body = ClaimJob,
    responses(
        (status = 200, description = "A job is yours until the lease expires", body = ClaimedJob),
        (status = 204, description = "Nothing to do right now; poll again"),
        (status = 422, description = "Invalid kinds or languages", body = crate::error::Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn claim_job(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<ClaimJob>,
) -> Result<Response, ApiError> {
    let context = caller.may(Action::WorkJobs, None, &body)?;
    if body.kinds.is_empty() {
        return Err(ApiError::Unprocessable {
            code: "kinds_required",
            detail: "name at least one job kind the worker handles".to_owned(),
            errors: Vec::new(),
        });
    }
    let languages = |raw: &[String], name: &str| -> Result<Vec<String>, ApiError> {
        raw.iter()
            .map(|code| {
                LanguageCode::parse(code)
                    .map(|code| code.to_string())
                    .map_err(|error| {
                        ApiError::validation(vec![crate::error::FieldError {
                            field: name.to_owned(),
                            code: domain::error::DomainError::code(&error).to_owned(),
                            message: format!("{code:?}: {error}"),
                        }])
                    })
            })
            .collect()
    };
    let filter = QueueFilter {
        kinds: body
            .kinds
            .iter()
            .map(|kind| kind.as_str().to_owned())
            .collect(),
        source_languages: languages(&body.source_languages, "source_languages")?,
        target_languages: languages(&body.target_languages, "target_languages")?,
    };
    let lease_length = TimeDelta::seconds(state.settings.jobs.lease_secs as i64);
    let claimed = claim_next(&state.pool, context.tenant.as_str(), &filter, |job_id| {
        try_claim(&state, &context, &caller, job_id, lease_length)
    })
    .await?;
    let Some(job_id) = claimed else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    let job = job_of(&state, &caller, job_id).await?;
    let Some(lease) = job
        .lease
        .clone()
        .filter(|lease| lease.worker == caller.principal.id)
    else {
        // A replayed idempotent claim whose job has moved on since.
        return Err(ApiError::Conflict {
            code: "claim_superseded",
            detail: "this claim was made earlier with the same Idempotency-Key, and the job \
                     is no longer held under it"
                .to_owned(),
        });
    };
    Ok(Json(ClaimedJob {
        job_id,
        lease_id: lease.lease_id,
        lease_expires_at: lease.expires_at,
        attempt: job.attempt,
        kind: job.kind.as_str().to_owned(),
        source_language: job.source_language.to_string(),
        target_language: job.target_language.to_string(),
        document_id: job.source.document_id,
        document_sha256: job.source.sha256.clone(),
        document_content_type: job.source.content_type.clone(),
        options: job.options.as_map().clone(),
        priority: job.priority.value(),
        parent_job_id: job.parent_job_id,
    })
    .into_response())
}

/// One claim attempt on a queue row: the aggregate decides who gets the job.
async fn try_claim(
    state: &AppState,
    context: &CommandContext,
    caller: &Caller,
    job_id: Uuid,
    lease_length: TimeDelta,
) -> Result<ClaimAttempt<Uuid>, ApiError> {
    let now = Utc::now();
    let command = JobCommand::Claim {
        lease: Lease {
            lease_id: Uuid::new_v4(),
            worker: caller.principal.id.clone(),
            expires_at: now + lease_length,
        },
        at: now,
    };
    match state
        .jobs
        .execute(context, job_id, None, command, now)
        .await
    {
        // With an idempotency key, a retry answers with the job claimed the first time.
        Ok(outcome) => Ok(ClaimAttempt::Claimed(outcome.stream.id)),
        // The row was stale or another worker was faster.
        Err(CommandError::Rejected(Rejection::Domain(
            JobError::NotQueued
            | JobError::AlreadyFinished
            | JobError::Cancelled
            | JobError::NotFound,
        )))
        | Err(CommandError::Conflict) => Ok(ClaimAttempt::Taken),
        Err(error) => Err(error.into()),
    }
}

/// Runs a lease holder's command on job `id`.
async fn worker_command(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
    body: &impl Serialize,
    command: JobCommand,
) -> Result<Response, ApiError> {
    let context = caller.may(Action::WorkJobs, None, body)?;
    let outcome = state
        .jobs
        .execute(&context, id, None, command, Utc::now())
        .await?;
    Ok(accepted(StatusCode::OK, None, outcome, None))
}

/// Extend the lease; the answer says whether the job was cancelled meanwhile.
#[utoipa::path(
    post, path = "/api/v1/worker/jobs/{id}/heartbeat", tag = "worker",
    request_body = Heartbeat,
    params(("id" = Uuid, Path, description = "Job id")),
    responses(
        (status = 200, description = "Lease extended, or the job was cancelled", body = HeartbeatAck),
        (status = 422, description = "Not your lease, or it expired", body = crate::error::Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn heartbeat(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    caller: Caller,
    JsonBody(body): JsonBody<Heartbeat>,
) -> Result<Response, ApiError> {
    let context = caller.may(Action::WorkJobs, None, &body)?;
    let now = Utc::now();
    let until = now + TimeDelta::seconds(state.settings.jobs.lease_secs as i64);
    let command = JobCommand::Heartbeat {
        lease_id: body.lease_id,
        until,
        at: now,
    };
    let ack = match state.jobs.execute(&context, id, None, command, now).await {
        Ok(_) => HeartbeatAck {
            cancelled: false,
            lease_expires_at: Some(until),
        },
        Err(CommandError::Rejected(Rejection::Domain(JobError::Cancelled))) => HeartbeatAck {
            cancelled: true,
            lease_expires_at: None,
        },
        Err(error) => return Err(error.into()),
    };
    Ok(Json(ack).into_response())
}

/// Report progress (the first report marks the job running).
#[utoipa::path(
    post, path = "/api/v1/worker/jobs/{id}/progress", tag = "worker",
    request_body = ReportProgress,
    params(("id" = Uuid, Path, description = "Job id")),
    responses(
        (status = 200, description = "Recorded", body = super::commands::CommandAccepted),
        (status = 422, description = "Not your lease, expired, cancelled, or progress out of bounds", body = crate::error::Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn report_progress(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    caller: Caller,
    JsonBody(body): JsonBody<ReportProgress>,
) -> Result<Response, ApiError> {
    let command = JobCommand::ReportProgress {
        lease_id: body.lease_id,
        progress: Progress {
            done: body.done,
            total: body.total,
        },
        at: Utc::now(),
    };
    worker_command(&state, &caller, id, &body, command).await
}

/// Finish the job with a result document.
#[utoipa::path(
    post, path = "/api/v1/worker/jobs/{id}/complete", tag = "worker",
    request_body = CompleteJob,
    params(("id" = Uuid, Path, description = "Job id")),
    responses(
        (status = 200, description = "Succeeded", body = super::commands::CommandAccepted),
        (status = 404, description = "No such result document (uploaded by you)", body = crate::error::Problem),
        (status = 422, description = "Not your lease, expired, or cancelled", body = crate::error::Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn complete_job(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    caller: Caller,
    JsonBody(body): JsonBody<CompleteJob>,
) -> Result<Response, ApiError> {
    caller.may(Action::WorkJobs, None, &body)?;
    let result = state
        .jobs
        .document(
            &caller.principal.tenant,
            body.result_document_id,
            Some(caller.principal.account),
        )
        .await?;
    let command = JobCommand::Complete {
        lease_id: body.lease_id,
        result,
        metrics: JobMetrics {
            characters: body.characters,
            segments: body.segments,
        },
        at: Utc::now(),
    };
    worker_command(&state, &caller, id, &body, command).await
}

/// Give up on this attempt: retried with backoff when `retryable`, up to the configured
/// attempts; otherwise the job fails for good.
#[utoipa::path(
    post, path = "/api/v1/worker/jobs/{id}/fail", tag = "worker",
    request_body = FailJob,
    params(("id" = Uuid, Path, description = "Job id")),
    responses(
        (status = 200, description = "Recorded", body = super::commands::CommandAccepted),
        (status = 422, description = "Invalid fields, not your lease, expired, or cancelled", body = crate::error::Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn fail_job(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    caller: Caller,
    JsonBody(body): JsonBody<FailJob>,
) -> Result<Response, ApiError> {
    let mut errors = Vec::new();
    let code = field(
        "error_code",
        ErrorCode::parse(&body.error_code),
        &mut errors,
    );
    let message = field("message", Text::parse(&body.message), &mut errors);
    let (Some(code), Some(message)) = (code, message) else {
        return Err(ApiError::validation(errors));
    };
    let command = JobCommand::Fail {
        lease_id: body.lease_id,
        failure: Failure {
            code,
            message,
            retryable: body.retryable,
        },
        jitter: Jitter::new(rand::random_range(0..=1000)),
        at: Utc::now(),
    };
    worker_command(&state, &caller, id, &body, command).await
}
