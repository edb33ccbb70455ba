//! Given/when/then for every command in every state, and properties of random histories.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use cqrs_es::DomainEvent;
use proptest::prelude::*;
use uuid::Uuid;

use super::*;
use crate::aggregate::{replay, Decider, Guarded, Rejection, Versioned};

type Given = TestFramework<Versioned<TranslationJob>>;

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
                progress: Progress { done: 3, total: 10 },
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
            progress: Progress { done: 5, total: 10 },
            at: now,
        },
        "complete" => JobCommand::Complete {
            lease_id: L1,
            result: document(4),
            metrics: JobMetrics {
                characters: 1200,
                segments: 12,
            },
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

type Outcome = Result<&'static [&'static str], JobError>;

/// The whole table: every command against every state, with the events it appends or the
/// error that refuses it.
#[test]
fn every_command_in_every_state() {
    use JobError::*;
    let commands = [
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
    ];
    let ok = |events: &'static [&'static str]| -> Outcome { Ok(events) };
    let held = [
        Err(AlreadySubmitted),
        Err(NotQueued),
        ok(&["JobLeaseExtended"]),
        ok(&["JobProgressReported"]),
        ok(&["JobSucceeded"]),
        ok(&["JobFailed", "JobRetryScheduled"]),
        ok(&["JobCancelled"]),
        ok(&["JobLeaseExpired", "JobQueued"]),
        Err(RetryNotDue),
        Err(NotDeadLettered),
    ];
    let stopped = |error: JobError| {
        [
            Err(AlreadySubmitted),
            Err(error.clone()),
            Err(error.clone()),
            Err(error.clone()),
            Err(error.clone()),
            Err(error.clone()),
            Err(error.clone()),
            Err(error.clone()),
            Err(error),
            Err(NotDeadLettered),
        ]
    };
    let table: [(&str, [Outcome; 10]); 9] = [
        (
            "not_submitted",
            [
                ok(&["JobSubmitted", "JobQueued"]),
                Err(NotFound),
                Err(NotFound),
                Err(NotFound),
                Err(NotFound),
                Err(NotFound),
                Err(NotFound),
                Err(NotFound),
                Err(NotFound),
                Err(NotFound),
            ],
        ),
        (
            "queued",
            [
                Err(AlreadySubmitted),
                ok(&["JobClaimed"]),
                Err(NotHolder),
                Err(NotHolder),
                Err(NotHolder),
                Err(NotHolder),
                ok(&["JobCancelled"]),
                Err(LeaseNotExpired),
                Err(RetryNotDue),
                Err(NotDeadLettered),
            ],
        ),
        ("claimed", held.clone()),
        ("running", held),
        (
            "retry_scheduled",
            [
                Err(AlreadySubmitted),
                Err(NotQueued),
                Err(NotHolder),
                Err(NotHolder),
                Err(NotHolder),
                Err(NotHolder),
                ok(&["JobCancelled"]),
                Err(LeaseNotExpired),
                ok(&["JobQueued"]),
                Err(NotDeadLettered),
            ],
        ),
        ("succeeded", stopped(AlreadyFinished)),
        ("failed", stopped(AlreadyFinished)),
        ("cancelled", stopped(Cancelled)),
        ("dead_lettered", {
            let mut row = stopped(AlreadyFinished);
            row[9] = ok(&["JobResubmitted", "JobQueued"]);
            row
        }),
    ];
    for (state_name, row) in table {
        for (command_name, expected) in commands.iter().zip(row) {
            let result = Given::with(())
                .given(state(state_name))
                .when(Guarded::new(command(command_name)))
                .inspect_result();
            let actual = result
                .map(|events| {
                    events
                        .iter()
                        .map(DomainEvent::event_type)
                        .collect::<Vec<_>>()
                })
                .map_err(|rejection| match rejection {
                    Rejection::Domain(error) => error,
                    other => panic!("{other:?}"),
                });
            let expected = expected.map(|names| names.iter().map(|n| n.to_string()).collect());
            assert_eq!(actual, expected, "{command_name} in state {state_name}");
        }
    }
}

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
fn progress_is_monotonic_and_bounded_by_a_fixed_total() {
    let report = |done, total| JobCommand::ReportProgress {
        lease_id: L1,
        progress: Progress { done, total },
        at: t(5),
    };
    let cases = [
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
        (report(0, 0), JobError::InvalidTotal),
    ];
    for (command, error) in cases {
        Given::with(())
            .given(state("running"))
            .when(Guarded::new(command))
            .then_expect_error(Rejection::Domain(error));
    }
}

