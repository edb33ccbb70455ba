//! The reactions aggregate: one of each kind, idempotent both ways.

use super::*;

type Given = TestFramework<Versioned<Reactions>>;

fn target() -> Target {
    Target::Post(Uuid::from_u128(10))
}
fn react(kind: ReactionKind, present: bool) -> ReactionCommand {
    ReactionCommand {
        target: target(),
        member: author(),
        kind,
        present,
        at: at(),
    }
}
fn added(kind: ReactionKind) -> ReactionEvent {
    ReactionEvent::ReactionAdded {
        target: target(),
        member: author(),
        kind,
        at: at(),
    }
}

#[test]
fn a_reaction_is_added_once_and_withdrawn_once() {
    Given::with(())
        .given_no_previous_events()
        .when(Guarded::new(react(ReactionKind::Like, true)))
        .then_expect_events(vec![added(ReactionKind::Like)]);
    Given::with(())
        .given(vec![added(ReactionKind::Like)])
        .when(Guarded::new(react(ReactionKind::Like, true)))
        .then_expect_events(vec![]);
    Given::with(())
        .given(vec![added(ReactionKind::Like)])
        .when(Guarded::new(react(ReactionKind::Thanks, true)))
        .then_expect_events(vec![added(ReactionKind::Thanks)]);
    Given::with(())
        .given(vec![added(ReactionKind::Like)])
        .when(Guarded::new(react(ReactionKind::Like, false)))
        .then_expect_events(vec![ReactionEvent::ReactionWithdrawn {
            target: target(),
            member: author(),
            kind: ReactionKind::Like,
            at: at(),
        }]);
    Given::with(())
        .given_no_previous_events()
        .when(Guarded::new(react(ReactionKind::Like, false)))
        .then_expect_events(vec![]);
}

#[test]
fn each_member_and_target_has_its_own_stream() {
    let post = Target::Post(Uuid::from_u128(10));
    let comment = Target::Comment(Uuid::from_u128(10));
    let ada = Uuid::from_u128(1);
    let bob = Uuid::from_u128(2);
    let ids = [
        Reactions::stream_id(post, ada),
        Reactions::stream_id(post, bob),
        Reactions::stream_id(comment, ada),
    ];
    assert_eq!(Reactions::stream_id(post, ada), ids[0], "stable");
    assert!(ids[0] != ids[1] && ids[0] != ids[2] && ids[1] != ids[2]);
}

proptest::proptest! {
    /// Any sequence of adds and withdrawals leaves each kind at most once, present exactly
    /// when its last command added it; and snapshots resume to the replay.
    #[test]
    fn a_kind_is_counted_once_whatever_the_sequence(
        picks in proptest::collection::vec((0..5usize, proptest::bool::ANY), 0..20)
    ) {
        let commands: Vec<_> = picks
            .iter()
            .map(|(kind, present)| react(ReactionKind::ALL[*kind], *present))
            .collect();
        let history = crate::aggregate::history_of::<Reactions>(commands);
        crate::aggregate::assert_snapshots_resume::<Reactions>(&history);
        let state = crate::aggregate::replay::<Reactions>(&history);
        for (index, kind) in ReactionKind::ALL.iter().enumerate() {
            let last = picks.iter().rev().find(|(k, _)| *k == index).is_some_and(|(_, p)| *p);
            proptest::prop_assert_eq!(state.state().kinds.contains(kind), last);
        }
        let adds = history.iter().filter(|e| matches!(e, ReactionEvent::ReactionAdded { .. })).count();
        let withdrawals = history.len() - adds;
        proptest::prop_assert_eq!(adds - withdrawals, state.state().kinds.len());
    }
}
