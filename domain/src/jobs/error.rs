use crate::error::{DomainError, ErrorKind};

/// Why a job command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    /// A language code that is not `ll`, `lll`, `ll-RR`, `ll-Ssss` or `ll-999`.
    #[error("invalid language code: expected e.g. `en`, `pt-BR` or `zh-Hant`")]
    InvalidLanguage,
    /// Source and target language are the same for a job that changes language.
    #[error("source and target language must differ")]
    SameLanguage,
    /// A priority outside 0 to 9.
    #[error("priority must be between 0 and 9")]
    InvalidPriority,
    /// Too many options, or a key or value too long.
    #[error("options: at most 20 keys of 1 to 64 characters, values up to 256 characters")]
    InvalidOptions,
    /// A retry policy that allows no attempt or has delays out of order.
    #[error("retry policy: 1 to 100 attempts, and base delay ≤ max delay")]
    InvalidRetryPolicy,
    /// An error code that is not 1 to 64 of `a-z`, `0-9`, `_`, `.`, `-`.
    #[error("error code must be 1 to 64 characters of a-z, 0-9, '_', '.', '-'")]
    InvalidErrorCode,
    /// A message or reason that is empty or too long.
    #[error("text must be 1 to {max} characters")]
    TextLength {
        /// The limit.
        max: usize,
    },
    /// A count a worker reported is above [`super::MAX_COUNT`].
    #[error("{field} must be at most {max}, got {actual}")]
    CountTooLarge {
        /// The count's name: `done`, `total`, `characters` or `segments`.
        field: &'static str,
        /// The largest count accepted.
        max: u64,
        /// The count reported.
        actual: u64,
    },
    /// A progress report with a total of zero.
    #[error("progress total must be at least 1")]
    InvalidTotal,
    /// Validation and post-edit jobs check or edit a finished job's result.
    #[error("a {kind} job needs a parent job")]
    ParentRequired {
        /// The job kind.
        kind: &'static str,
    },
    /// Translation and illustration jobs start from a document, not from another job.
    #[error("a {kind} job cannot have a parent job")]
    ParentNotAllowed {
        /// The job kind.
        kind: &'static str,
    },
    /// The parent job does not exist (in this tenant).
    #[error("the parent job does not exist")]
    ParentNotFound,
    /// The parent job has not succeeded.
    #[error("the parent job has not succeeded")]
    ParentNotSucceeded,
    /// The source document does not exist (in this tenant) or is not the caller's.
    #[error("no such document")]
    DocumentNotFound,
    /// No job with this id exists.
    #[error("no such job")]
    NotFound,
    /// A job with this id was already submitted.
    #[error("a job with this id was already submitted")]
    AlreadySubmitted,
    /// Claiming a job that is not waiting in the queue.
    #[error("the job is not queued")]
    NotQueued,
    /// Acting on a job with a lease the job no longer (or never) had.
    #[error("you do not hold this job's lease")]
    NotHolder,
    /// Acting on a job after the lease ran out.
    #[error("the lease has expired")]
    LeaseExpired,
    /// The job was cancelled; the worker should stop.
    #[error("the job was cancelled")]
    Cancelled,
    /// The job already reached a terminal state.
    #[error("the job is already finished")]
    AlreadyFinished,
    /// Progress went backwards.
    #[error("progress may not go backwards (was {previous}, got {reported})")]
    ProgressRegressed {
        /// The last reported units done.
        previous: u64,
        /// The units done now reported.
        reported: u64,
    },
    /// More units done than the total.
    #[error("units done ({done}) exceed the total ({total})")]
    ProgressAboveTotal {
        /// Units done.
        done: u64,
        /// The total.
        total: u64,
    },
    /// The total changed between reports.
    #[error("the total may not change (was {previous}, got {reported})")]
    TotalChanged {
        /// The first reported total.
        previous: u64,
        /// The total now reported.
        reported: u64,
    },
    /// Expiring a lease that has not run out (or is not current): a stale timer.
    #[error("the lease has not expired")]
    LeaseNotExpired,
    /// Requeueing a job that waits for no retry, or before the retry is due.
    #[error("no retry is due")]
    RetryNotDue,
    /// Resubmitting a job that is not dead-lettered.
    #[error("only dead-lettered jobs can be resubmitted")]
    NotDeadLettered,
}

impl DomainError for JobError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidLanguage
            | Self::SameLanguage
            | Self::InvalidPriority
            | Self::InvalidOptions
            | Self::InvalidRetryPolicy
            | Self::InvalidErrorCode
            | Self::TextLength { .. }
            | Self::CountTooLarge { .. }
            | Self::InvalidTotal
            | Self::ProgressAboveTotal { .. }
            | Self::ParentRequired { .. }
            | Self::ParentNotAllowed { .. } => ErrorKind::Invalid,
            Self::NotFound | Self::ParentNotFound | Self::DocumentNotFound => ErrorKind::NotFound,
            Self::AlreadySubmitted | Self::NotQueued => ErrorKind::Conflict,
            Self::ParentNotSucceeded
            | Self::NotHolder
            | Self::LeaseExpired
            | Self::Cancelled
            | Self::AlreadyFinished
            | Self::ProgressRegressed { .. }
            | Self::TotalChanged { .. }
            | Self::LeaseNotExpired
            | Self::RetryNotDue
            | Self::NotDeadLettered => ErrorKind::Rejected,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::InvalidLanguage => "invalid_language",
            Self::SameLanguage => "same_language",
            Self::InvalidPriority => "invalid_priority",
            Self::InvalidOptions => "invalid_options",
            Self::InvalidRetryPolicy => "invalid_retry_policy",
            Self::InvalidErrorCode => "invalid_error_code",
            Self::TextLength { .. } => "text_length",
            Self::CountTooLarge { .. } => "count_too_large",
            Self::InvalidTotal => "invalid_total",
            Self::ParentRequired { .. } => "parent_required",
            Self::ParentNotAllowed { .. } => "parent_not_allowed",
            Self::ParentNotFound => "parent_not_found",
            Self::ParentNotSucceeded => "parent_not_succeeded",
            Self::DocumentNotFound => "document_not_found",
            Self::NotFound => "job_not_found",
            Self::AlreadySubmitted => "job_already_submitted",
            Self::NotQueued => "job_not_queued",
            Self::NotHolder => "not_lease_holder",
            Self::LeaseExpired => "lease_expired",
            Self::Cancelled => "job_cancelled",
            Self::AlreadyFinished => "job_finished",
            Self::ProgressRegressed { .. } => "progress_regressed",
            Self::ProgressAboveTotal { .. } => "progress_above_total",
            Self::TotalChanged { .. } => "progress_total_changed",
            Self::LeaseNotExpired => "lease_not_expired",
            Self::RetryNotDue => "retry_not_due",
            Self::NotDeadLettered => "job_not_dead_lettered",
        }
    }
}
