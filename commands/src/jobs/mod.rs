//! Job commands: the bus plus the checks that span aggregates (the source document exists and
//! is the owner's; a validation or post-edit job's parent has succeeded), the worker protocol
//! ([`worker`]) and the process manager that keeps leases and retries on time ([`scheduler`]).

pub mod parked;
pub mod scheduler;
mod worker;

pub use worker::{Claimed, Heartbeat};

use std::sync::Arc;

use chrono::{DateTime, Utc};
use domain::aggregate::{Guarded, Rejection, Versioned};
use domain::documents::Document;

use domain::identity::{StreamId, TenantId};
use domain::jobs::{
    DocumentRef, JobCommand, JobError, JobSpec, JobStatus, ParentJob, TranslationJob,
};
use uuid::Uuid;

use crate::bus::{CommandBus, CommandError, CommandOutcome};
use crate::documents::DocumentCommands;
use crate::metadata::CommandContext;

/// A submission as the client asked for it, before the documents and parent are looked up.
#[derive(Debug, Clone, PartialEq)]
pub struct Submission {
    /// Everything but the resolved references; `spec.source` is replaced by the stored
    /// document's record and `spec.parent` by the parent's result.
    pub spec: JobSpec,
    /// The document to work on.
    pub source_document: Uuid,
    /// The finished job a validation or post-edit job works on.
    pub parent_job: Option<Uuid>,
    /// Whether the caller may use documents other accounts uploaded (staff).
    pub may_use_any_document: bool,
}

/// Issues job commands.
#[derive(Debug)]
pub struct JobCommands {
    bus: CommandBus<TranslationJob>,
    documents: Arc<DocumentCommands>,
}

fn rejected(error: JobError) -> CommandError<JobError> {
    CommandError::Rejected(Rejection::Domain(error))
}

impl JobCommands {
    /// Job commands over `bus`; `documents` resolves source documents.
    pub fn new(bus: CommandBus<TranslationJob>, documents: Arc<DocumentCommands>) -> Self {
        Self { bus, documents }
    }

    /// The outcome of an earlier accepted request with the context's idempotency key, if any
    /// (see [`CommandBus::recorded`]).
    ///
    /// # Errors
    /// When the key was used for a different request, or the store fails.
    pub async fn recorded(
        &self,
        context: &CommandContext,
    ) -> Result<Option<CommandOutcome>, CommandError<JobError>> {
        self.bus.recorded(context).await
    }

    /// Submits job `job` in the context's tenant.
    ///
    /// # Errors
    /// See [`CommandBus::execute`]; a missing or foreign document is
    /// [`JobError::DocumentNotFound`], a missing parent [`JobError::ParentNotFound`], an
    /// unfinished one [`JobError::ParentNotSucceeded`].
    pub async fn submit(
        &self,
        context: &CommandContext,
        job: Uuid,
        submission: Submission,
        now: DateTime<Utc>,
    ) -> Result<CommandOutcome, CommandError<JobError>> {
        let attempt = || self.checked_submit(context, job, submission.clone(), now);
        self.bus.idempotent(context, attempt).await
    }

    async fn checked_submit(
        &self,
        context: &CommandContext,
        job: Uuid,
        submission: Submission,
        now: DateTime<Utc>,
    ) -> Result<CommandOutcome, CommandError<JobError>> {
        let Submission {
            mut spec,
            source_document,
            parent_job,
            may_use_any_document,
        } = submission;
        let uploader = (!may_use_any_document).then_some(spec.owner);
        spec.source = self
            .document(&context.tenant, source_document, uploader)
            .await?;
        if let Some(parent_id) = parent_job {
            let parent = self
                .bus
                .load(&StreamId::new(context.tenant.clone(), parent_id))
                .await?;
            let parent = parent
                .state()
                .job()
                .ok_or_else(|| rejected(JobError::ParentNotFound))?;
            if parent.status != JobStatus::Succeeded {
                return Err(rejected(JobError::ParentNotSucceeded));
            }
            let result = parent
                .result
                .clone()
                .ok_or_else(|| rejected(JobError::ParentNotSucceeded))?;
            spec.parent = Some(ParentJob {
                job_id: parent_id,
                result,
            });
        }
        let command = JobCommand::Submit {
            spec: Box::new(spec),
            at: now,
        };
        let stream = StreamId::new(context.tenant.clone(), job);
        self.bus
            .append(context, &stream, Guarded::new(command), "SubmitJob", now)
            .await
    }

    /// The stored document `id` of `tenant` as a job references it; with `uploader`, only if
    /// that account uploaded it (another account's document is "not found").
    ///
    /// # Errors
    /// [`JobError::DocumentNotFound`], or a store failure.
    pub async fn document(
        &self,
        tenant: &TenantId,
        id: Uuid,
        uploader: Option<Uuid>,
    ) -> Result<DocumentRef, CommandError<JobError>> {
        let document = self
            .documents
            .load(&StreamId::new(tenant.clone(), id))
            .await
            .map_err(|error| CommandError::Store(Box::new(error)))?;
        let visible = match document.state() {
            Document::Uploaded(stored) => uploader.is_none_or(|account| stored.owner == account),
            Document::Missing => false,
        };
        document
            .state()
            .reference(id)
            .filter(|_| visible)
            .ok_or_else(|| rejected(JobError::DocumentNotFound))
    }

    /// Runs any other command on job `job` of the context's tenant.
    ///
    /// # Errors
    /// See [`CommandBus::execute`].
    pub async fn execute(
        &self,
        context: &CommandContext,
        job: Uuid,
        expected_version: Option<u64>,
        command: JobCommand,
        now: DateTime<Utc>,
    ) -> Result<CommandOutcome, CommandError<JobError>> {
        let stream = StreamId::new(context.tenant.clone(), job);
        let name = command.name();
        let guarded = Guarded::expecting(expected_version, command);
        self.bus.execute(context, &stream, guarded, name, now).await
    }

    /// The job's current state.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn load(
        &self,
        stream: &StreamId,
    ) -> Result<Versioned<TranslationJob>, CommandError<JobError>> {
        self.bus.load(stream).await
    }
}
