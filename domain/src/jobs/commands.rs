use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    DocumentRef, Failure, Jitter, JobKind, JobMetrics, JobOptions, LanguageCode, Lease, ParentJob,
    Priority, Progress, RetryPolicy, Text,
};

/// Everything about a job its owner decides when submitting it.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSpec {
    /// The submitting user.
    pub owner: Uuid,
    /// What the job does.
    pub kind: JobKind,
    /// The document's language.
    pub source_language: LanguageCode,
    /// The language wanted.
    pub target_language: LanguageCode,
    /// The document worked on.
    pub source: DocumentRef,
    /// Claim order.
    pub priority: Priority,
    /// Settings for the worker.
    pub options: JobOptions,
    /// The finished job a validation or post-edit job works on.
    pub parent: Option<ParentJob>,
    /// Attempts and backoff.
    pub retry_policy: RetryPolicy,
}

/// What a client, a worker or the process manager can ask of a job. Times (and the jitter of
/// a retry) are supplied by the caller: the domain reads no clock and draws no random numbers.
#[derive(Debug, Clone, PartialEq)]
pub enum JobCommand {
    /// Submit a new job; it is queued at once.
    Submit {
        /// The job.
        spec: Box<JobSpec>,
        /// When.
        at: DateTime<Utc>,
    },
    /// A worker takes a queued job under a new lease.
    Claim {
        /// The lease granted.
        lease: Lease,
        /// When.
        at: DateTime<Utc>,
    },
    /// The lease holder is alive: extend the lease.
    Heartbeat {
        /// The lease held.
        lease_id: Uuid,
        /// The new expiry.
        until: DateTime<Utc>,
        /// When.
        at: DateTime<Utc>,
    },
    /// The lease holder reports progress (the first report marks the job running).
    ReportProgress {
        /// The lease held.
        lease_id: Uuid,
        /// Units done out of the total.
        progress: Progress,
        /// When.
        at: DateTime<Utc>,
    },
    /// The lease holder finished the job.
    Complete {
        /// The lease held.
        lease_id: Uuid,
        /// The result document.
        result: DocumentRef,
        /// What was processed.
        metrics: JobMetrics,
        /// When.
        at: DateTime<Utc>,
    },
    /// The lease holder gives up on this attempt.
    Fail {
        /// The lease held.
        lease_id: Uuid,
        /// Why.
        failure: Failure,
        /// Spreads the retry (see [`RetryPolicy::backoff`]).
        jitter: Jitter,
        /// When.
        at: DateTime<Utc>,
    },
    /// The owner or an admin stops the job.
    Cancel {
        /// Who (a principal).
        by: String,
        /// Why.
        reason: Text,
        /// When.
        at: DateTime<Utc>,
    },
    /// The process manager found the lease ran out without a heartbeat.
    ExpireLease {
        /// The lease the timer was set for.
        lease_id: Uuid,
        /// When.
        at: DateTime<Utc>,
    },
    /// The process manager found a scheduled retry due: back to the queue.
    Requeue {
        /// When.
        at: DateTime<Utc>,
    },
    /// An admin gives a dead-lettered job a new chain of attempts.
    Resubmit {
        /// Who (a principal).
        by: String,
        /// When.
        at: DateTime<Utc>,
    },
}

impl JobCommand {
    /// The command's name as recorded in event metadata.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Submit { .. } => "SubmitJob",
            Self::Claim { .. } => "ClaimJob",
            Self::Heartbeat { .. } => "HeartbeatJob",
            Self::ReportProgress { .. } => "ReportJobProgress",
            Self::Complete { .. } => "CompleteJob",
            Self::Fail { .. } => "FailJob",
            Self::Cancel { .. } => "CancelJob",
            Self::ExpireLease { .. } => "ExpireJobLease",
            Self::Requeue { .. } => "RequeueJob",
            Self::Resubmit { .. } => "ResubmitJob",
        }
    }
}
