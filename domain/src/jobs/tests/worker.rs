//! The worker protocol: claim, heartbeat, progress, complete, fail, and the lease timer. Each
//! accepted command with the exact events it appends; each rule at its edge.

use super::*;

fn claim(lease_id: Uuid, at: DateTime<Utc>) -> JobCommand {
    JobCommand::Claim {
        lease: Lease {
            lease_id,
            worker: "key:w2".to_owned(),
            expires_at: at + TimeDelta::seconds(30),
        },
        at,
    }
}

fn heartbeat(lease_id: Uuid, until: DateTime<Utc>, at: DateTime<Utc>) -> JobCommand {
    JobCommand::Heartbeat {
        lease_id,
        until,
        at,
    }
}

fn report(done: u64, total: u64) -> JobCommand {
    JobCommand::ReportProgress {
        lease_id: L1,
        progress: progress(done, total),
        at: t(5),
    }
}

fn fail(lease_id: Uuid, retryable: bool, jitter: u16, at: DateTime<Utc>) -> JobCommand {
    JobCommand::Fail {
        lease_id,
        failure: failure(retryable),
        jitter: Jitter::new(jitter),
        at,
    }
}

fn expire(lease_id: Uuid, at: DateTime<Utc>) -> JobCommand {
    JobCommand::ExpireLease { lease_id, at }
}

/// A job of `max_attempts` whose first attempt failed, retried, and was claimed again under L1.
fn second_attempt(max_attempts: u32) -> Vec<JobEvent> {
    let mut history = submitted(max_attempts);
    history.extend([
        claimed(L2, 1),
        failed(L2, 1, true),
        JobEvent::RetryScheduled {
            next_attempt: 2,
            due_at: t(2),
            at: t(1),
        },
        queued(QueueReason::Retry),
        claimed(L1, 2),
    ]);
    history
}

#[test]
fn a_claim_takes_a_queued_job_under_the_new_lease() {
    assert_eq!(
        outcome(state("queued"), claim(L2, t(10))),
        Ok(vec![JobEvent::JobClaimed {
            lease_id: L2,
            worker: "key:w2".to_owned(),
            attempt: 1,
            lease_expires_at: t(40),
            at: t(10),
        }])
    );
    let job = job_after(&state("claimed"));
    assert_eq!(job.status, JobStatus::Claimed);
    assert_eq!(job.attempt, 1);
    assert_eq!(
        job.lease,
        Some(Lease {
            lease_id: L1,
            worker: "key:w".to_owned(),
            expires_at: t(30),
        })
    );
}

#[test]
fn each_claim_is_the_next_attempt_of_the_chain() {
    let mut history = second_attempt(3);
    assert_eq!(job_after(&history).attempt, 2);
    history.extend([
        failed(L1, 2, true),
        JobEvent::RetryScheduled {
            next_attempt: 3,
            due_at: t(3),
            at: t(2),
        },
        queued(QueueReason::Retry),
    ]);
    let events = outcome(history, claim(L2, t(10))).unwrap();
    assert!(
        matches!(events[..], [JobEvent::JobClaimed { attempt: 3, .. }]),
        "{events:?}"
    );
}

#[test]
fn a_heartbeat_extends_the_lease_but_never_shortens_it() {
    assert_eq!(
        outcome(state("claimed"), heartbeat(L1, t(40), t(10))),
        Ok(vec![JobEvent::LeaseExtended {
            lease_id: L1,
            lease_expires_at: t(40),
            at: t(10),
        }])
    );
    assert_eq!(
        outcome(state("running"), heartbeat(L1, t(20), t(10))),
        Ok(vec![JobEvent::LeaseExtended {
            lease_id: L1,
            lease_expires_at: t(30),
            at: t(10),
        }])
    );
    let mut history = state("claimed");
    history.push(JobEvent::LeaseExtended {
        lease_id: L1,
        lease_expires_at: t(60),
        at: t(10),
    });
    assert_eq!(
        job_after(&history).lease.map(|lease| lease.expires_at),
        Some(t(60))
    );
}

