//! The comment aggregate, and what a post and a parent comment accept.

use super::*;

type Given = TestFramework<Versioned<Comment>>;

const WINDOW: TimeDelta = TimeDelta::minutes(15);

fn post_id() -> Uuid {
    Uuid::from_u128(10)
}
fn written() -> CommentEvent {
    CommentEvent::CommentWritten {
        post: post_id(),
        category: category_id(),
        parent: None,
        author: author(),
        body: body("Agreed."),
        at: at(),
    }
}
fn write() -> CommentCommand {
    CommentCommand::Write {
        post: post_id(),
        category: category_id(),
        parent: None,
        author: author(),
        body: body("Agreed."),
        at: at(),
    }
}
fn edit(minutes: i64, text: &str) -> CommentCommand {
    CommentCommand::Edit {
        body: body(text),
        window: WINDOW,
        at: at() + TimeDelta::minutes(minutes),
    }
}
fn remove() -> CommentCommand {
    CommentCommand::Remove {
        by: "user:mod".to_owned(),
        at: at(),
    }
}
fn removed() -> Vec<CommentEvent> {
    vec![
        written(),
        CommentEvent::CommentRemoved {
            by: "user:mod".to_owned(),
            at: at(),
        },
    ]
}

#[test]
fn a_comment_is_written_once() {
    Given::with(())
        .given_no_previous_events()
        .when(Guarded::new(write()))
        .then_expect_events(vec![written()]);
    for history in [vec![written()], removed()] {
        Given::with(())
            .given(history)
            .when(Guarded::new(write()))
            .then_expect_error(domain(CommunityError::CommentExists));
    }
}

#[test]
fn nothing_but_writing_happens_to_an_unwritten_comment() {
    for command in [edit(1, "x"), remove()] {
        Given::with(())
            .given_no_previous_events()
            .when(Guarded::new(command))
            .then_expect_error(domain(CommunityError::CommentNotFound));
    }
}

#[test]
fn its_author_edits_within_the_window_and_not_after() {
    Given::with(())
        .given(vec![written()])
        .when(Guarded::new(edit(15, "Agreed, mostly.")))
        .then_expect_events(vec![CommentEvent::CommentEdited {
            body: body("Agreed, mostly."),
            at: at() + WINDOW,
        }]);
    Given::with(())
        .given(vec![written()])
        .when(Guarded::new(edit(16, "Agreed, mostly.")))
        .then_expect_error(domain(CommunityError::EditWindowClosed {
            window_minutes: 15,
        }));
    Given::with(())
        .given(vec![written()])
        .when(Guarded::new(edit(1, "Agreed.")))
        .then_expect_error(domain(CommunityError::CommentUnchanged));
}

#[test]
fn a_removed_comment_changes_no_more() {
    Given::with(())
        .given(vec![written()])
        .when(Guarded::new(remove()))
        .then_expect_events(removed()[1..].to_vec());
    for command in [edit(1, "x"), remove()] {
        Given::with(())
            .given(removed())
            .when(Guarded::new(command))
            .then_expect_error(domain(CommunityError::CommentRemoved));
    }
}

#[test]
fn replies_go_one_level_deep_on_the_same_post() {
    let Comment::Written(top) = crate::aggregate::replay::<Comment>(&[written()])
        .state()
        .clone()
    else {
        panic!("written")
    };
    assert_eq!(top.takes_replies_on(post_id()), Ok(()));
    assert_eq!(
        top.takes_replies_on(Uuid::from_u128(11)),
        Err(CommunityError::ParentNotFound)
    );
    let reply = WrittenComment {
        parent: Some(Uuid::from_u128(12)),
        ..top.clone()
    };
    assert_eq!(
        reply.takes_replies_on(post_id()),
        Err(CommunityError::ReplyToReply)
    );
    let gone = WrittenComment {
        removed: true,
        ..top
    };
    assert_eq!(
        gone.takes_replies_on(post_id()),
        Err(CommunityError::CommentRemoved)
    );
}

#[test]
fn a_post_takes_comments_unless_locked_or_removed_and_reactions_unless_removed() {
    let post = WrittenPost {
        category: category_id(),
        author: author(),
        title: title("Hello"),
        body: body("First!"),
        written_at: at(),
        locked: false,
        pinned: false,
        removed: false,
        hidden: false,
    };
    assert_eq!(post.takes(true), Ok(()));
    let locked = WrittenPost {
        locked: true,
        ..post.clone()
    };
    assert_eq!(locked.takes(true), Err(CommunityError::PostLocked));
    assert_eq!(locked.takes(false), Ok(()));
    let removed = WrittenPost {
        removed: true,
        ..post
    };
    assert_eq!(removed.takes(false), Err(CommunityError::PostRemoved));
}

proptest::proptest! {
    /// A snapshot after any event of any history, resumed with the rest, is the replay.
    #[test]
    fn snapshots_resume_to_the_replay(picks in proptest::collection::vec(0..4usize, 0..10)) {
        let commands: Vec<_> = picks
            .into_iter()
            .map(|i| match i {
                0 => write(),
                1 => edit(1, "one"),
                2 => edit(2, "two"),
                _ => remove(),
            })
            .collect();
        let history = crate::aggregate::history_of::<Comment>(commands);
        crate::aggregate::assert_snapshots_resume::<Comment>(&history);
    }
}
