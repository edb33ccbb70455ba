//! What may be done with translation jobs, and by whom. A job's subject is its owner's account.

use crate::identity::Role;
use crate::policy::{context_actions, Rule};

context_actions! {
    /// The jobs context's actions.
    pub enum JobAction in "jobs" {
        /// Submit a translation job.
        SubmitJob = "submit_job" => Rule::roles(&[Role::Admin, Role::User]),
        /// Cancel a job (its owner, or an admin).
        CancelJob = "cancel_job" => Rule::roles(&[Role::Admin]).or_subject(),
        /// Give a dead-lettered job a new chain of attempts.
        ResubmitJob = "resubmit_job" => Rule::roles(&[Role::Admin]),
        /// Claim jobs and report on them (the worker protocol).
        WorkJobs = "work_jobs" => Rule::roles(&[Role::Worker]),
        /// Read one job (its owner, or staff).
        ReadJob = "read_job" => Rule::roles(&[Role::Admin, Role::Auditor]).or_subject(),
        /// List jobs (one's own, or everyone's for staff).
        ListJobs = "list_jobs" => Rule::roles(&[Role::Admin, Role::Auditor]).or_subject(),
        /// Read the dashboard statistics.
        ReadJobStats = "read_job_stats" =>
            Rule::roles(&[Role::Admin, Role::Moderator, Role::Auditor]),
        /// Read a user's usage (oneself, or staff).
        ReadUsage = "read_usage" => Rule::roles(&[Role::Admin, Role::Auditor]).or_subject(),
        /// Subscribe to live job updates (one's own, or everyone's for staff).
        WatchJobs = "watch_jobs" => Rule::roles(&[Role::Admin, Role::Auditor]).or_subject(),
    }
}