#[test]
fn a_lease_is_held_until_the_instant_it_expires() {
    // The lease of state "claimed" expires at t(30).
    for (at, expected) in [
        (t(29), Ok(())),
        (t(30), Err(JobError::LeaseExpired)),
        (t(31), Err(JobError::LeaseExpired)),
    ] {
        let result = outcome(state("claimed"), heartbeat(L1, t(90), at));
        assert_eq!(result.map(|_| ()), expected, "heartbeat at {at}");
    }
}

#[test]
fn only_the_current_lease_holder_may_act() {
    for command in [
        heartbeat(L2, t(40), t(10)),
        JobCommand::ReportProgress {
            lease_id: L2,
            progress: progress(1, 10),
            at: t(10),
        },
        JobCommand::Complete {
            lease_id: L2,
            result: document(4),
            metrics: JobMetrics::default(),
            at: t(10),
        },
        fail(L2, true, 0, t(10)),
    ] {
        for state_name in ["claimed", "running"] {
            assert_eq!(
                outcome(state(state_name), command.clone()),
                Err(JobError::NotHolder),
                "{command:?} in {state_name}"
            );
        }
    }
    // The previous attempt's lease is no longer held once the job was claimed again.
    assert_eq!(
        outcome(second_attempt(3), heartbeat(L2, t(40), t(10))),
        Err(JobError::NotHolder)
    );
    assert!(outcome(second_attempt(3), heartbeat(L1, t(40), t(10))).is_ok());
}

#[test]
fn progress_is_recorded_and_marks_the_job_running() {
    assert_eq!(
        outcome(state("claimed"), report(0, 1)),
        Ok(vec![JobEvent::ProgressReported {
            lease_id: L1,
            progress: progress(0, 1),
            at: t(5),
        }])
    );
    let job = job_after(&state("running"));
    assert_eq!(job.status, JobStatus::Running);
    assert_eq!(job.progress, Some(progress(3, 10)));
    // A new attempt starts without the previous attempt's progress.
    let mut history = state("running");
    history.extend([
        JobEvent::LeaseExpired {
            lease_id: L1,
            attempt: 1,
            at: t(40),
        },
        queued(QueueReason::LeaseExpired),
    ]);
    assert_eq!(job_after(&history).progress, None);
    history.push(claimed(L2, 2));
    assert_eq!(job_after(&history).progress, None);
}

#[test]
fn progress_may_repeat_and_reach_the_total_but_not_pass_it() {
    // State "running" last reported 3 of 10.
    for (done, total) in [(3, 10), (4, 10), (10, 10)] {
        assert!(
            outcome(state("running"), report(done, total)).is_ok(),
            "{done} of {total}"
        );
    }
    let refused = [
        (
            report(11, 10),
            JobError::ProgressAboveTotal {
                done: 11,
                total: 10,
            },
        ),
        (
            report(2, 10),
            JobError::ProgressRegressed {
                previous: 3,
                reported: 2,
            },
        ),
        (
            report(5, 12),
            JobError::TotalChanged {
                previous: 10,
                reported: 12,
            },
        ),
        (
            report(5, 9),
            JobError::TotalChanged {
                previous: 10,
                reported: 9,
            },
        ),
        (report(0, 0), JobError::InvalidTotal),
    ];
    for (command, error) in refused {
        assert_eq!(outcome(state("running"), command), Err(error));
    }
    // The first report fixes the total, whatever it is; done may equal it at once.
    assert!(outcome(state("claimed"), report(1, 1)).is_ok());
    assert_eq!(
        outcome(state("claimed"), report(2, 1)),
        Err(JobError::ProgressAboveTotal { done: 2, total: 1 })
    );
    assert_eq!(
        outcome(state("claimed"), report(0, 0)),
        Err(JobError::InvalidTotal)
    );
}

#[test]
fn completing_records_the_result_and_releases_the_lease() {
    let metrics = JobMetrics::new(1_200, 12).unwrap();
    assert_eq!(
        outcome(
            state("running"),
            JobCommand::Complete {
                lease_id: L1,
                result: document(4),
                metrics,
                at: t(10),
            }
        ),
        Ok(vec![JobEvent::JobSucceeded {
            lease_id: L1,
            result: document(4),
            metrics,
            at: t(10),
        }])
    );
    let job = job_after(&state("succeeded"));
    assert_eq!(job.status, JobStatus::Succeeded);
    assert_eq!(job.lease, None);
    assert_eq!(job.result, Some(document(3)));
}

