//! Value objects of the jobs context and the retry backoff.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;

fn ms(policy: RetryPolicy, attempt: u32, jitter: u16) -> i64 {
    policy
        .backoff(attempt, Jitter::new(jitter))
        .num_milliseconds()
}

#[test]
fn backoff_doubles_caps_and_jitters_within_half() {
    let policy = RetryPolicy::new(10, 1_000, 10_000).unwrap();
    let full: Vec<i64> = (1..=5).map(|attempt| ms(policy, attempt, 1000)).collect();
    assert_eq!(full, [1_000, 2_000, 4_000, 8_000, 10_000]);
    assert_eq!(ms(policy, 3, 0), 2_000);
    assert_eq!(ms(policy, 3, 500), 3_000);
    assert_eq!(ms(policy, 3, 1), 2_002);
    assert_eq!(ms(policy, 64, 1000), 10_000);
    // Attempt 0 is treated as the first; jitter above 1000 as 1000.
    assert_eq!(ms(policy, 0, 1000), 1_000);
    assert_eq!(ms(policy, 2, u16::MAX), 2_000);
    // Odd delays halve downwards, in both halves.
    let odd = RetryPolicy::new(3, 999, 999).unwrap();
    assert_eq!(
        [ms(odd, 1, 0), ms(odd, 1, 999), ms(odd, 1, 1000)],
        [499, 997, 998]
    );
}

#[test]
fn backoff_saturates_instead_of_overflowing() {
    let huge = RetryPolicy::new(100, u64::MAX / 4, u64::MAX).unwrap();
    assert_eq!(ms(huge, 100, 1000), i64::MAX);
    assert_eq!(ms(huge, 1, 0), i64::try_from(u64::MAX / 8).unwrap());
    // A retry that would be due after the last representable instant is due then.
    let mut history = submit_with(JobSpec {
        retry_policy: huge,
        ..spec(JobKind::Translation, 1)
    });
    history.push(claimed(L1, 1));
    let events = outcome(
        history,
        JobCommand::Fail {
            lease_id: L1,
            failure: failure(true),
            jitter: Jitter::new(1000),
            at: t(1),
        },
    )
    .unwrap();
    assert_eq!(
        events[1],
        JobEvent::RetryScheduled {
            next_attempt: 2,
            due_at: DateTime::<Utc>::MAX_UTC,
            at: t(1),
        }
    );
}

#[test]
fn a_retry_policy_allows_1_to_100_attempts_with_ordered_delays() {
    assert_eq!(RetryPolicy::new(1, 5, 5).map(|p| p.max_attempts()), Ok(1));
    assert_eq!(
        RetryPolicy::new(100, 0, 1).map(|p| p.max_attempts()),
        Ok(100)
    );
    for (attempts, base, max) in [(0, 1, 2), (101, 1, 2), (3, 3, 2)] {
        assert_eq!(
            RetryPolicy::new(attempts, base, max),
            Err(JobError::InvalidRetryPolicy),
            "{attempts} attempts, {base}..{max} ms"
        );
    }
}

#[test]
fn counts_are_bounded_and_a_count_too_large_is_named() {
    let too_large = |field| JobError::CountTooLarge {
        field,
        max: MAX_COUNT,
        actual: MAX_COUNT + 1,
    };
    let progress = Progress::new(MAX_COUNT, MAX_COUNT).unwrap();
    assert_eq!((progress.done(), progress.total()), (MAX_COUNT, MAX_COUNT));
    let progress = Progress::new(2, 7).unwrap();
    assert_eq!((progress.done(), progress.total()), (2, 7));
    assert_eq!(Progress::new(MAX_COUNT + 1, 1), Err(too_large("done")));
    assert_eq!(Progress::new(1, MAX_COUNT + 1), Err(too_large("total")));
    let metrics = JobMetrics::new(MAX_COUNT, 3).unwrap();
    assert_eq!((metrics.characters(), metrics.segments()), (MAX_COUNT, 3));
    let metrics = JobMetrics::new(5, MAX_COUNT).unwrap();
    assert_eq!((metrics.characters(), metrics.segments()), (5, MAX_COUNT));
    assert_eq!(
        JobMetrics::new(MAX_COUNT + 1, 0),
        Err(too_large("characters"))
    );
    assert_eq!(
        JobMetrics::new(0, MAX_COUNT + 1),
        Err(too_large("segments"))
    );
    assert_eq!(
        JobMetrics::new(0, u64::MAX),
        Err(JobError::CountTooLarge {
            field: "segments",
            max: MAX_COUNT,
            actual: u64::MAX,
        })
    );
    // Every count fits the signed 64-bit columns read models store it in.
    assert!(i64::try_from(MAX_COUNT).is_ok());
}

