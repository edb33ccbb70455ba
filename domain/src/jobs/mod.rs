//! Translation jobs: work a worker claims under a lease, reports on, and finishes; failed
//! attempts are retried with backoff up to a policy's limit, then dead-lettered.
//!
//! Every step is an event. Workers are ordinary API clients; what happens when they go silent
//! (lease expiry) or fail (retry) is decided here, and scheduled by the process manager in
//! `commands`, which only ever issues the commands below.

mod aggregate;
mod commands;
mod error;
mod events;
mod policy;
mod values;

#[cfg(test)]
mod stored_events;
#[cfg(test)]
mod tests;

pub use aggregate::{Job, JobStatus, TranslationJob};
pub use commands::{JobCommand, JobSpec};
pub use error::JobError;
pub use events::{JobEvent, QueueReason};
pub use policy::JobAction;
pub use values::{
    DocumentRef, ErrorCode, Failure, Jitter, JobKind, JobMetrics, JobOptions, LanguageCode, Lease,
    ParentJob, Priority, Progress, RetryPolicy, Text, MAX_COUNT,
};
