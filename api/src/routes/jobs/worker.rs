//! The worker protocol: claim, heartbeat, progress, complete, fail. Workers are ordinary API
//! clients with the `worker` role; the lease they get from a claim names every later call.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use commands::jobs::{Claimed, Heartbeat as HeartbeatOutcome};
use domain::jobs::{
    ErrorCode, Failure, Jitter, JobCommand, JobKind, JobMetrics, LanguageCode, Progress, Text,
};
use domain::policy::JobAction;
use projections::jobs::{claim_next, ClaimAttempt, QueueFilter};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::http::error::{from_domain, ApiError, FieldError, Problem};
use crate::http::extract::{Caller, IdPath, JsonBody};
use crate::http::respond::{changed, field, CommandAccepted};
use crate::http::schema;
use crate::routes::AppState;

/// Claim the next job.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"kinds": ["translation"], "source_languages": ["en"], "target_languages": []})))]
pub struct ClaimJob {
    /// The kinds this worker handles: at least one, each at most once.
    #[serde(deserialize_with = "schema::unique")]
    #[schema(value_type = BTreeSet<schema::JobKind>, min_items = 1, max_items = 4)]
    pub kinds: BTreeSet<JobKind>,
    /// Source languages it handles (at most 100); any when absent or empty.
    #[serde(default)]
    #[schema(value_type = Vec<schema::LanguageCode>, max_items = 100)]
    pub source_languages: Vec<String>,
    /// Target languages it handles (at most 100); any when absent or empty.
    #[serde(default)]
    #[schema(value_type = Vec<schema::LanguageCode>, max_items = 100)]
    pub target_languages: Vec<String>,
}

/// The most languages a claim may name on either side: more would be a worker that handles any
/// (it says so by naming none), and each one is a parameter of the queue's query.
const MAX_CLAIM_LANGUAGES: usize = 100;

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
#[schema(examples(json!({"lease_id": "0192f5a4-7d3c-7e6a-9b1d-2f4c6a8e0b14"})))]
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
#[schema(examples(json!({"lease_id": "0192f5a4-7d3c-7e6a-9b1d-2f4c6a8e0b14", "done": 10, "total": 40})))]
pub struct ReportProgress {
    /// The lease from the claim.
    pub lease_id: Uuid,
    /// Units done: never less than last reported, never above `total`.
    #[serde(deserialize_with = "schema::whole_number::u64")]
    #[schema(minimum = 0, maximum = 1_000_000_000_000_u64)]
    pub done: u64,
    /// Units in total: at least 1, fixed by the first report.
    #[serde(deserialize_with = "schema::whole_number::u64")]
    #[schema(minimum = 1, maximum = 1_000_000_000_000_u64)]
    pub total: u64,
}

/// A finished job.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"lease_id": "0192f5a4-7d3c-7e6a-9b1d-2f4c6a8e0b14", "result_document_id": "0192f5a4-7d3c-7e6a-9b1d-2f4c6a8e0b15", "characters": 1200, "segments": 40})))]
pub struct CompleteJob {
    /// The lease from the claim.
    pub lease_id: Uuid,
    /// The result, uploaded by this worker through `/api/v1/documents`.
    pub result_document_id: Uuid,
    /// Characters processed.
    #[serde(deserialize_with = "schema::whole_number::u64")]
    #[schema(minimum = 0, maximum = 1_000_000_000_000_u64)]
    pub characters: u64,
    /// Segments processed.
    #[serde(deserialize_with = "schema::whole_number::u64")]
    #[schema(minimum = 0, maximum = 1_000_000_000_000_u64)]
    pub segments: u64,
}

/// A failed attempt.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"lease_id": "0192f5a4-7d3c-7e6a-9b1d-2f4c6a8e0b14", "error_code": "model.timeout", "message": "the model did not answer in time", "retryable": true})))]
pub struct FailJob {
    /// The lease from the claim.
    pub lease_id: Uuid,
    /// Machine-readable.
    #[schema(value_type = schema::ErrorCode)]
    pub error_code: String,
    /// What happened.
    #[schema(value_type = schema::Text)]
    pub message: String,
    /// Whether another attempt may succeed (it is then retried with backoff, up to the
    /// configured attempts, then dead-lettered).
    pub retryable: bool,
}

