//! Random command sequences: every invariant holds, and the history replays to the live state.

use proptest::prelude::*;

use super::*;

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
            progress: progress(done, total),
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
    /// No command sequence reaches an invalid state, and the history replays to the live state
    /// (from the start, or from a snapshot after any event).
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
                prop_assert!(progress.done() <= progress.total());
            }
            prop_assert!(job.attempt <= job.retry_policy.max_attempts());
        }
        let replayed = replay::<TranslationJob>(&history);
        prop_assert_eq!(replayed.state(), &live);
        prop_assert_eq!(replayed.version(), history.len() as u64);
        crate::aggregate::assert_snapshots_resume::<TranslationJob>(&history);
    }
}
