//! Hiding, reports and suspensions.

use super::*;

fn post() -> PostEvent {
    PostEvent::PostWritten {
        category: category_id(),
        author: author(),
        title: title("Hello"),
        body: body("First!"),
        at: at(),
    }
}
fn report_id() -> Uuid {
    Uuid::from_u128(77)
}
fn target() -> Target {
    Target::Post(Uuid::from_u128(10))
}
fn reason() -> Reason {
    Reason::parse("  spam  ").unwrap()
}
fn filed() -> ReportEvent {
    ReportEvent::ReportFiled {
        target: target(),
        reporter: author(),
        reason: reason(),
        at: at(),
    }
}
fn file() -> ReportCommand {
    ReportCommand::File {
        target: target(),
        reporter: author(),
        reason: reason(),
        at: at(),
    }
}
fn resolve(resolution: Resolution) -> ReportCommand {
    ReportCommand::Resolve {
        resolution,
        by: "user:mod".to_owned(),
        at: at(),
    }
}

#[test]
fn a_hidden_post_or_comment_changes_no_more() {
    let hide = PostCommand::Hide {
        by: "user:mod".to_owned(),
        report: report_id(),
        at: at(),
    };
    let hidden = PostEvent::PostHidden {
        by: "user:mod".to_owned(),
        report: report_id(),
        at: at(),
    };
    TestFramework::<Versioned<Post>>::with(())
        .given(vec![post()])
        .when(Guarded::new(hide.clone()))
        .then_expect_events(vec![hidden.clone()]);
    for command in [
        hide,
        PostCommand::SetLocked {
            locked: true,
            at: at(),
        },
        PostCommand::Remove {
            by: "user:a".to_owned(),
            at: at(),
        },
    ] {
        TestFramework::<Versioned<Post>>::with(())
            .given(vec![post(), hidden.clone()])
            .when(Guarded::new(command))
            .then_expect_error(domain(CommunityError::PostHidden));
    }
    let comment = CommentEvent::CommentWritten {
        post: Uuid::from_u128(10),
        category: category_id(),
        parent: None,
        author: author(),
        body: body("Spam"),
        at: at(),
    };
    let hide = CommentCommand::Hide {
        by: "user:mod".to_owned(),
        report: report_id(),
        at: at(),
    };
    let hidden = CommentEvent::CommentHidden {
        by: "user:mod".to_owned(),
        report: report_id(),
        at: at(),
    };
    TestFramework::<Versioned<Comment>>::with(())
        .given(vec![comment.clone()])
        .when(Guarded::new(hide.clone()))
        .then_expect_events(vec![hidden.clone()]);
    TestFramework::<Versioned<Comment>>::with(())
        .given(vec![comment, hidden])
        .when(Guarded::new(hide))
        .then_expect_error(domain(CommunityError::CommentHidden));
}

#[test]
fn a_report_is_filed_once_and_resolved_once() {
    type Given = TestFramework<Versioned<Report>>;
    Given::with(())
        .given_no_previous_events()
        .when(Guarded::new(file()))
        .then_expect_events(vec![filed()]);
    Given::with(())
        .given(vec![filed()])
        .when(Guarded::new(file()))
        .then_expect_error(domain(CommunityError::AlreadyReported));
    Given::with(())
        .given_no_previous_events()
        .when(Guarded::new(resolve(Resolution::Hide)))
        .then_expect_error(domain(CommunityError::ReportNotFound));
    for resolution in [Resolution::Hide, Resolution::Dismiss] {
        let resolved = ReportEvent::ReportResolved {
            resolution,
            by: "user:mod".to_owned(),
            at: at(),
        };
        Given::with(())
            .given(vec![filed()])
            .when(Guarded::new(resolve(resolution)))
            .then_expect_events(vec![resolved.clone()]);
        Given::with(())
            .given(vec![filed(), resolved])
            .when(Guarded::new(resolve(Resolution::Dismiss)))
            .then_expect_error(domain(CommunityError::ReportResolved));
    }
    assert_eq!(reason().as_str(), "spam");
    assert_eq!(
        Reason::parse(" "),
        Err(CommunityError::ReasonLength { max: 1000 })
    );
    assert!(Reason::parse(&"r".repeat(1001)).is_err());
    let ada = Uuid::from_u128(1);
    assert_ne!(
        Report::stream_id(target(), ada),
        Report::stream_id(Target::Comment(target().id()), ada)
    );
    assert_ne!(
        Report::stream_id(target(), ada),
        Reactions::stream_id(target(), ada),
        "reports and reactions never share a stream"
    );
}

#[test]
fn a_suspension_stops_writing_until_it_ends_or_is_lifted() {
    type Given = TestFramework<Versioned<Member>>;
    let until = at() + TimeDelta::days(1);
    let suspend = |until| MemberCommand::Suspend {
        until,
        reason: reason(),
        by: "user:mod".to_owned(),
        at: at(),
    };
    let suspended = MemberEvent::MemberSuspended {
        until,
        reason: reason(),
        by: "user:mod".to_owned(),
        at: at(),
    };
    Given::with(())
        .given_no_previous_events()
        .when(Guarded::new(suspend(until)))
        .then_expect_events(vec![suspended.clone()]);
    Given::with(())
        .given_no_previous_events()
        .when(Guarded::new(suspend(at())))
        .then_expect_error(domain(CommunityError::SuspensionInPast));
    let lift = |at| MemberCommand::Lift {
        by: "user:mod".to_owned(),
        at,
    };
    Given::with(())
        .given_no_previous_events()
        .when(Guarded::new(lift(at())))
        .then_expect_error(domain(CommunityError::NotSuspended));
    Given::with(())
        .given(vec![suspended.clone()])
        .when(Guarded::new(lift(at())))
        .then_expect_events(vec![MemberEvent::SuspensionLifted {
            by: "user:mod".to_owned(),
            at: at(),
        }]);
    Given::with(())
        .given(vec![suspended.clone()])
        .when(Guarded::new(lift(until)))
        .then_expect_error(domain(CommunityError::NotSuspended));

    let member = crate::aggregate::replay::<Member>(&[suspended]);
    assert_eq!(
        member.state().may_write(at()),
        Err(CommunityError::Suspended { until })
    );
    assert_eq!(member.state().may_write(until), Ok(()));
    assert_eq!(Member::default().may_write(at()), Ok(()));
}

proptest::proptest! {
    /// Snapshots of reports and members resume to the replay.
    #[test]
    fn snapshots_resume_to_the_replay(picks in proptest::collection::vec(0..4usize, 0..8)) {
        let reports: Vec<_> = picks
            .iter()
            .map(|i| match i {
                0 | 1 => file(),
                2 => resolve(Resolution::Hide),
                _ => resolve(Resolution::Dismiss),
            })
            .collect();
        let history = crate::aggregate::history_of::<Report>(reports);
        crate::aggregate::assert_snapshots_resume::<Report>(&history);
        let members: Vec<_> = picks
            .iter()
            .map(|i| match i {
                0 | 1 => MemberCommand::Suspend {
                    until: at() + TimeDelta::hours(*i as i64 + 1),
                    reason: reason(),
                    by: "m".to_owned(),
                    at: at(),
                },
                _ => MemberCommand::Lift { by: "m".to_owned(), at: at() },
            })
            .collect();
        let history = crate::aggregate::history_of::<Member>(members);
        crate::aggregate::assert_snapshots_resume::<Member>(&history);
    }
}
