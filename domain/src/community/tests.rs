//! Given/when/then for every community command in every state, and snapshots resume to the
//! replay.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use uuid::Uuid;

use super::*;
use crate::aggregate::{Guarded, Rejection, Versioned};

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap()
}
fn title(raw: &str) -> Title {
    Title::parse(raw).unwrap()
}
fn body(raw: &str) -> Body {
    Body::parse(raw).unwrap()
}
fn category_id() -> Uuid {
    Uuid::from_u128(1)
}
fn author() -> Uuid {
    Uuid::from_u128(2)
}
fn domain(error: CommunityError) -> Rejection<CommunityError> {
    Rejection::Domain(error)
}

mod categories {
    use super::*;

    type Given = TestFramework<Versioned<Category>>;

    fn created() -> CategoryEvent {
        CategoryEvent::CategoryCreated {
            name: title("Help"),
            description: None,
            at: at(),
        }
    }
    fn archived() -> Vec<CategoryEvent> {
        vec![created(), CategoryEvent::CategoryArchived { at: at() }]
    }
    fn every_command() -> Vec<CategoryCommand> {
        vec![
            CategoryCommand::Create {
                name: title("Help"),
                description: None,
                at: at(),
            },
            CategoryCommand::Rename {
                name: title("Questions"),
                at: at(),
            },
            CategoryCommand::Describe {
                description: Some(body("Ask here.")),
                at: at(),
            },
            CategoryCommand::Archive { at: at() },
        ]
    }

    #[test]
    fn a_category_is_created_once() {
        Given::with(())
            .given_no_previous_events()
            .when(Guarded::new(every_command().remove(0)))
            .then_expect_events(vec![created()]);
        Given::with(())
            .given(vec![created()])
            .when(Guarded::new(every_command().remove(0)))
            .then_expect_error(domain(CommunityError::CategoryExists));
    }

    #[test]
    fn nothing_but_creation_happens_to_an_absent_category() {
        for command in every_command().into_iter().skip(1) {
            Given::with(())
                .given_no_previous_events()
                .when(Guarded::new(command))
                .then_expect_error(domain(CommunityError::CategoryNotFound));
        }
    }

    #[test]
    fn a_category_is_renamed_described_and_archived() {
        Given::with(())
            .given(vec![created()])
            .when(Guarded::new(every_command().remove(1)))
            .then_expect_events(vec![CategoryEvent::CategoryRenamed {
                name: title("Questions"),
                at: at(),
            }]);
        Given::with(())
            .given(vec![created()])
            .when(Guarded::new(every_command().remove(2)))
            .then_expect_events(vec![CategoryEvent::CategoryDescribed {
                description: Some(body("Ask here.")),
                at: at(),
            }]);
        Given::with(())
            .given(vec![created()])
            .when(Guarded::new(every_command().remove(3)))
            .then_expect_events(vec![CategoryEvent::CategoryArchived { at: at() }]);
    }

    #[test]
    fn a_change_that_changes_nothing_is_refused() {
        for command in [
            CategoryCommand::Rename {
                name: title("Help"),
                at: at(),
            },
            CategoryCommand::Describe {
                description: None,
                at: at(),
            },
        ] {
            Given::with(())
                .given(vec![created()])
                .when(Guarded::new(command))
                .then_expect_error(domain(CommunityError::CategoryUnchanged));
        }
    }

    #[test]
    fn an_archived_category_takes_no_change_and_no_post() {
        for command in every_command().into_iter().skip(1) {
            Given::with(())
                .given(archived())
                .when(Guarded::new(command))
                .then_expect_error(domain(CommunityError::CategoryArchived));
        }
        let state = crate::aggregate::replay::<Category>(&archived());
        assert_eq!(
            state.state().takes_posts(),
            Err(CommunityError::CategoryArchived)
        );
        assert_eq!(
            Category::default().takes_posts(),
            Err(CommunityError::CategoryNotFound)
        );
        let open = crate::aggregate::replay::<Category>(&[created()]);
        assert_eq!(open.state().takes_posts(), Ok(()));
    }

    proptest::proptest! {
        /// A snapshot after any event of any history, resumed with the rest, is the replay.
        #[test]
        fn snapshots_resume_to_the_replay(
            picks in proptest::collection::vec(0..4usize, 0..8)
        ) {
            let commands: Vec<_> = picks.into_iter().map(|i| every_command().remove(i)).collect();
            let history = crate::aggregate::history_of::<Category>(commands);
            crate::aggregate::assert_snapshots_resume::<Category>(&history);
        }
    }
}

mod posts {
    use super::*;

    type Given = TestFramework<Versioned<Post>>;

    const WINDOW: TimeDelta = TimeDelta::minutes(15);

