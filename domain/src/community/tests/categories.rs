//! The category aggregate.

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
