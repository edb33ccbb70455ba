//! Given/when/then for the import run in each of its states: asked once however often it is
//! asked, attempts leased and taken over after their lease, stale attempts refused, retries until
//! the last attempt, and an abandoned run asked for again.

use chrono::{DateTime, Duration, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use uuid::Uuid;

use super::*;
use crate::aggregate::{Guarded, Rejection, Versioned};

type Given = TestFramework<Versioned<PriceImport>>;

fn t(seconds: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 0, 0, 0).unwrap() + Duration::seconds(seconds)
}

fn key() -> ImportKey {
    ImportKey {
        asset: Uuid::from_u128(7),
        interval: Interval::Day,
        from: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
        to: Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap(),
    }
}

fn requested() -> PriceImportEvent {
    PriceImportEvent::ImportRequested {
        key: key(),
        provider: "twelvedata".to_owned(),
        at: t(0),
    }
}

fn started(attempt: u32, lease_until: i64) -> PriceImportEvent {
    PriceImportEvent::ImportStarted {
        attempt,
        lease_until: t(lease_until),
        at: t(lease_until - 60),
    }
}

fn when(command: PriceImportCommand) -> Guarded<PriceImportCommand> {
    Guarded::new(command)
}

fn refused(error: PriceImportError) -> Rejection<PriceImportError> {
    Rejection::Domain(error)
}

fn request() -> PriceImportCommand {
    PriceImportCommand::Request {
        key: key(),
        provider: "twelvedata".to_owned(),
        at: t(5),
    }
}

fn fail(attempt: u32, max_attempts: u32) -> PriceImportCommand {
    PriceImportCommand::Fail {
        attempt,
        error: "provider answered 503".to_owned(),
        retry_at: t(300),
        max_attempts,
        at: t(100),
    }
}

#[test]
fn an_import_is_requested_once_however_often_it_is_asked() {
    Given::with(())
        .given_no_previous_events()
        .when(when(request()))
        .then_expect_events(vec![PriceImportEvent::ImportRequested {
            key: key(),
            provider: "twelvedata".to_owned(),
            at: t(5),
        }]);
    Given::with(())
        .given(vec![requested()])
        .when(when(request()))
        .then_expect_events(vec![]);
    Given::with(())
        .given(vec![
            requested(),
            started(1, 60),
            PriceImportEvent::ImportCompleted {
                fetched: 59,
                at: t(30),
            },
        ])
        .when(when(request()))
        .then_expect_events(vec![]);
}

#[test]
fn a_range_must_be_aligned_and_not_empty() {
    for (from, to) in [(key().to, key().from), (key().from, key().from)] {
        Given::with(())
            .given_no_previous_events()
            .when(when(PriceImportCommand::Request {
                key: ImportKey { from, to, ..key() },
                provider: "twelvedata".to_owned(),
                at: t(0),
            }))
            .then_expect_error(refused(PriceImportError::InvalidRange));
    }
    Given::with(())
        .given_no_previous_events()
        .when(when(PriceImportCommand::Request {
            key: ImportKey {
                to: key().to + Duration::hours(1),
                ..key()
            },
            provider: "twelvedata".to_owned(),
            at: t(0),
        }))
        .then_expect_error(refused(PriceImportError::InvalidRange));
}

#[test]
fn an_attempt_starts_when_queued_and_is_taken_over_only_after_its_lease() {
    Given::with(())
        .given(vec![requested()])
        .when(when(PriceImportCommand::Start {
            lease_until: t(60),
            max_attempts: 5,
            at: t(1),
        }))
        .then_expect_events(vec![PriceImportEvent::ImportStarted {
            attempt: 1,
            lease_until: t(60),
            at: t(1),
        }]);
    Given::with(())
        .given(vec![requested(), started(1, 60)])
        .when(when(PriceImportCommand::Start {
            lease_until: t(119),
            max_attempts: 5,
            at: t(59),
        }))
        .then_expect_error(refused(PriceImportError::NotDue));
    Given::with(())
        .given(vec![requested(), started(1, 60)])
        .when(when(PriceImportCommand::Start {
            lease_until: t(120),
            max_attempts: 5,
            at: t(60),
        }))
        .then_expect_events(vec![PriceImportEvent::ImportStarted {
            attempt: 2,
            lease_until: t(120),
            at: t(60),
        }]);
}