#[test]
fn the_last_attempt_failing_or_expiring_dead_letters_the_job() {
    let mut history = submitted(1);
    history.push(claimed(L1, 1));
    let fail = Given::with(())
        .given(history.clone())
        .when(Guarded::new(command("fail")))
        .inspect_result()
        .unwrap();
    assert!(matches!(
        fail[1],
        JobEvent::JobDeadLettered { attempts: 1, .. }
    ));
    let expire = Given::with(())
        .given(history)
        .when(Guarded::new(command("expire_lease")))
        .inspect_result()
        .unwrap();
    assert!(matches!(
        expire[1],
        JobEvent::JobDeadLettered { attempts: 1, .. }
    ));
}

#[test]
fn backoff_doubles_caps_and_jitters_within_half() {
    let policy = RetryPolicy::new(10, 1_000, 10_000).unwrap();
    let ms = |attempt, jitter| {
        policy
            .backoff(attempt, Jitter::new(jitter))
            .num_milliseconds()
    };
    assert_eq!(
        [
            ms(1, 1000),
            ms(2, 1000),
            ms(3, 1000),
            ms(4, 1000),
            ms(5, 1000)
        ],
        [1_000, 2_000, 4_000, 8_000, 10_000]
    );
    assert_eq!(ms(3, 0), 2_000);
    assert_eq!(ms(3, 500), 3_000);
    assert_eq!(ms(64, 1000), 10_000);
}

#[test]
fn value_objects_parse_and_normalise() {
    let tag = |raw: &str| LanguageCode::parse(raw).map(|code| code.to_string());
    assert_eq!(tag("pt_br"), Ok("pt-BR".to_owned()));
    assert_eq!(tag("ZH-hant-tw"), Ok("zh-Hant-TW".to_owned()));
    assert_eq!(tag("es-419"), Ok("es-419".to_owned()));
    for bad in ["", "e", "english", "en-", "en-US-GB", "en-Latn-Latn", "e1"] {
        assert_eq!(tag(bad), Err(JobError::InvalidLanguage), "{bad:?}");
    }
    assert_eq!(Priority::new(10), Err(JobError::InvalidPriority));
    assert_eq!(Priority::new(-1), Err(JobError::InvalidPriority));
    assert_eq!(
        ErrorCode::parse("Bad Code"),
        Err(JobError::InvalidErrorCode)
    );
    assert_eq!(Text::parse("  "), Err(JobError::TextLength { max: 1000 }));
    assert_eq!(RetryPolicy::new(0, 1, 2), Err(JobError::InvalidRetryPolicy));
}

/// A random step: which command, with which lease and arguments, how much later.
#[derive(Debug, Clone)]
enum Step {
    Submit(u32),
    Claim(usize),
    Heartbeat(usize),
    Progress(usize, u64, u64),
    Complete(usize),
    Fail(usize, bool, u16),
    Cancel,
    Expire(usize),
    Requeue,
    Resubmit,
}