    fn written() -> PostEvent {
        PostEvent::PostWritten {
            category: category_id(),
            author: author(),
            title: title("Hello"),
            body: body("First!"),
            at: at(),
        }
    }
    fn write() -> PostCommand {
        PostCommand::Write {
            category: category_id(),
            author: author(),
            title: title("Hello"),
            body: body("First!"),
            at: at(),
        }
    }
    fn edit(minutes: i64) -> PostCommand {
        PostCommand::Edit {
            title: title("Hello again"),
            body: body("Second"),
            window: WINDOW,
            at: at() + TimeDelta::minutes(minutes),
        }
    }
    fn remove() -> PostCommand {
        PostCommand::Remove {
            by: "user:mod".to_owned(),
            at: at(),
        }
    }
    fn lock(locked: bool) -> PostCommand {
        PostCommand::SetLocked { locked, at: at() }
    }
    fn pin(pinned: bool) -> PostCommand {
        PostCommand::SetPinned { pinned, at: at() }
    }
    fn every_change() -> Vec<PostCommand> {
        vec![
            edit(1),
            remove(),
            lock(true),
            lock(false),
            pin(true),
            pin(false),
        ]
    }

    #[test]
    fn a_post_is_written_once() {
        Given::with(())
            .given_no_previous_events()
            .when(Guarded::new(write()))
            .then_expect_events(vec![written()]);
        Given::with(())
            .given(vec![written()])
            .when(Guarded::new(write()))
            .then_expect_error(domain(CommunityError::PostExists));
    }

    #[test]
    fn nothing_but_writing_happens_to_an_unwritten_post() {
        for command in every_change() {
            Given::with(())
                .given_no_previous_events()
                .when(Guarded::new(command))
                .then_expect_error(domain(CommunityError::PostNotFound));
        }
    }

    #[test]
    fn its_author_edits_within_the_window_and_not_after() {
        Given::with(())
            .given(vec![written()])
            .when(Guarded::new(edit(15)))
            .then_expect_events(vec![PostEvent::PostEdited {
                title: title("Hello again"),
                body: body("Second"),
                at: at() + WINDOW,
            }]);
        Given::with(())
            .given(vec![written()])
            .when(Guarded::new(edit(16)))
            .then_expect_error(domain(CommunityError::EditWindowClosed {
                window_minutes: 15,
            }));
        Given::with(())
            .given(vec![written()])
            .when(Guarded::new(PostCommand::Edit {
                title: title("Hello"),
                body: body("First!"),
                window: WINDOW,
                at: at(),
            }))
            .then_expect_error(domain(CommunityError::PostUnchanged));
    }

    #[test]
    fn locks_and_pins_toggle_and_refuse_to_repeat() {
        let cases = [
            (vec![], lock(true), Ok(PostEvent::PostLocked { at: at() })),
            (
                vec![],
                lock(false),
                Err(CommunityError::LockUnchanged { locked: false }),
            ),
            (
                vec![PostEvent::PostLocked { at: at() }],
                lock(true),
                Err(CommunityError::LockUnchanged { locked: true }),
            ),
            (
                vec![PostEvent::PostLocked { at: at() }],
                lock(false),
                Ok(PostEvent::PostUnlocked { at: at() }),
            ),
            (vec![], pin(true), Ok(PostEvent::PostPinned { at: at() })),
            (
                vec![],
                pin(false),
                Err(CommunityError::PinUnchanged { pinned: false }),
            ),
            (
                vec![PostEvent::PostPinned { at: at() }],
                pin(true),
                Err(CommunityError::PinUnchanged { pinned: true }),
            ),
            (
                vec![PostEvent::PostPinned { at: at() }],
                pin(false),
                Ok(PostEvent::PostUnpinned { at: at() }),
            ),
        ];
        for (before, command, outcome) in cases {
            let given = Given::with(())
                .given([vec![written()], before].concat())
                .when(Guarded::new(command));
            match outcome {
                Ok(event) => given.then_expect_events(vec![event]),
                Err(error) => given.then_expect_error(domain(error)),
            }
        }
    }

    #[test]
    fn a_removed_post_changes_no_more() {
        Given::with(())
            .given(vec![written()])
            .when(Guarded::new(remove()))
            .then_expect_events(vec![PostEvent::PostRemoved {
                by: "user:mod".to_owned(),
                at: at(),
            }]);
        let removed = vec![
            written(),
            PostEvent::PostRemoved {
                by: "user:mod".to_owned(),
                at: at(),
            },
        ];
        for command in every_change() {
            Given::with(())
                .given(removed.clone())
                .when(Guarded::new(command))
                .then_expect_error(domain(CommunityError::PostRemoved));
        }
        Given::with(())
            .given(removed)
            .when(Guarded::new(write()))
            .then_expect_error(domain(CommunityError::PostExists));
    }

    proptest::proptest! {
        /// A snapshot after any event of any history, resumed with the rest, is the replay.
        #[test]
        fn snapshots_resume_to_the_replay(
            picks in proptest::collection::vec(0..7usize, 0..10)
        ) {
            let commands: Vec<_> = picks
                .into_iter()
                .map(|i| if i == 0 { write() } else { every_change().remove(i - 1) })
                .collect();
            let history = crate::aggregate::history_of::<Post>(commands);
            crate::aggregate::assert_snapshots_resume::<Post>(&history);
        }
    }
}
