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
use utoipa::openapi::schema::{Object, ObjectBuilder, SchemaType, Type};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::http::error::{ApiError, Problem};
use crate::http::extract::{Caller, ExpectedVersion, IdPath, JsonBody};
use crate::http::quotas;
use crate::http::respond::{changed, created, field, one_field, CommandAccepted};
use crate::http::schema;
use crate::routes::AppState;

/// Submit a job.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"kind": "translation", "source_language": "en", "target_language": "de", "document_id": "0192f5a4-7d3c-7e6a-9b1d-2f4c6a8e0b13", "priority": 5})))]
pub struct SubmitJob {
    /// What the job does. Validation and post-edit jobs need `parent_job_id`; the others must
    /// not have one.
    #[schema(value_type = schema::JobKind)]
    pub kind: JobKind,
    /// The document's language, e.g. `en`, `pt-BR`.
    #[schema(value_type = schema::LanguageCode)]
    pub source_language: String,
    /// The language wanted, e.g. `de`; for every kind but illustration, not the source
    /// language (compared once normalised).
    #[schema(value_type = schema::LanguageCode)]
    pub target_language: String,
    /// An uploaded document of yours. For validation and post-edit jobs, the parent's result
    /// is worked on instead; name the parent's source or result here.
    pub document_id: Uuid,
    /// 0 (lowest) to 9; default 5.
    #[serde(default, deserialize_with = "schema::whole_number::option_i64")]
    #[schema(minimum = 0, maximum = 9)]
    pub priority: Option<i64>,
    /// Settings for the worker: up to 20 keys of 1 to 64 characters, each with a value of up
    /// to 256 characters.
    #[schema(schema_with = job_options)]
    pub options: Option<BTreeMap<String, String>>,
    /// Required for validation and post-edit jobs (and refused for the others): the succeeded
    /// job they work on.
    pub parent_job_id: Option<Uuid>,
}

/// The longest option key [`JobOptions::new`] accepts, in characters (a test holds the two
/// together).
const OPTION_KEY_CHARS: usize = 64;
/// The longest option value [`JobOptions::new`] accepts, in characters.
const OPTION_VALUE_CHARS: usize = 256;

/// The documented shape of [`JobOptions`]: `schema_with` because utoipa's field attributes
/// cannot bound a map's size, keys and values.
fn job_options() -> Object {
    let string = |min: Option<usize>, max: usize| {
        ObjectBuilder::new()
            .schema_type(SchemaType::new(Type::String))
            .min_length(min)
            .max_length(Some(max))
    };
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Object, Type::Null]))
        .description(Some(
            "Settings for the worker: up to 20 keys of 1 to 64 characters, each with a value \
             of up to 256 characters.",
        ))
        .max_properties(Some(JobOptions::MAX_KEYS))
        .property_names(Some(string(Some(1), OPTION_KEY_CHARS)))
        .additional_properties(Some(string(None, OPTION_VALUE_CHARS)))
        .examples([serde_json::json!({"tone": "formal"})])
        .build()
}

/// Cancel a job.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"reason": "submitted by mistake"})))]
pub struct CancelJob {
    /// Why.
    #[schema(value_type = schema::Text)]
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
        (status = 429, description = "A rate limit, or the tenant's quota_jobs_per_day (`quota_exceeded`, until the next UTC day), is exhausted", body = Problem),
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
    let retry_policy = state
        .settings
        .retry_policy(&caller.settings)
        .map_err(ApiError::internal)?;
    if let Err(refused) = quotas::admit_job(&state, &caller).await {
        // A retry of a submission that was accepted answers with its outcome, not the quota.
        let Some(outcome) = state.write.jobs.recorded(&context).await? else {
            return Err(refused);
        };
        return Ok(created("/api/v1/jobs", outcome, None));
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_option_bounds_are_the_domains() {
        let options = |keys: usize, key: usize, value: usize| {
            let entries = (0..keys).map(|i| (format!("{i:0>key$}"), "é".repeat(value)));
            JobOptions::new(entries.collect()).is_ok()
        };
        assert!(options(
            JobOptions::MAX_KEYS,
            OPTION_KEY_CHARS,
            OPTION_VALUE_CHARS
        ));
        assert!(!options(JobOptions::MAX_KEYS + 1, 2, 0));
        assert!(!options(1, OPTION_KEY_CHARS + 1, 0));
        assert!(!options(1, 1, OPTION_VALUE_CHARS + 1));
        assert!(JobOptions::new(BTreeMap::from([(String::new(), String::new())])).is_err());
    }

    #[test]
    fn the_documented_priorities_are_the_domains() {
        let documented = crate::http::schema::property::<SubmitJob>("priority");
        let bound = |edge: &str| documented[edge].as_i64().expect("a bound");
        let (min, max) = (bound("minimum"), bound("maximum"));
        assert!(Priority::new(min).is_ok() && Priority::new(max).is_ok());
        assert!(Priority::new(min - 1).is_err() && Priority::new(max + 1).is_err());
    }
}
