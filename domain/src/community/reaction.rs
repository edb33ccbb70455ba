//! A member's reactions to one post or comment: at most one of each kind, added and withdrawn
//! idempotently.
//!
//! Each (target, member) pair is one stream, whose id is derived from the pair
//! ([`Reactions::stream_id`]): the store's one-writer-per-version rule then decides a race of
//! two identical reactions, and no count can ever hold one twice.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::CommunityError;
use crate::aggregate::Decider;

/// The reactions there are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReactionKind {
    /// 👍
    Like,
    /// 🙏
    Thanks,
    /// 💡
    Insightful,
    /// 😄
    Funny,
    /// 😕
    Confused,
}

impl ReactionKind {
    /// Every kind, in the order lists show them.
    pub const ALL: [Self; 5] = [
        Self::Like,
        Self::Thanks,
        Self::Insightful,
        Self::Funny,
        Self::Confused,
    ];

    /// The kind as stored in read models and shown by the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Like => "like",
            Self::Thanks => "thanks",
            Self::Insightful => "insightful",
            Self::Funny => "funny",
            Self::Confused => "confused",
        }
    }
}

/// What a reaction is to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// A post.
    Post(Uuid),
    /// A comment.
    Comment(Uuid),
}

impl Target {
    /// The id of the post or comment.
    pub fn id(self) -> Uuid {
        match self {
            Self::Post(id) | Self::Comment(id) => id,
        }
    }

    /// `post` or `comment`, as stored in read models.
    pub fn kind(self) -> &'static str {
        match self {
            Self::Post(_) => "post",
            Self::Comment(_) => "comment",
        }
    }
}

/// The reactions aggregate's state: one member's reactions to one target.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Reactions {
    /// The kinds the member has reacted with now.
    pub kinds: BTreeSet<ReactionKind>,
}

/// The namespace of [`Reactions::stream_id`]'s name-based ids. Never change it: it names
/// every stored reaction stream.
const REACTIONS_NAMESPACE: Uuid = Uuid::from_u128(0x5f1e_8d2a_93c4_4b7e_a0d1_6c2f_8e9b_3a47);

impl Reactions {
    /// The stream of `member`'s reactions to `target`.
    pub fn stream_id(target: Target, member: Uuid) -> Uuid {
        let name = format!("{}:{}:{member}", target.kind(), target.id());
        Uuid::new_v5(&REACTIONS_NAMESPACE, name.as_bytes())
    }
}

/// Add or withdraw a reaction. Adding one already there, or withdrawing one that is not,
/// changes nothing and is not an error.
#[derive(Debug, Clone, PartialEq)]
pub struct ReactionCommand {
    /// What it is to.
    pub target: Target,
    /// Whose.
    pub member: Uuid,
    /// Which.
    pub kind: ReactionKind,
    /// Added (`true`) or withdrawn.
    pub present: bool,
    /// When.
    pub at: DateTime<Utc>,
}

impl ReactionCommand {
    /// The command's name as recorded in event metadata.
    pub fn name(&self) -> &'static str {
        if self.present {
            "AddReaction"
        } else {
            "WithdrawReaction"
        }
    }
}

/// What happened to a member's reactions. Stored forever: add variants, never change existing
/// ones without an upcaster and a new `event_version`. The serde tag is the `event_type()`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ReactionEvent {
    /// A reaction was added.
    ReactionAdded {
        /// What it is to.
        target: Target,
        /// Whose.
        member: Uuid,
        /// Which.
        kind: ReactionKind,
        /// When.
        at: DateTime<Utc>,
    },
    /// A reaction was withdrawn.
    ReactionWithdrawn {
        /// What it was to.
        target: Target,
        /// Whose.
        member: Uuid,
        /// Which.
        kind: ReactionKind,
        /// When.
        at: DateTime<Utc>,
    },
}

impl ReactionEvent {
    /// When the change was accepted.
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            Self::ReactionAdded { at, .. } | Self::ReactionWithdrawn { at, .. } => *at,
        }
    }
}

impl DomainEvent for ReactionEvent {
    /// The stored event type. These strings are part of the stored data: never change one.
    fn event_type(&self) -> String {
        match self {
            Self::ReactionAdded { .. } => "ReactionAdded",
            Self::ReactionWithdrawn { .. } => "ReactionWithdrawn",
        }
        .to_owned()
    }

    /// Changes only together with an upcaster for the previous version.
    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

impl Decider for Reactions {
    const TYPE: &'static str = "Reactions";
    const SNAPSHOT_SCHEMA: u32 = 1;
    type Command = ReactionCommand;
    type Event = ReactionEvent;
    type Error = CommunityError;

    fn decide(&self, command: ReactionCommand) -> Result<Vec<ReactionEvent>, CommunityError> {
        let ReactionCommand {
            target,
            member,
            kind,
            present,
            at,
        } = command;
        let event = match (self.kinds.contains(&kind), present) {
            (false, true) => ReactionEvent::ReactionAdded {
                target,
                member,
                kind,
                at,
            },
            (true, false) => ReactionEvent::ReactionWithdrawn {
                target,
                member,
                kind,
                at,
            },
            // Already as asked: nothing to record.
            _ => return Ok(Vec::new()),
        };
        Ok(vec![event])
    }

    fn evolve(&mut self, event: &ReactionEvent) {
        match event {
            ReactionEvent::ReactionAdded { kind, .. } => {
                self.kinds.insert(*kind);
            }
            ReactionEvent::ReactionWithdrawn { kind, .. } => {
                self.kinds.remove(kind);
            }
        }
    }
}
