//! The translation jobs context over HTTP: submitting and cancelling jobs, the worker
//! protocol, the jobs read models (detail, lists, statistics, usage) and live updates.

pub mod commands;
pub mod live;
pub mod queries;
pub mod worker;

use domain::policy::JobAction;
use utoipa_axum::routes;

use crate::routes::Routes;

/// The jobs routes.
pub fn routes() -> Routes {
    Routes::new()
        .tag(
            "jobs",
            "Translation jobs: submit, cancel, resubmit, detail, lists, statistics, usage, \
             live updates",
        )
        .tag(
            "worker",
            "The worker protocol: claim, heartbeat, progress, complete, fail",
        )
        .command(JobAction::SubmitJob, routes!(commands::submit_job))
        .command(JobAction::CancelJob, routes!(commands::cancel_job))
        .command(JobAction::ResubmitJob, routes!(commands::resubmit_job))
        .command(JobAction::WorkJobs, routes!(worker::claim_job))
        .command(JobAction::WorkJobs, routes!(worker::heartbeat))
        .command(JobAction::WorkJobs, routes!(worker::report_progress))
        .command(JobAction::WorkJobs, routes!(worker::complete_job))
        .command(JobAction::WorkJobs, routes!(worker::fail_job))
        .query(JobAction::ReadJob, routes!(queries::get_job))
        .query(JobAction::ListJobs, routes!(queries::list_jobs))
        .query(JobAction::ReadJobStats, routes!(queries::job_stats))
        .query(JobAction::ReadUsage, routes!(queries::user_usage))
        .query(JobAction::WatchJobs, routes!(live::live_jobs))
}
