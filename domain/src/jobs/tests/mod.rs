//! Given/when/then for every command in every state, and properties of random histories.
//!
//! The fixtures here build the histories and commands every file below shares:
//! - `table`: the whole command × state table, by event type or error;
//! - `lifecycle`: the exact events of each accepted command and the rules that refuse one;
//! - `values`: the value objects and the retry backoff;
//! - `properties`: random command sequences keep every invariant and replay to the live state.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use uuid::Uuid;

use super::*;
use crate::aggregate::{replay, Decider, Guarded, Rejection, Versioned};

mod lifecycle;
mod properties;
mod table;
mod values;
mod worker;

type Given = TestFramework<Versioned<TranslationJob>>;

/// What the aggregate decides for `command` after `history`: the events it appends, or the
/// domain error that refuses it.
fn outcome(history: Vec<JobEvent>, command: JobCommand) -> Result<Vec<JobEvent>, JobError> {
    Given::with(())
        .given(history)
        .when(Guarded::new(command))
        .inspect_result()
        .map_err(|rejection| match rejection {
            Rejection::Domain(error) => error,
            other => panic!("not a domain error: {other:?}"),
        })
}

/// The job a history leaves.
fn job_after(history: &[JobEvent]) -> Job {
    replay::<TranslationJob>(history)
        .state()
        .job()
        .cloned()
        .expect("a submitted job")
}

fn t(seconds: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 9, 0, 0).unwrap() + TimeDelta::seconds(seconds)
}

const OWNER: Uuid = Uuid::from_u128(7);
const L1: Uuid = Uuid::from_u128(101);
const L2: Uuid = Uuid::from_u128(102);

fn document(n: u128) -> DocumentRef {
    DocumentRef {
        document_id: Uuid::from_u128(n),
        sha256: "ab".repeat(32),
        size_bytes: 42,
        content_type: "text/plain".to_owned(),
    }
}

fn spec(kind: JobKind, max_attempts: u32) -> JobSpec {
    JobSpec {
        owner: OWNER,
        kind,
        source_language: LanguageCode::parse("en").unwrap(),
        target_language: LanguageCode::parse("de").unwrap(),
        source: document(1),
        priority: Priority::NORMAL,
        options: JobOptions::default(),
        parent: kind.needs_parent().then(|| ParentJob {
            job_id: Uuid::from_u128(9),
            result: document(2),
        }),
        retry_policy: RetryPolicy::new(max_attempts, 1_000, 60_000).unwrap(),
    }
}

fn submitted(max_attempts: u32) -> Vec<JobEvent> {
    submit_with(spec(JobKind::Translation, max_attempts))
}

fn submit_with(spec: JobSpec) -> Vec<JobEvent> {
    TranslationJob::default()
        .decide(JobCommand::Submit {
            spec: Box::new(spec),
            at: t(0),
        })
        .unwrap()
}

fn progress(done: u64, total: u64) -> Progress {
    Progress::new(done, total).unwrap()
}

fn claimed(lease_id: Uuid, attempt: u32) -> JobEvent {
    JobEvent::JobClaimed {
        lease_id,
        worker: "key:w".to_owned(),
        attempt,
        lease_expires_at: t(30),
        at: t(0),
    }
}

fn failed(lease_id: Uuid, attempt: u32, retryable: bool) -> JobEvent {
    JobEvent::JobFailed {
        lease_id,
        attempt,
        failure: failure(retryable),
        at: t(1),
    }
}

fn failure(retryable: bool) -> Failure {
    Failure {
        code: ErrorCode::parse("engine.timeout").unwrap(),
        message: Text::parse("the engine timed out").unwrap(),
        retryable,
    }
}

fn queued(reason: QueueReason) -> JobEvent {
    JobEvent::JobQueued { reason, at: t(2) }
}

/// Histories reaching every state.
fn state(name: &str) -> Vec<JobEvent> {
    let mut events = submitted(2);
    let more: Vec<JobEvent> = match name {
        "not_submitted" => return Vec::new(),
        "queued" => vec![],
        "claimed" => vec![claimed(L1, 1)],
        "running" => vec![
            claimed(L1, 1),
            JobEvent::ProgressReported {
                lease_id: L1,
                progress: progress(3, 10),
                at: t(1),
            },
        ],
        "retry_scheduled" => vec![
            claimed(L1, 1),
            failed(L1, 1, true),
            JobEvent::RetryScheduled {
                next_attempt: 2,
                due_at: t(50),
                at: t(1),
            },
        ],
        "succeeded" => vec![
            claimed(L1, 1),
            JobEvent::JobSucceeded {
                lease_id: L1,
                result: document(3),
                metrics: JobMetrics::default(),
                at: t(1),
            },
        ],
        "failed" => vec![claimed(L1, 1), failed(L1, 1, false)],
        "cancelled" => vec![JobEvent::JobCancelled {
            by: "user:x".to_owned(),
            reason: Text::parse("not needed").unwrap(),
            at: t(1),
        }],
        "dead_lettered" => vec![
            claimed(L2, 1),
            failed(L2, 1, true),
            JobEvent::RetryScheduled {
                next_attempt: 2,
                due_at: t(2),
                at: t(1),
            },
            queued(QueueReason::Retry),
            claimed(L1, 2),
            failed(L1, 2, true),
            JobEvent::JobDeadLettered {
                attempts: 2,
                at: t(3),
            },
        ],
        other => panic!("no state {other}"),
    };
    events.extend(more);
    events
}

/// One command of each kind; worker commands name lease L1, timers fire after everything.
fn command(name: &str) -> JobCommand {
    let now = t(10);
    match name {
        "submit" => JobCommand::Submit {
            spec: Box::new(spec(JobKind::Translation, 2)),
            at: now,
        },
        "claim" => JobCommand::Claim {
            lease: Lease {
                lease_id: L2,
                worker: "key:w2".to_owned(),
                expires_at: t(40),
            },
            at: now,
        },
        "heartbeat" => JobCommand::Heartbeat {
            lease_id: L1,
            until: t(40),
            at: now,
        },
        "progress" => JobCommand::ReportProgress {
            lease_id: L1,
            progress: progress(5, 10),
            at: now,
        },
        "complete" => JobCommand::Complete {
            lease_id: L1,
            result: document(4),
            metrics: JobMetrics::new(1200, 12).unwrap(),
            at: now,
        },
        "fail" => JobCommand::Fail {
            lease_id: L1,
            failure: failure(true),
            jitter: Jitter::new(500),
            at: now,
        },
        "cancel" => JobCommand::Cancel {
            by: "user:owner".to_owned(),
            reason: Text::parse("changed my mind").unwrap(),
            at: now,
        },
        "expire_lease" => JobCommand::ExpireLease {
            lease_id: L1,
            at: t(100),
        },
        "requeue" => JobCommand::Requeue { at: t(100) },
        "resubmit" => JobCommand::Resubmit {
            by: "key:admin".to_owned(),
            at: now,
        },
        other => panic!("no command {other}"),
    }
}