#[test]
fn a_last_attempt_whose_lease_ended_abandons_the_import_instead_of_starting_another() {
    Given::with(())
        .given(vec![requested(), started(1, 60), started(2, 120)])
        .when(when(PriceImportCommand::Start {
            lease_until: t(180),
            max_attempts: 2,
            at: t(120),
        }))
        .then_expect_events(vec![PriceImportEvent::ImportAbandoned {
            attempt: 2,
            error: "the attempt's lease ended without a report (its importer stopped)".to_owned(),
            at: t(120),
        }]);
}

#[test]
fn a_taken_over_attempt_can_no_longer_report_complete_or_fail() {
    let given = || vec![requested(), started(1, 60), started(2, 120)];
    Given::with(())
        .given(given())
        .when(when(PriceImportCommand::Complete {
            attempt: 1,
            fetched: 59,
            at: t(61),
        }))
        .then_expect_error(refused(PriceImportError::NotRunning));
    Given::with(())
        .given(given())
        .when(when(fail(1, 5)))
        .then_expect_error(refused(PriceImportError::NotRunning));
    Given::with(())
        .given(given())
        .when(when(PriceImportCommand::Progress {
            attempt: 2,
            fetched: 10,
            recorded_until: t(0),
            lease_until: t(200),
            at: t(70),
        }))
        .then_expect_events(vec![PriceImportEvent::ImportProgressed {
            fetched: 10,
            recorded_until: t(0),
            lease_until: t(200),
            at: t(70),
        }]);
}

#[test]
fn progress_extends_the_lease_so_a_long_attempt_is_not_taken_over() {
    let progressed = PriceImportEvent::ImportProgressed {
        fetched: 10,
        recorded_until: t(0),
        lease_until: t(200),
        at: t(59),
    };
    Given::with(())
        .given(vec![requested(), started(1, 60), progressed])
        .when(when(PriceImportCommand::Start {
            lease_until: t(150),
            max_attempts: 5,
            at: t(90),
        }))
        .then_expect_error(refused(PriceImportError::NotDue));
}

#[test]
fn a_failed_attempt_waits_for_its_retry_and_the_last_one_abandons_until_asked_again() {
    Given::with(())
        .given(vec![requested(), started(1, 60)])
        .when(when(fail(1, 3)))
        .then_expect_events(vec![PriceImportEvent::ImportFailed {
            attempt: 1,
            error: "provider answered 503".to_owned(),
            retry_at: t(300),
            at: t(100),
        }]);
    let waiting = || {
        vec![
            requested(),
            started(1, 60),
            PriceImportEvent::ImportFailed {
                attempt: 1,
                error: "provider answered 503".to_owned(),
                retry_at: t(300),
                at: t(100),
            },
        ]
    };
    Given::with(())
        .given(waiting())
        .when(when(PriceImportCommand::Start {
            lease_until: t(350),
            max_attempts: 5,
            at: t(299),
        }))
        .then_expect_error(refused(PriceImportError::NotDue));
    Given::with(())
        .given(waiting())
        .when(when(PriceImportCommand::Start {
            lease_until: t(360),
            max_attempts: 5,
            at: t(300),
        }))
        .then_expect_events(vec![PriceImportEvent::ImportStarted {
            attempt: 2,
            lease_until: t(360),
            at: t(300),
        }]);
    let mut last = waiting();
    last.push(started(2, 360));
    Given::with(())
        .given(last.clone())
        .when(when(fail(2, 2)))
        .then_expect_events(vec![PriceImportEvent::ImportAbandoned {
            attempt: 2,
            error: "provider answered 503".to_owned(),
            at: t(100),
        }]);
    last.push(PriceImportEvent::ImportAbandoned {
        attempt: 2,
        error: "provider answered 503".to_owned(),
        at: t(100),
    });
    Given::with(())
        .given(last.clone())
        .when(when(PriceImportCommand::Start {
            lease_until: t(9_999),
            max_attempts: 5,
            at: t(9_000),
        }))
        .then_expect_error(refused(PriceImportError::NotDue));
    Given::with(())
        .given(last)
        .when(when(request()))
        .then_expect_events(vec![PriceImportEvent::ImportRequested {
            key: key(),
            provider: "twelvedata".to_owned(),
            at: t(5),
        }]);
}

#[test]
fn the_same_range_is_the_same_stream_and_another_is_another() {
    let other = ImportKey {
        to: key().to + Duration::days(1),
        ..key()
    };
    assert_eq!(
        PriceImport::stream_id(&key()),
        PriceImport::stream_id(&key())
    );
    assert_ne!(
        PriceImport::stream_id(&key()),
        PriceImport::stream_id(&other)
    );
}

