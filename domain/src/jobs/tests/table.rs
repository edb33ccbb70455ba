//! Every command against every state: the events it appends or the error that refuses it.

use cqrs_es::DomainEvent;

use super::*;

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
            let actual = outcome(state(state_name), command(command_name)).map(|events| {
                events
                    .iter()
                    .map(DomainEvent::event_type)
                    .collect::<Vec<_>>()
            });
            let expected = expected.map(|names| names.iter().map(|n| n.to_string()).collect());
            assert_eq!(actual, expected, "{command_name} in state {state_name}");
        }
    }
}
