//! The exact events each accepted command appends, and the rules that refuse one.

use super::*;

#[test]
fn submit_records_the_job_and_queues_it() {
    Given::with(())
        .given_no_previous_events()
        .when(Guarded::new(command("submit")))
        .then_expect_events(vec![
            JobEvent::JobSubmitted {
                owner: OWNER,
                kind: JobKind::Translation,
                source_language: LanguageCode::parse("en").unwrap(),
                target_language: LanguageCode::parse("de").unwrap(),
                source: document(1),
                priority: Priority::NORMAL,
                options: JobOptions::default(),
                parent_job_id: None,
                retry_policy: RetryPolicy::new(2, 1_000, 60_000).unwrap(),
                at: t(10),
            },
            JobEvent::JobQueued {
                reason: QueueReason::Submitted,
                at: t(10),
            },
        ]);
}

#[test]
fn submit_rules_for_parents_and_languages() {
    let refused = |spec: JobSpec, error: JobError| {
        Given::with(())
            .given_no_previous_events()
            .when(Guarded::new(JobCommand::Submit {
                spec: Box::new(spec),
                at: t(0),
            }))
            .then_expect_error(Rejection::Domain(error));
    };
    let mut orphan = spec(JobKind::Validation, 3);
    orphan.parent = None;
    refused(orphan, JobError::ParentRequired { kind: "validation" });
    let mut adopted = spec(JobKind::Translation, 3);
    adopted.parent = spec(JobKind::PostEdit, 3).parent;
    refused(
        adopted,
        JobError::ParentNotAllowed {
            kind: "translation",
        },
    );
    let mut same = spec(JobKind::Translation, 3);
    same.target_language = LanguageCode::parse("EN").unwrap();
    refused(same, JobError::SameLanguage);

    // A post-edit works on the parent's result, and an illustration may keep one language.
    let events = submit_with(spec(JobKind::PostEdit, 3));
    assert!(matches!(
        &events[0],
        JobEvent::JobSubmitted { source, parent_job_id: Some(_), .. } if *source == document(2)
    ));
    let mut illustration = spec(JobKind::Illustration, 3);
    illustration.target_language = illustration.source_language.clone();
    assert_eq!(submit_with(illustration).len(), 2);
}

#[test]
fn a_worker_acting_after_its_lease_ran_out_is_refused() {
    let mut history = state("claimed");
    history.push(JobEvent::LeaseExtended {
        lease_id: L1,
        lease_expires_at: t(60),
        at: t(20),
    });
    for (at, expected) in [(t(59), None), (t(60), Some(JobError::LeaseExpired))] {
        let result = Given::with(())
            .given(history.clone())
            .when(Guarded::new(JobCommand::Complete {
                lease_id: L1,
                result: document(4),
                metrics: JobMetrics::default(),
                at,
            }))
            .inspect_result();
        assert_eq!(result.err(), expected.map(Rejection::Domain));
    }
    // And the lease can only be expired once it has run out.
    let early = Given::with(())
        .given(history)
        .when(Guarded::new(JobCommand::ExpireLease {
            lease_id: L1,
            at: t(59),
        }))
        .inspect_result();
    assert_eq!(
        early.err(),
        Some(Rejection::Domain(JobError::LeaseNotExpired))
    );
}

#[test]
fn the_owner_cancels_a_job_that_has_not_finished() {
    let cancel = JobCommand::Cancel {
        by: "user:owner".to_owned(),
        reason: Text::parse("changed my mind").unwrap(),
        at: t(10),
    };
    for state_name in ["queued", "claimed", "running", "retry_scheduled"] {
        assert_eq!(
            outcome(state(state_name), cancel.clone()),
            Ok(vec![JobEvent::JobCancelled {
                by: "user:owner".to_owned(),
                reason: Text::parse("changed my mind").unwrap(),
                at: t(10),
            }]),
            "{state_name}"
        );
    }
    let job = job_after(&state("cancelled"));
    assert_eq!(job.status, JobStatus::Cancelled);
    let mut running = state("running");
    running.push(JobEvent::JobCancelled {
        by: "user:owner".to_owned(),
        reason: Text::parse("stop").unwrap(),
        at: t(10),
    });
    assert_eq!(job_after(&running).lease, None);
}