/// Every command in every state of the run: unrequested, queued, running (attempt 1, its lease
/// to t(60)), waiting (retry at t(300)), completed and abandoned; each asked at t(30).
#[test]
fn every_command_in_every_state() {
    let failed = PriceImportEvent::ImportFailed {
        attempt: 1,
        error: "provider answered 503".to_owned(),
        retry_at: t(300),
        at: t(20),
    };
    let completed = PriceImportEvent::ImportCompleted {
        fetched: 59,
        at: t(20),
    };
    let abandoned = PriceImportEvent::ImportAbandoned {
        attempt: 1,
        error: "provider answered 401".to_owned(),
        at: t(20),
    };
    let states: [(&str, Vec<PriceImportEvent>); 6] = [
        ("unrequested", vec![]),
        ("queued", vec![requested()]),
        ("running", vec![requested(), started(1, 60)]),
        ("waiting", vec![requested(), started(1, 60), failed]),
        ("completed", vec![requested(), started(1, 60), completed]),
        ("abandoned", vec![requested(), started(1, 60), abandoned]),
    ];
    let other_key = ImportKey {
        to: key().to + Duration::days(1),
        ..key()
    };
    let request = |key: ImportKey| PriceImportCommand::Request {
        key,
        provider: "twelvedata".to_owned(),
        at: t(30),
    };
    let start = PriceImportCommand::Start {
        lease_until: t(90),
        max_attempts: 5,
        at: t(30),
    };
    let progress = PriceImportCommand::Progress {
        attempt: 1,
        fetched: 10,
        recorded_until: t(0),
        lease_until: t(90),
        at: t(30),
    };
    let complete = PriceImportCommand::Complete {
        attempt: 1,
        fetched: 59,
        at: t(30),
    };
    let fail = PriceImportCommand::Fail {
        attempt: 1,
        error: "timed out".to_owned(),
        retry_at: t(300),
        max_attempts: 5,
        at: t(30),
    };
    let asked = |key: ImportKey| {
        Ok(vec![PriceImportEvent::ImportRequested {
            key,
            provider: "twelvedata".to_owned(),
            at: t(30),
        }])
    };
    let nothing = || Ok(vec![]);
    let no = |error: PriceImportError| Err(error);
    for (state, history) in states {
        use PriceImportError::{NotDue, NotFound, NotRunning, WrongKey};
        let running = state == "running";
        let expectations: [(PriceImportCommand, Result<Vec<PriceImportEvent>, _>); 6] = [
            (
                request(key()),
                match state {
                    "unrequested" | "abandoned" => asked(key()),
                    _ => nothing(),
                },
            ),
            (
                request(other_key),
                match state {
                    "unrequested" => asked(other_key),
                    _ => no(WrongKey),
                },
            ),
            (
                start.clone(),
                match state {
                    "unrequested" => no(NotFound),
                    "queued" => Ok(vec![PriceImportEvent::ImportStarted {
                        attempt: 1,
                        lease_until: t(90),
                        at: t(30),
                    }]),
                    _ => no(NotDue),
                },
            ),
            (
                progress.clone(),
                match state {
                    "unrequested" => no(NotFound),
                    _ if running => Ok(vec![PriceImportEvent::ImportProgressed {
                        fetched: 10,
                        recorded_until: t(0),
                        lease_until: t(90),
                        at: t(30),
                    }]),
                    _ => no(NotRunning),
                },
            ),
            (
                complete.clone(),
                match state {
                    "unrequested" => no(NotFound),
                    _ if running => Ok(vec![PriceImportEvent::ImportCompleted {
                        fetched: 59,
                        at: t(30),
                    }]),
                    _ => no(NotRunning),
                },
            ),
            (
                fail.clone(),
                match state {
                    "unrequested" => no(NotFound),
                    _ if running => Ok(vec![PriceImportEvent::ImportFailed {
                        attempt: 1,
                        error: "timed out".to_owned(),
                        retry_at: t(300),
                        at: t(30),
                    }]),
                    _ => no(NotRunning),
                },
            ),
        ];
        for (command, expected) in expectations {
            let given = Given::with(()).given(history.clone()).when(when(command));
            match expected {
                Ok(events) => given.then_expect_events(events),
                Err(error) => given.then_expect_error(refused(error)),
            }
        }
    }
}