#[test]
fn a_retryable_failure_schedules_the_next_attempt_after_the_backoff() {
    // Policy: 1 s base, 60 s cap; the first retry waits 0.5 to 1 s, the second 1 to 2 s.
    for (jitter, wait_ms) in [(0, 500), (500, 750), (1000, 1_000)] {
        assert_eq!(
            outcome(state("claimed"), fail(L1, true, jitter, t(10))),
            Ok(vec![
                JobEvent::JobFailed {
                    lease_id: L1,
                    attempt: 1,
                    failure: failure(true),
                    at: t(10),
                },
                JobEvent::RetryScheduled {
                    next_attempt: 2,
                    due_at: t(10) + TimeDelta::milliseconds(wait_ms),
                    at: t(10),
                },
            ]),
            "jitter {jitter}"
        );
    }
    let events = outcome(second_attempt(3), fail(L1, true, 1000, t(10))).unwrap();
    assert_eq!(
        events[1],
        JobEvent::RetryScheduled {
            next_attempt: 3,
            due_at: t(12),
            at: t(10),
        }
    );
    let job = job_after(&state("retry_scheduled"));
    assert_eq!(job.status, JobStatus::RetryScheduled { due_at: t(50) });
    assert_eq!(job.lease, None);
}

#[test]
fn a_failure_that_retrying_cannot_help_fails_the_job_for_good() {
    assert_eq!(
        outcome(state("running"), fail(L1, false, 500, t(10))),
        Ok(vec![JobEvent::JobFailed {
            lease_id: L1,
            attempt: 1,
            failure: failure(false),
            at: t(10),
        }])
    );
    let job = job_after(&state("failed"));
    assert_eq!(job.status, JobStatus::Failed);
    assert_eq!(job.lease, None);
}

#[test]
fn the_last_attempt_failing_or_expiring_dead_letters_the_job() {
    let last = second_attempt(2);
    assert_eq!(
        outcome(last.clone(), fail(L1, true, 0, t(10))),
        Ok(vec![
            JobEvent::JobFailed {
                lease_id: L1,
                attempt: 2,
                failure: failure(true),
                at: t(10),
            },
            JobEvent::JobDeadLettered {
                attempts: 2,
                at: t(10),
            },
        ])
    );
    assert_eq!(
        outcome(last, expire(L1, t(30))),
        Ok(vec![
            JobEvent::LeaseExpired {
                lease_id: L1,
                attempt: 2,
                at: t(30),
            },
            JobEvent::JobDeadLettered {
                attempts: 2,
                at: t(30),
            },
        ])
    );
    // With an attempt left, the same failure is retried and the same expiry requeues.
    assert!(matches!(
        outcome(second_attempt(3), fail(L1, true, 0, t(10))).unwrap()[1],
        JobEvent::RetryScheduled { .. }
    ));
    let job = job_after(&state("dead_lettered"));
    assert_eq!(job.status, JobStatus::DeadLettered);
    assert_eq!(job.lease, None);
}

#[test]
fn an_expired_lease_loses_the_attempt_and_requeues_the_job() {
    assert_eq!(
        outcome(state("running"), expire(L1, t(30))),
        Ok(vec![
            JobEvent::LeaseExpired {
                lease_id: L1,
                attempt: 1,
                at: t(30),
            },
            JobEvent::JobQueued {
                reason: QueueReason::LeaseExpired,
                at: t(30),
            },
        ])
    );
    let mut history = state("running");
    history.push(JobEvent::LeaseExpired {
        lease_id: L1,
        attempt: 1,
        at: t(30),
    });
    let job = job_after(&history);
    assert_eq!(job.status, JobStatus::Queued);
    assert_eq!(job.lease, None);
}

#[test]
fn a_stale_lease_timer_expires_nothing() {
    // Too early, or for a lease the job no longer has: the timer is stale.
    for command in [expire(L1, t(29)), expire(L2, t(30)), expire(L2, t(100))] {
        assert_eq!(
            outcome(state("claimed"), command.clone()),
            Err(JobError::LeaseNotExpired),
            "{command:?}"
        );
    }
    assert_eq!(
        outcome(second_attempt(3), expire(L2, t(100))),
        Err(JobError::LeaseNotExpired)
    );
    assert!(outcome(state("claimed"), expire(L1, t(31))).is_ok());
}