#[test]
fn language_tags_are_normalised() {
    let tag = |raw: &str| LanguageCode::parse(raw).map(|code| code.to_string());
    assert_eq!(tag("pt_br"), Ok("pt-BR".to_owned()));
    assert_eq!(tag(" ZH-hant-tw "), Ok("zh-Hant-TW".to_owned()));
    assert_eq!(tag("es-419"), Ok("es-419".to_owned()));
    assert_eq!(tag("GSW"), Ok("gsw".to_owned()));
    // At most 12 characters as sent, surrounding whitespace included.
    assert_eq!(tag("zho-Hant-419"), Ok("zho-Hant-419".to_owned()));
    assert_eq!(tag(" zh-Hant-419"), Ok("zh-Hant-419".to_owned()));
    assert_eq!(tag("  zh-Hant-419"), Err(JobError::InvalidLanguage));
    assert_eq!(tag("sr-Latn"), Ok("sr-Latn".to_owned()));
    assert_eq!(
        LanguageCode::parse("de-CH").map(|code| code.as_str().to_owned()),
        Ok("de-CH".to_owned())
    );
    for bad in [
        "",
        "e",
        "english",
        "e1",
        "en-",
        "en-US-GB",
        "en-Latn-Latn",
        "en-US-Latn",
        "en-1",
        "en-12",
        "en-4199",
        "en-Lat1",
        "en-U1",
        "en-41a",
    ] {
        assert_eq!(tag(bad), Err(JobError::InvalidLanguage), "{bad:?}");
    }
}

#[test]
fn priority_is_0_to_9() {
    assert_eq!(Priority::new(0).map(Priority::value), Ok(0));
    assert_eq!(Priority::new(9).map(Priority::value), Ok(9));
    assert_eq!(Priority::NORMAL.value(), 5);
    for bad in [10, -1, 256, i64::MAX] {
        assert_eq!(Priority::new(bad), Err(JobError::InvalidPriority), "{bad}");
    }
}

#[test]
fn options_are_bounded_in_keys_and_sizes() {
    let options = |pairs: Vec<(String, String)>| JobOptions::new(pairs.into_iter().collect());
    let many = |n: usize| (0..n).map(|i| (format!("k{i}"), "v".to_owned())).collect();
    assert_eq!(options(many(20)).map(|o| o.as_map().len()), Ok(20));
    assert_eq!(options(many(21)), Err(JobError::InvalidOptions));
    let fits = vec![
        ("k".repeat(64), "é".repeat(256)),
        ("x".to_owned(), String::new()),
    ];
    assert_eq!(
        options(fits.clone()).map(|o| o.as_map().clone()),
        Ok(fits.into_iter().collect::<BTreeMap<_, _>>())
    );
    for bad in [
        (String::new(), "v".to_owned()),
        ("k".repeat(65), "v".to_owned()),
        ("k".to_owned(), "v".repeat(257)),
    ] {
        assert_eq!(options(vec![bad]), Err(JobError::InvalidOptions));
    }
}

#[test]
fn error_codes_are_short_lower_case_words() {
    for good in ["timeout", "engine.unavailable", "a_b-c.9", &"x".repeat(64)] {
        assert_eq!(
            ErrorCode::parse(good).map(|code| code.as_str().to_owned()),
            Ok(good.to_owned())
        );
    }
    for bad in ["", "Bad", "a b", "ümlaut", "a/b", &"x".repeat(65)] {
        assert_eq!(
            ErrorCode::parse(bad),
            Err(JobError::InvalidErrorCode),
            "{bad:?}"
        );
    }
}

#[test]
fn text_is_trimmed_and_1_to_1000_characters() {
    assert_eq!(
        Text::parse("  it broke \n").map(|text| text.as_str().to_owned()),
        Ok("it broke".to_owned())
    );
    assert!(Text::parse(&"é".repeat(1000)).is_ok());
    assert_eq!(Text::parse("  "), Err(JobError::TextLength { max: 1000 }));
    assert_eq!(
        Text::parse(&"é".repeat(1001)),
        Err(JobError::TextLength { max: 1000 })
    );
    // Padding counts against the maximum as sent.
    assert!(Text::parse(&format!(" {} ", "é".repeat(998))).is_ok());
    assert_eq!(
        Text::parse(&format!(" {} ", "é".repeat(999))),
        Err(JobError::TextLength { max: 1000 })
    );
}

#[test]
fn job_kinds_and_statuses_read_as_stored() {
    let kinds: Vec<&str> = JobKind::ALL.iter().map(|kind| kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["translation", "validation", "post_edit", "illustration"]
    );
    let needs_parent: Vec<bool> = JobKind::ALL.iter().map(|k| k.needs_parent()).collect();
    assert_eq!(needs_parent, [false, true, true, false]);
    let changes: Vec<bool> = JobKind::ALL.iter().map(|k| k.changes_language()).collect();
    assert_eq!(changes, [true, true, true, false]);
    let terminal = [
        JobStatus::Succeeded,
        JobStatus::Failed,
        JobStatus::Cancelled,
        JobStatus::DeadLettered,
    ];
    assert!(terminal.iter().all(|status| status.is_terminal()));
    let running = [JobStatus::Queued, JobStatus::Claimed, JobStatus::Running];
    assert!(!running.iter().any(|status| status.is_terminal()));
    assert!(!JobStatus::RetryScheduled { due_at: t(0) }.is_terminal());
}

