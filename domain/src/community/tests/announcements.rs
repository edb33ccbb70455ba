//! Announcements and their readings.

use super::*;
use crate::identity::{Role, Roles};

type Given = TestFramework<Versioned<Announcement>>;

fn notice(text: &str) -> Notice {
    Notice::new(title("Maintenance"), body(text), None, (None, None), false).unwrap()
}
fn drafted() -> AnnouncementEvent {
    AnnouncementEvent::AnnouncementDrafted {
        notice: notice("Sunday 02:00"),
        at: at(),
    }
}
fn published() -> AnnouncementEvent {
    AnnouncementEvent::AnnouncementPublished { at: at() }
}
fn retracted() -> AnnouncementEvent {
    AnnouncementEvent::AnnouncementRetracted { at: at() }
}
fn every_change() -> Vec<AnnouncementCommand> {
    vec![
        AnnouncementCommand::Edit {
            notice: notice("Saturday 02:00"),
            at: at(),
        },
        AnnouncementCommand::Publish { at: at() },
        AnnouncementCommand::Retract { at: at() },
    ]
}

#[test]
fn a_notice_lists_some_audience_and_ends_after_it_starts() {
    let window = (Some(at()), Some(at() + TimeDelta::hours(1)));
    let roles = Some(Roles::from([Role::Moderator]));
    assert!(Notice::new(title("t"), body("b"), roles, window, true).is_ok());
    assert_eq!(
        Notice::new(title("t"), body("b"), Some(Roles::new()), window, true),
        Err(CommunityError::AudienceEmpty)
    );
    for inverted in [
        (Some(at()), Some(at())),
        (Some(at()), Some(at() - TimeDelta::seconds(1))),
    ] {
        assert_eq!(
            Notice::new(title("t"), body("b"), None, inverted, false),
            Err(CommunityError::WindowInverted)
        );
    }
    assert!(Notice::new(title("t"), body("b"), None, (None, Some(at())), false).is_ok());
}

#[test]
fn an_announcement_is_drafted_once_and_nothing_else_happens_to_an_absent_one() {
    Given::with(())
        .given_no_previous_events()
        .when(Guarded::new(AnnouncementCommand::Draft {
            notice: notice("Sunday 02:00"),
            at: at(),
        }))
        .then_expect_events(vec![drafted()]);
    Given::with(())
        .given(vec![drafted()])
        .when(Guarded::new(AnnouncementCommand::Draft {
            notice: notice("Sunday 02:00"),
            at: at(),
        }))
        .then_expect_error(domain(CommunityError::AnnouncementExists));
    for command in every_change() {
        Given::with(())
            .given_no_previous_events()
            .when(Guarded::new(command))
            .then_expect_error(domain(CommunityError::AnnouncementNotFound));
    }
}

#[test]
fn drafts_and_published_ones_are_edited_published_once_and_retracted() {
    for history in [vec![drafted()], vec![drafted(), published()]] {
        Given::with(())
            .given(history.clone())
            .when(Guarded::new(every_change().remove(0)))
            .then_expect_events(vec![AnnouncementEvent::AnnouncementEdited {
                notice: notice("Saturday 02:00"),
                at: at(),
            }]);
        Given::with(())
            .given(history.clone())
            .when(Guarded::new(AnnouncementCommand::Edit {
                notice: notice("Sunday 02:00"),
                at: at(),
            }))
            .then_expect_error(domain(CommunityError::AnnouncementUnchanged));
        Given::with(())
            .given(history)
            .when(Guarded::new(every_change().remove(2)))
            .then_expect_events(vec![retracted()]);
    }
    Given::with(())
        .given(vec![drafted()])
        .when(Guarded::new(every_change().remove(1)))
        .then_expect_events(vec![published()]);
    Given::with(())
        .given(vec![drafted(), published()])
        .when(Guarded::new(every_change().remove(1)))
        .then_expect_error(domain(CommunityError::AlreadyPublished));
}

#[test]
fn a_retracted_announcement_changes_no_more() {
    for command in every_change() {
        Given::with(())
            .given(vec![drafted(), published(), retracted()])
            .when(Guarded::new(command))
            .then_expect_error(domain(CommunityError::AnnouncementRetracted));
    }
}

#[test]
fn reading_is_recorded_once() {
    let mark = MarkRead {
        announcement: Uuid::from_u128(5),
        reader: author(),
        at: at(),
    };
    let read = ReadingEvent::AnnouncementRead {
        announcement: Uuid::from_u128(5),
        reader: author(),
        at: at(),
    };
    TestFramework::<Versioned<Readings>>::with(())
        .given_no_previous_events()
        .when(Guarded::new(mark.clone()))
        .then_expect_events(vec![read.clone()]);
    TestFramework::<Versioned<Readings>>::with(())
        .given(vec![read])
        .when(Guarded::new(mark))
        .then_expect_events(vec![]);
    assert_ne!(
        Readings::stream_id(Uuid::from_u128(5), author()),
        Readings::stream_id(Uuid::from_u128(6), author())
    );
}

#[test]
fn public_pages_open_and_close_and_a_repeat_changes_nothing() {
    type Given = TestFramework<Versioned<PublicPages>>;
    let set = |enabled| SetPublicPages { enabled, at: at() };
    let enabled = PublicPagesEvent::PublicPagesEnabled { at: at() };
    Given::with(())
        .given_no_previous_events()
        .when(Guarded::new(set(true)))
        .then_expect_events(vec![enabled.clone()]);
    Given::with(())
        .given_no_previous_events()
        .when(Guarded::new(set(false)))
        .then_expect_events(vec![]);
    Given::with(())
        .given(vec![enabled.clone()])
        .when(Guarded::new(set(true)))
        .then_expect_events(vec![]);
    Given::with(())
        .given(vec![enabled])
        .when(Guarded::new(set(false)))
        .then_expect_events(vec![PublicPagesEvent::PublicPagesDisabled { at: at() }]);
    let acme = crate::identity::TenantId::parse("acme").unwrap();
    let globex = crate::identity::TenantId::parse("globex").unwrap();
    assert_ne!(
        PublicPages::stream_id(&acme),
        PublicPages::stream_id(&globex)
    );
}

proptest::proptest! {
    /// A snapshot after any event of any history, resumed with the rest, is the replay.
    #[test]
    fn snapshots_resume_to_the_replay(picks in proptest::collection::vec(0..4usize, 0..8)) {
        let commands: Vec<_> = picks
            .iter()
            .map(|i| match i {
                0 => AnnouncementCommand::Draft { notice: notice("Sunday"), at: at() },
                n => every_change().remove(n - 1),
            })
            .collect();
        let history = crate::aggregate::history_of::<Announcement>(commands);
        crate::aggregate::assert_snapshots_resume::<Announcement>(&history);
    }
}