fn step() -> impl Strategy<Value = (Step, i64)> {
    let lease = 0..3usize;
    let step = prop_oneof![
        (1..4u32).prop_map(Step::Submit),
        lease.clone().prop_map(Step::Claim),
        lease.clone().prop_map(Step::Heartbeat),
        (lease.clone(), 0..14u64, 9..12u64).prop_map(|(l, d, t)| Step::Progress(l, d, t)),
        lease.clone().prop_map(Step::Complete),
        (lease.clone(), any::<bool>(), 0..=1000u16).prop_map(|(l, r, j)| Step::Fail(l, r, j)),
        Just(Step::Cancel),
        lease.prop_map(Step::Expire),
        Just(Step::Requeue),
        Just(Step::Resubmit),
    ];
    (step, 0..40i64)
}

fn to_command(step: Step, at: DateTime<Utc>) -> JobCommand {
    let lease = |n: usize| Uuid::from_u128(100 + n as u128);
    match step {
        Step::Submit(max) => JobCommand::Submit {
            spec: Box::new(spec(JobKind::Translation, max)),
            at,
        },
        Step::Claim(n) => JobCommand::Claim {
            lease: Lease {
                lease_id: lease(n),
                worker: format!("key:{n}"),
                expires_at: at + TimeDelta::seconds(30),
            },
            at,
        },
        Step::Heartbeat(n) => JobCommand::Heartbeat {
            lease_id: lease(n),
            until: at + TimeDelta::seconds(30),
            at,
        },
        Step::Progress(n, done, total) => JobCommand::ReportProgress {
            lease_id: lease(n),
            progress: Progress { done, total },
            at,
        },
        Step::Complete(n) => JobCommand::Complete {
            lease_id: lease(n),
            result: document(5),
            metrics: JobMetrics::default(),
            at,
        },
        Step::Fail(n, retryable, jitter) => JobCommand::Fail {
            lease_id: lease(n),
            failure: failure(retryable),
            jitter: Jitter::new(jitter),
            at,
        },
        Step::Cancel => JobCommand::Cancel {
            by: "user:o".to_owned(),
            reason: Text::parse("stop").unwrap(),
            at,
        },
        Step::Expire(n) => JobCommand::ExpireLease {
            lease_id: lease(n),
            at,
        },
        Step::Requeue => JobCommand::Requeue { at },
        Step::Resubmit => JobCommand::Resubmit {
            by: "key:admin".to_owned(),
            at,
        },
    }
}

proptest! {
    /// No command sequence reaches an invalid state, and the history replays to the live state.
    #[test]
    fn random_histories_stay_valid_and_replay(steps in prop::collection::vec(step(), 1..80)) {
        let mut live = TranslationJob::default();
        let mut history: Vec<JobEvent> = Vec::new();
        let mut now = t(0);
        for (step, advance) in steps {
            now += TimeDelta::seconds(advance);
            let before = live.job().map(|job| job.status);
            let Ok(events) = live.decide(to_command(step, now)) else { continue };
            prop_assert!(!events.is_empty());
            for event in &events {
                // A claim only ever takes a job nobody holds.
                if matches!(event, JobEvent::JobClaimed { .. }) {
                    prop_assert_eq!(live.job().map(|job| job.status), Some(JobStatus::Queued));
                    prop_assert!(live.job().is_some_and(|job| job.lease.is_none()));
                }
                live.evolve(event);
            }
            history.extend(events);
            let job = live.job().expect("accepted commands leave a submitted job");
            // Nothing moves a stopped job but resubmitting a dead-lettered one.
            if let Some(status) = before.filter(|status| status.is_terminal()) {
                prop_assert_eq!(status, JobStatus::DeadLettered);
                prop_assert_eq!(job.status, JobStatus::Queued);
            }
            prop_assert_eq!(
                job.lease.is_some(),
                matches!(job.status, JobStatus::Claimed | JobStatus::Running)
            );
            if let Some(progress) = job.progress {
                prop_assert!(progress.done <= progress.total);
            }
            prop_assert!(job.attempt <= job.retry_policy.max_attempts());
        }
        let replayed = replay::<TranslationJob>(&history);
        prop_assert_eq!(replayed.state(), &live);
        prop_assert_eq!(replayed.version(), history.len() as u64);
    }
}