proptest! {
    /// A count is accepted exactly when it is at most `MAX_COUNT`, and kept as given.
    #[test]
    fn counts_are_accepted_up_to_the_bound(
        a in prop_oneof![0..=MAX_COUNT, MAX_COUNT - 2..=MAX_COUNT + 2, any::<u64>()],
        b in prop_oneof![0..=MAX_COUNT, MAX_COUNT - 2..=MAX_COUNT + 2, any::<u64>()],
    ) {
        let fits = a <= MAX_COUNT && b <= MAX_COUNT;
        let progress = Progress::new(a, b);
        prop_assert_eq!(progress.is_ok(), fits);
        if let Ok(progress) = progress {
            prop_assert_eq!((progress.done(), progress.total()), (a, b));
        }
        let metrics = JobMetrics::new(a, b);
        prop_assert_eq!(metrics.is_ok(), fits);
        if let Ok(metrics) = metrics {
            prop_assert_eq!((metrics.characters(), metrics.segments()), (a, b));
        }
    }

    /// The wait after an attempt is within [50 %, 100 %] of the capped exponential delay, and
    /// never shrinks from one attempt to the next at the same jitter.
    #[test]
    fn backoff_stays_within_its_bounds(
        base in 0u64..100_000,
        extra in 0u64..10_000_000,
        attempt in 1u32..60,
        jitter in 0u16..=1000,
    ) {
        let policy = RetryPolicy::new(100, base, base + extra).unwrap();
        let capped = base.saturating_mul(1u64 << (attempt - 1).min(40)).min(base + extra);
        let wait = u64::try_from(ms(policy, attempt, jitter)).unwrap();
        prop_assert!(capped / 2 <= wait && wait <= capped, "{wait} for {capped}");
        prop_assert!(ms(policy, attempt + 1, jitter) >= ms(policy, attempt, jitter));
    }
}

#[test]
fn error_codes_and_kinds_are_stable() {
    use crate::error::DomainError;
    use crate::error::ErrorKind::{self, Conflict, Invalid, Rejected};
    use JobError::*;
    let cases = [
        (InvalidLanguage, "invalid_language", Invalid),
        (SameLanguage, "same_language", Invalid),
        (InvalidPriority, "invalid_priority", Invalid),
        (InvalidOptions, "invalid_options", Invalid),
        (InvalidRetryPolicy, "invalid_retry_policy", Invalid),
        (InvalidErrorCode, "invalid_error_code", Invalid),
        (TextLength { max: 1 }, "text_length", Invalid),
        (
            CountTooLarge {
                field: "done",
                max: 1,
                actual: 2,
            },
            "count_too_large",
            Invalid,
        ),
        (InvalidTotal, "invalid_total", Invalid),
        (ParentRequired { kind: "x" }, "parent_required", Invalid),
        (
            ParentNotAllowed { kind: "x" },
            "parent_not_allowed",
            Invalid,
        ),
        (ParentNotFound, "parent_not_found", ErrorKind::NotFound),
        (ParentNotSucceeded, "parent_not_succeeded", Rejected),
        (DocumentNotFound, "document_not_found", ErrorKind::NotFound),
        (NotFound, "job_not_found", ErrorKind::NotFound),
        (AlreadySubmitted, "job_already_submitted", Conflict),
        (NotQueued, "job_not_queued", Conflict),
        (NotHolder, "not_lease_holder", Rejected),
        (LeaseExpired, "lease_expired", Rejected),
        (Cancelled, "job_cancelled", Rejected),
        (AlreadyFinished, "job_finished", Rejected),
        (
            ProgressRegressed {
                previous: 2,
                reported: 1,
            },
            "progress_regressed",
            Rejected,
        ),
        (
            ProgressAboveTotal { done: 2, total: 1 },
            "progress_above_total",
            Invalid,
        ),
        (
            TotalChanged {
                previous: 2,
                reported: 1,
            },
            "progress_total_changed",
            Rejected,
        ),
        (LeaseNotExpired, "lease_not_expired", Rejected),
        (RetryNotDue, "retry_not_due", Rejected),
        (NotDeadLettered, "job_not_dead_lettered", Rejected),
    ];
    for (error, code, kind) in cases {
        assert_eq!((error.code(), error.kind()), (code, kind), "{error:?}");
    }
    assert_eq!(
        CountTooLarge {
            field: "segments",
            max: MAX_COUNT,
            actual: MAX_COUNT + 1,
        }
        .to_string(),
        "segments must be at most 1000000000000, got 1000000000001"
    );
}
