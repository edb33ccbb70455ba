//! Job command routes: submitting, cancelling and resubmitting jobs. Each appends events only
//! through `commands`.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::response::Response;
use chrono::Utc;
use commands::jobs::Submission;
use domain::jobs::{
    DocumentRef, JobCommand, JobKind, JobOptions, JobSpec, LanguageCode, Priority, Text,
};
use domain::policy::JobAction;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::http::error::{ApiError, Problem};
use crate::http::extract::{Caller, ExpectedVersion, IdPath, JsonBody};
use crate::http::respond::{changed, created, field, one_field, CommandAccepted};
use crate::routes::AppState;

/// Submit a job.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"kind": "translation", "source_language": "en", "target_language": "de", "document_id": "0192f5a4-7d3c-7e6a-9b1d-2f4c6a8e0b13", "priority": 5})))]
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
#[schema(examples(json!({"reason": "submitted by mistake"})))]
pub struct CancelJob {
    /// Why (1 to 1000 characters).
    pub reason: String,
}

/// Submit a job on an uploaded document.
#[utoipa::path(
    post, path = "/api/v1/jobs", tag = "jobs",
    request_body = SubmitJob,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    responses(
        (status = 201, description = "Submitted and queued", body = CommandAccepted),
        (status = 404, description = "No such document or parent", body = Problem),
        (status = 422, description = "Invalid fields, or the parent has not succeeded", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn submit_job(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<SubmitJob>,
) -> Result<Response, ApiError> {
    let context = caller.may(JobAction::SubmitJob, None, &body)?;
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
        .write
        .jobs
        .submit(&context, Uuid::now_v7(), submission, Utc::now())
        .await?;
    Ok(created("/api/v1/jobs", outcome, None))
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
        (status = 200, description = "Cancelled", body = CommandAccepted),
        (status = 404, description = "No such job", body = Problem),
        (status = 422, description = "Already finished", body = Problem),
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
    let job = state.write.jobs.job(&caller.principal.tenant, id).await?;
    let context = caller.may(JobAction::CancelJob, Some(job.owner), &body)?;
    let reason = one_field("reason", Text::parse(&body.reason))?;
    let command = JobCommand::Cancel {
        by: caller.principal.id.clone(),
        reason,
        at: Utc::now(),
    };
    let outcome = state
        .write
        .jobs
        .execute(&context, id, expected.0, command, Utc::now())
        .await?;
    Ok(changed(outcome))
}

/// Give a dead-lettered job a new chain of attempts (admins).
#[utoipa::path(
    post, path = "/api/v1/jobs/{id}/resubmit", tag = "jobs",
    params(("id" = Uuid, Path, description = "Job id"),
           ("If-Match" = Option<String>, Header, description = "Expected version, e.g. \"3\""),
           ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    responses(
        (status = 200, description = "Queued again", body = CommandAccepted),
        (status = 404, description = "No such job", body = Problem),
        (status = 422, description = "Not dead-lettered", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn resubmit_job(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    caller: Caller,
    expected: ExpectedVersion,
) -> Result<Response, ApiError> {
    let context = caller.may(JobAction::ResubmitJob, None, &())?;
    let command = JobCommand::Resubmit {
        by: caller.principal.id.clone(),
        at: Utc::now(),
    };
    let outcome = state
        .write
        .jobs
        .execute(&context, id, expected.0, command, Utc::now())
        .await?;
    Ok(changed(outcome))
}
