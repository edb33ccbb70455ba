//! The jobs read models: job detail and lists, attempts, the worker queue, usage per user, the
//! dashboard statistics computed over them, and live updates read from the bus.
//!
//! Map:
//! - [`projection`]: [`JobsProjection`], how each job event changes the tables.
//! - [`queries`]: job detail, filtered and paged lists, usage, ownership checks.
//! - [`queue`]: offering queued jobs to workers ([`claim_next`]).
//! - [`stats`](mod@stats): dashboard statistics.
//! - [`live`]: job updates as they happen, for server-sent events.

pub mod live;
pub mod projection;
pub mod queries;
pub mod queue;
pub mod stats;

pub use projection::JobsProjection;
pub use queries::{
    get, is_result_of_owned_job, list, owner, usage, AttemptView, JobCursor, JobDetail, JobFilter,
    JobView, UsageView,
};
pub use queue::{claim_next, ClaimAttempt, QueueFilter};
pub use stats::{stats, Bucket, JobStats, KindDurations};