#[test]
fn a_scheduled_retry_is_requeued_once_it_is_due() {
    // State "retry_scheduled" is due at t(50).
    for (at, expected) in [
        (t(49), Err(JobError::RetryNotDue)),
        (
            t(50),
            Ok(vec![JobEvent::JobQueued {
                reason: QueueReason::Retry,
                at: t(50),
            }]),
        ),
        (
            t(51),
            Ok(vec![JobEvent::JobQueued {
                reason: QueueReason::Retry,
                at: t(51),
            }]),
        ),
    ] {
        assert_eq!(
            outcome(state("retry_scheduled"), JobCommand::Requeue { at }),
            expected,
            "requeue at {at}"
        );
    }
}

#[test]
fn resubmitting_a_dead_lettered_job_starts_a_new_chain() {
    let resubmit = |at| JobCommand::Resubmit {
        by: "key:admin".to_owned(),
        at,
    };
    let events = outcome(state("dead_lettered"), resubmit(t(10))).unwrap();
    assert_eq!(
        events,
        vec![
            JobEvent::JobResubmitted {
                by: "key:admin".to_owned(),
                chain: 2,
                at: t(10),
            },
            JobEvent::JobQueued {
                reason: QueueReason::Resubmitted,
                at: t(10),
            },
        ]
    );
    let mut history = state("dead_lettered");
    history.extend(events);
    let job = job_after(&history);
    assert_eq!(
        (job.status, job.chain, job.attempt),
        (JobStatus::Queued, 2, 0)
    );
    // The new chain's first claim is attempt 1 again, and a later resubmission is chain 3.
    history.push(claimed(L2, 1));
    history.extend([
        failed(L2, 1, true),
        JobEvent::RetryScheduled {
            next_attempt: 2,
            due_at: t(12),
            at: t(11),
        },
        queued(QueueReason::Retry),
        claimed(L1, 2),
        failed(L1, 2, true),
        JobEvent::JobDeadLettered {
            attempts: 2,
            at: t(13),
        },
    ]);
    let again = outcome(history, resubmit(t(20))).unwrap();
    assert!(
        matches!(again[0], JobEvent::JobResubmitted { chain: 3, .. }),
        "{again:?}"
    );
}

#[test]
fn a_new_job_starts_queued_in_its_first_chain() {
    let job = job_after(&state("queued"));
    assert_eq!(job.status, JobStatus::Queued);
    assert_eq!((job.chain, job.attempt), (1, 0));
    assert_eq!((job.lease, job.progress, job.result), (None, None, None));
    assert_eq!(job.owner, OWNER);
    assert_eq!(job.retry_policy.max_attempts(), 2);
    assert_eq!(TranslationJob::default().job(), None);
}

#[test]
fn each_command_has_its_recorded_name() {
    let names: Vec<&str> = [
        "submit",
        "claim",
        "heartbeat",
        "progress",
        "complete",
        "fail",
        "cancel",
        "expire_lease",
        "requeue",
        "resubmit",
    ]
    .into_iter()
    .map(|name| command(name).name())
    .collect();
    assert_eq!(
        names,
        [
            "SubmitJob",
            "ClaimJob",
            "HeartbeatJob",
            "ReportJobProgress",
            "CompleteJob",
            "FailJob",
            "CancelJob",
            "ExpireJobLease",
            "RequeueJob",
            "ResubmitJob",
        ]
    );
}

#[test]
fn each_event_tells_when_it_was_accepted() {
    let mut history = state("dead_lettered");
    history.extend(state("succeeded").split_off(2));
    history.extend(state("cancelled").split_off(2));
    history.extend(state("running").split_off(3));
    history.extend([
        JobEvent::LeaseExtended {
            lease_id: L1,
            lease_expires_at: t(90),
            at: t(77),
        },
        JobEvent::LeaseExpired {
            lease_id: L1,
            attempt: 1,
            at: t(78),
        },
        JobEvent::JobResubmitted {
            by: "key:admin".to_owned(),
            chain: 2,
            at: t(79),
        },
    ]);
    let times: Vec<DateTime<Utc>> = history.iter().map(JobEvent::at).collect();
    let expected = [0, 0, 0, 1, 1, 2, 0, 1, 3, 0, 1, 1, 1, 77, 78, 79].map(t);
    assert_eq!(times, expected);
}
