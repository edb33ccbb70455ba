//! The post aggregate.

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
