//! The stored form of every job event (see `crate::stored_check`).

use super::{
    DocumentRef, ErrorCode, Failure, JobEvent, JobKind, JobMetrics, JobOptions, LanguageCode,
    Priority, Progress, QueueReason, RetryPolicy, Text,
};
use crate::stored_check::{at, id, stored_events_test};

fn document_ref(n: u128) -> DocumentRef {
    DocumentRef {
        document_id: id(n),
        sha256: "ab".repeat(32),
        size_bytes: 1_234,
        content_type: "text/plain".to_owned(),
    }
}

fn samples() -> Vec<JobEvent> {
    let lease_id = id(10);
    vec![
        JobEvent::JobSubmitted {
            owner: id(1),
            kind: JobKind::Translation,
            source_language: LanguageCode::parse("en").expect("valid"),
            target_language: LanguageCode::parse("pt-BR").expect("valid"),
            source: document_ref(2),
            priority: Priority::NORMAL,
            options: JobOptions::new([("tone".to_owned(), "formal".to_owned())].into())
                .expect("valid"),
            parent_job_id: Some(id(3)),
            retry_policy: RetryPolicy::new(3, 1_000, 60_000).expect("valid"),
            at: at(0),
        },
        JobEvent::JobQueued {
            reason: QueueReason::Submitted,
            at: at(1),
        },
        JobEvent::JobClaimed {
            lease_id,
            worker: "key:0192f0c4-0000-7000-8000-000000000004".to_owned(),
            attempt: 1,
            lease_expires_at: at(32),
            at: at(2),
        },
        JobEvent::LeaseExtended {
            lease_id,
            lease_expires_at: at(63),
            at: at(3),
        },
        JobEvent::ProgressReported {
            lease_id,
            progress: Progress::new(5, 10).expect("valid"),
            at: at(4),
        },
        JobEvent::JobSucceeded {
            lease_id,
            result: document_ref(5),
            metrics: JobMetrics::new(4_321, 12).expect("valid"),
            at: at(5),
        },
        JobEvent::JobFailed {
            lease_id,
            attempt: 1,
            failure: Failure {
                code: ErrorCode::parse("engine_timeout").expect("valid"),
                message: Text::parse("the engine did not answer").expect("valid"),
                retryable: true,
            },
            at: at(6),
        },
        JobEvent::LeaseExpired {
            lease_id,
            attempt: 2,
            at: at(7),
        },
        JobEvent::RetryScheduled {
            next_attempt: 3,
            due_at: at(70),
            at: at(8),
        },
        JobEvent::JobCancelled {
            by: "user:0192f0c4-0000-7000-8000-000000000001".to_owned(),
            reason: Text::parse("no longer needed").expect("valid"),
            at: at(9),
        },
        JobEvent::JobDeadLettered {
            attempts: 3,
            at: at(10),
        },
        JobEvent::JobResubmitted {
            by: "user:0192f0c4-0000-7000-8000-000000000006".to_owned(),
            chain: 2,
            at: at(11),
        },
    ]
}

stored_events_test! {
    fn job_events_are_stored_under_their_event_types() for JobEvent {
        snapshot: "job_events",
        former_tags: [
            ("LeaseExtended", "JobLeaseExtended"),
            ("ProgressReported", "JobProgressReported"),
            ("LeaseExpired", "JobLeaseExpired"),
            ("RetryScheduled", "JobRetryScheduled"),
        ],
        samples: samples(),
    }
}