/// Claim the next queued job for the worker's kinds and languages: the highest priority first
/// (among several of that priority, concurrent workers start at different ones), then the rest
/// oldest first. Two workers never hold the same job.
#[utoipa::path(
    post, path = "/api/v1/worker/claim", tag = "worker",
    request_body = ClaimJob,
    responses(
        (status = 200, description = "A job is yours until the lease expires", body = ClaimedJob),
        (status = 204, description = "Nothing to do right now; poll again"),
        (status = 422, description = "Invalid kinds or languages", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn claim_job(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<ClaimJob>,
) -> Result<Response, ApiError> {
    let context = caller.may(JobAction::WorkJobs, None, &body)?;
    if body.kinds.is_empty() {
        return Err(ApiError::Unprocessable {
            code: "kinds_required",
            detail: "name at least one job kind the worker handles".to_owned(),
            errors: Vec::new(),
        });
    }
    let languages = |raw: &[String], name: &str| -> Result<Vec<String>, ApiError> {
        if raw.len() > MAX_CLAIM_LANGUAGES {
            return Err(ApiError::validation(vec![FieldError {
                field: name.to_owned(),
                code: "too_many_languages".to_owned(),
                message: format!(
                    "at most {MAX_CLAIM_LANGUAGES} languages; name none to handle any"
                ),
            }]));
        }
        raw.iter()
            .map(|code| {
                LanguageCode::parse(code)
                    .map(|code| code.to_string())
                    .map_err(|error| {
                        ApiError::validation(vec![FieldError {
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
    let lease_length = state.settings.lease(&caller.settings);
    let worker = &caller.principal.id;
    let jobs = &state.write.jobs;
    let context = &context;
    // The queue proposes (without locking its rows), the job's aggregate decides.
    let claimed = claim_next(
        &state.pool,
        context.tenant.as_str(),
        &filter,
        |job_id| async move {
            let claimed = jobs
                .try_claim(context, worker, job_id, lease_length, Utc::now())
                .await?;
            Ok::<_, ApiError>(claimed.map_or(ClaimAttempt::Taken, ClaimAttempt::Claimed))
        },
    )
    .await?;
    let Some(job_id) = claimed else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    let (job, lease) = match jobs.claimed(&context.tenant, job_id, worker).await? {
        Claimed::Held { job, lease } => (job, lease),
        Claimed::Superseded => {
            return Err(ApiError::Conflict {
                code: "claim_superseded",
                detail: "this claim was made earlier with the same Idempotency-Key, and the \
                         job is no longer held under it"
                    .to_owned(),
            })
        }
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

/// Runs a lease holder's command on job `id`.
async fn worker_command(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
    body: &impl Serialize,
    command: JobCommand,
) -> Result<Response, ApiError> {
    let context = caller.may(JobAction::WorkJobs, None, body)?;
    let outcome = state
        .write
        .jobs
        .execute(&context, id, None, command, Utc::now())
        .await?;
    Ok(changed(outcome))
}

/// Extend the lease; the answer says whether the job was cancelled meanwhile.
#[utoipa::path(
    post, path = "/api/v1/worker/jobs/{id}/heartbeat", tag = "worker",
    request_body = Heartbeat,
    params(("id" = Uuid, Path, description = "Job id")),
    responses(
        (status = 200, description = "Lease extended, or the job was cancelled", body = HeartbeatAck),
        (status = 422, description = "Not your lease, or it expired", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn heartbeat(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    caller: Caller,
    JsonBody(body): JsonBody<Heartbeat>,
) -> Result<Response, ApiError> {
    let context = caller.may(JobAction::WorkJobs, None, &body)?;
    let now = Utc::now();
    let until = now + state.settings.lease(&caller.settings);
    let ack = match state
        .write
        .jobs
        .heartbeat(&context, id, body.lease_id, until, now)
        .await?
    {
        HeartbeatOutcome::Extended(until) => HeartbeatAck {
            cancelled: false,
            lease_expires_at: Some(until),
        },
        HeartbeatOutcome::Cancelled => HeartbeatAck {
            cancelled: true,
            lease_expires_at: None,
        },
    };
    Ok(Json(ack).into_response())
}

/// Report progress (the first report marks the job running).
#[utoipa::path(
    post, path = "/api/v1/worker/jobs/{id}/progress", tag = "worker",
    request_body = ReportProgress,
    params(("id" = Uuid, Path, description = "Job id")),
    responses(
        (status = 200, description = "Recorded", body = CommandAccepted),
        (status = 422, description = "Not your lease, expired, cancelled, or progress out of bounds", body = Problem),
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
        progress: Progress::new(body.done, body.total).map_err(|error| from_domain(&error))?,
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
        (status = 200, description = "Succeeded", body = CommandAccepted),
        (status = 404, description = "No such result document (uploaded by you)", body = Problem),
        (status = 422, description = "Not your lease, expired, or cancelled", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn complete_job(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    caller: Caller,
    JsonBody(body): JsonBody<CompleteJob>,
) -> Result<Response, ApiError> {
    caller.may(JobAction::WorkJobs, None, &body)?;
    let result = state
        .write
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
        metrics: JobMetrics::new(body.characters, body.segments)
            .map_err(|error| from_domain(&error))?,
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
        (status = 200, description = "Recorded", body = CommandAccepted),
        (status = 422, description = "Invalid fields, not your lease, expired, or cancelled", body = Problem),
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

#[cfg(test)]
mod tests {
    use domain::jobs::MAX_COUNT;

    use super::*;
    use crate::http::schema::property;

    #[test]
    fn the_documented_counts_are_the_domains() {
        for documented in [
            property::<ReportProgress>("done"),
            property::<ReportProgress>("total"),
            property::<CompleteJob>("characters"),
            property::<CompleteJob>("segments"),
        ] {
            assert_eq!(documented["maximum"], MAX_COUNT);
            assert_eq!(documented["format"], "int64");
        }
        assert!(Progress::new(MAX_COUNT, MAX_COUNT).is_ok());
        assert!(Progress::new(0, MAX_COUNT + 1).is_err());
        assert!(JobMetrics::new(MAX_COUNT, MAX_COUNT).is_ok());
        assert!(JobMetrics::new(MAX_COUNT + 1, 0).is_err());
        // A total of 0 is refused when the report is decided (`JobError::InvalidTotal`).
        assert_eq!(property::<ReportProgress>("total")["minimum"], 1);
    }

    #[test]
    fn the_documented_claim_bounds_are_the_servers() {
        let kinds = property::<ClaimJob>("kinds");
        assert_eq!(kinds["maxItems"], JobKind::ALL.len());
        assert_eq!(kinds["uniqueItems"], true);
        for languages in ["source_languages", "target_languages"] {
            assert_eq!(
                property::<ClaimJob>(languages)["maxItems"],
                MAX_CLAIM_LANGUAGES
            );
        }
        let claim = |kinds: serde_json::Value| {
            serde_json::from_value::<ClaimJob>(serde_json::json!({ "kinds": kinds }))
        };
        assert!(claim(serde_json::json!(["translation", "validation"])).is_ok());
        assert!(claim(serde_json::json!(["translation", "translation"])).is_err());
    }
}
