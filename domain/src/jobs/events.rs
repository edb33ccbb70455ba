use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    DocumentRef, Failure, JobKind, JobMetrics, JobOptions, LanguageCode, Priority, Progress,
    RetryPolicy, Text,
};

/// Why a job entered the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueReason {
    /// It was just submitted.
    Submitted,
    /// A scheduled retry came due.
    Retry,
    /// The previous holder's lease ran out.
    LeaseExpired,
    /// An admin resubmitted it after dead-lettering.
    Resubmitted,
}

/// What happened to a job. Stored forever: add variants, never change existing ones without an
/// upcaster and a new `event_version`.
///
/// A variant's stored JSON tag is its `event_type()`: where the Rust name differs, a serde
/// `rename` says so, and an `alias` keeps reading the tag older history was written with (before
/// the rename, variants were stored under their Rust names). `stored_events.rs` in this folder
/// holds the stored form of every variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum JobEvent {
    /// A job was submitted.
    JobSubmitted {
        /// The submitting user.
        owner: Uuid,
        /// What the job does.
        kind: JobKind,
        /// The document's language.
        source_language: LanguageCode,
        /// The language wanted.
        target_language: LanguageCode,
        /// The document worked on.
        source: DocumentRef,
        /// Claim order.
        priority: Priority,
        /// Settings for the worker.
        options: JobOptions,
        /// The finished job this one works on.
        parent_job_id: Option<Uuid>,
        /// Attempts and backoff.
        retry_policy: RetryPolicy,
        /// When.
        at: DateTime<Utc>,
    },
    /// The job waits in the queue.
    JobQueued {
        /// Why.
        reason: QueueReason,
        /// When.
        at: DateTime<Utc>,
    },
    /// A worker took the job.
    JobClaimed {
        /// The lease granted.
        lease_id: Uuid,
        /// The principal that claimed.
        worker: String,
        /// 1-based attempt within the current chain.
        attempt: u32,
        /// When the lease runs out unless extended.
        lease_expires_at: DateTime<Utc>,
        /// When.
        at: DateTime<Utc>,
    },
    /// The lease holder sent a heartbeat.
    #[serde(rename = "JobLeaseExtended", alias = "LeaseExtended")]
    LeaseExtended {
        /// The lease.
        lease_id: Uuid,
        /// The new expiry.
        lease_expires_at: DateTime<Utc>,
        /// When.
        at: DateTime<Utc>,
    },
    /// The lease holder reported progress.
    #[serde(rename = "JobProgressReported", alias = "ProgressReported")]
    ProgressReported {
        /// The lease.
        lease_id: Uuid,
        /// Units done out of the total.
        progress: Progress,
        /// When.
        at: DateTime<Utc>,
    },
    /// The job finished with a result.
    JobSucceeded {
        /// The lease.
        lease_id: Uuid,
        /// The result document.
        result: DocumentRef,
        /// What was processed.
        metrics: JobMetrics,
        /// When.
        at: DateTime<Utc>,
    },
    /// An attempt failed.
    JobFailed {
        /// The lease.
        lease_id: Uuid,
        /// The attempt that failed.
        attempt: u32,
        /// Why.
        failure: Failure,
        /// When.
        at: DateTime<Utc>,
    },
    /// The lease ran out without a heartbeat; the attempt is lost.
    #[serde(rename = "JobLeaseExpired", alias = "LeaseExpired")]
    LeaseExpired {
        /// The lease.
        lease_id: Uuid,
        /// The attempt that was lost.
        attempt: u32,
        /// When.
        at: DateTime<Utc>,
    },
    /// Another attempt will be queued at `due_at`.
    #[serde(rename = "JobRetryScheduled", alias = "RetryScheduled")]
    RetryScheduled {
        /// The attempt that will follow.
        next_attempt: u32,
        /// When it is queued.
        due_at: DateTime<Utc>,
        /// When.
        at: DateTime<Utc>,
    },
    /// The job was cancelled.
    JobCancelled {
        /// Who.
        by: String,
        /// Why.
        reason: Text,
        /// When.
        at: DateTime<Utc>,
    },
    /// Every attempt of the chain failed: the job stops, visibly, until an admin resubmits it.
    JobDeadLettered {
        /// Attempts made in the chain.
        attempts: u32,
        /// When.
        at: DateTime<Utc>,
    },
    /// An admin started a new chain of attempts.
    JobResubmitted {
        /// Who.
        by: String,
        /// The new chain's number (the first chain is 1).
        chain: u32,
        /// When.
        at: DateTime<Utc>,
    },
}

impl JobEvent {
    /// When the change was accepted.
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            Self::JobSubmitted { at, .. }
            | Self::JobQueued { at, .. }
            | Self::JobClaimed { at, .. }
            | Self::LeaseExtended { at, .. }
            | Self::ProgressReported { at, .. }
            | Self::JobSucceeded { at, .. }
            | Self::JobFailed { at, .. }
            | Self::LeaseExpired { at, .. }
            | Self::RetryScheduled { at, .. }
            | Self::JobCancelled { at, .. }
            | Self::JobDeadLettered { at, .. }
            | Self::JobResubmitted { at, .. } => *at,
        }
    }
}

impl DomainEvent for JobEvent {
    /// The stored event type. These strings are part of the stored data: never change one.
    fn event_type(&self) -> String {
        match self {
            Self::JobSubmitted { .. } => "JobSubmitted",
            Self::JobQueued { .. } => "JobQueued",
            Self::JobClaimed { .. } => "JobClaimed",
            Self::LeaseExtended { .. } => "JobLeaseExtended",
            Self::ProgressReported { .. } => "JobProgressReported",
            Self::JobSucceeded { .. } => "JobSucceeded",
            Self::JobFailed { .. } => "JobFailed",
            Self::LeaseExpired { .. } => "JobLeaseExpired",
            Self::RetryScheduled { .. } => "JobRetryScheduled",
            Self::JobCancelled { .. } => "JobCancelled",
            Self::JobDeadLettered { .. } => "JobDeadLettered",
            Self::JobResubmitted { .. } => "JobResubmitted",
        }
        .to_owned()
    }

    /// Changes only together with an upcaster for the previous version.
    fn event_version(&self) -> String {
        "1".to_owned()
    }
}
