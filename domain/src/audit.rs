//! Auditing: reading the history itself. A tenant's auditors and admins page its events in feed
//! order, read one stream, follow a correlation id across aggregates, export ranges, and see an
//! aggregate as it was at a version or a time: replayed through the aggregate's own `evolve`,
//! never taken from a read model, so what they see is what the rules made of the history.

use serde_json::Value;

use crate::aggregate::{replay, Decider};
use crate::api_keys::ApiKey;
use crate::community::{
    Announcement, Category, Comment, Member, Post, PublicPages, Reactions, Readings, Report,
};
use crate::documents::Document;
use crate::identity::Role;
use crate::jobs::TranslationJob;
use crate::policy::{context_actions, Rule};
use crate::prices::{Asset, Portfolio, PriceImport, PriceSeries, RefreshSchedule};
use crate::tenants::Tenant;
use crate::users::User;

context_actions! {
    /// The auditing context's actions: reading, never changing.
    pub enum AuditAction in "audit" {
        /// Page the tenant's events, read one stream, follow a correlation id.
        ReadHistory = "read_history" => Rule::roles(&[Role::Admin, Role::Auditor]),
        /// See an aggregate as it was at a version or a time (a replay of its events).
        ReadStateAsOf = "read_state_as_of" => Rule::roles(&[Role::Admin, Role::Auditor]),
        /// Export a range of the tenant's history.
        ExportHistory = "export_history" => Rule::roles(&[Role::Admin, Role::Auditor]),
    }
}

/// Why stored events could not be replayed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("event {sequence} of the stream does not decode: {reason}")]
pub struct ReplayError {
    /// The 1-based sequence of the event that does not decode.
    pub sequence: usize,
    /// The decoder's message.
    pub reason: String,
}

/// Replays one aggregate type's stored payloads into its state, as JSON.
type Replayer = fn(&[Value]) -> Result<Value, ReplayError>;

/// Every aggregate type, with its replay. An aggregate missing here cannot be seen as of a
/// version; the test below keeps the list complete against the contexts' own `TYPE`s.
const AGGREGATES: &[(&str, Replayer)] = &[
    (User::TYPE, replay_as::<User>),
    (ApiKey::TYPE, replay_as::<ApiKey>),
    (Document::TYPE, replay_as::<Document>),
    (TranslationJob::TYPE, replay_as::<TranslationJob>),
    (Category::TYPE, replay_as::<Category>),
    (Post::TYPE, replay_as::<Post>),
    (Comment::TYPE, replay_as::<Comment>),
    (Reactions::TYPE, replay_as::<Reactions>),
    (Report::TYPE, replay_as::<Report>),
    (Member::TYPE, replay_as::<Member>),
    (Announcement::TYPE, replay_as::<Announcement>),
    (Readings::TYPE, replay_as::<Readings>),
    (PublicPages::TYPE, replay_as::<PublicPages>),
    (Tenant::TYPE, replay_as::<Tenant>),
    (Asset::TYPE, replay_as::<Asset>),
    (PriceSeries::TYPE, replay_as::<PriceSeries>),
    (PriceImport::TYPE, replay_as::<PriceImport>),
    (RefreshSchedule::TYPE, replay_as::<RefreshSchedule>),
    (Portfolio::TYPE, replay_as::<Portfolio>),
];

/// The aggregate types whose state can be replayed, in a stable order.
pub fn aggregate_types() -> impl Iterator<Item = &'static str> {
    AGGREGATES.iter().map(|(name, _)| *name)
}

/// The state of an aggregate of type `aggregate_type` after `payloads` (its stored events'
/// payloads, from sequence 1, in order), as JSON; `None` when no aggregate has that type.
pub fn replay_stored(
    aggregate_type: &str,
    payloads: &[Value],
) -> Option<Result<Value, ReplayError>> {
    AGGREGATES
        .iter()
        .find(|(name, _)| *name == aggregate_type)
        .map(|(_, replayer)| replayer(payloads))
}

fn replay_as<D: Decider>(payloads: &[Value]) -> Result<Value, ReplayError> {
    let events = payloads
        .iter()
        .enumerate()
        .map(|(index, payload)| {
            serde_json::from_value::<D::Event>(payload.clone()).map_err(|error| ReplayError {
                sequence: index + 1,
                reason: error.to_string(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let state = replay::<D>(&events);
    serde_json::to_value(state.state()).map_err(|error| ReplayError {
        sequence: payloads.len(),
        reason: error.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::users::UserEvent;

    /// A stored payload, as the users context's snapshot holds it.
    fn registered() -> Value {
        json!({ "UserRegistered": {
            "at": "2025-01-02T03:04:05Z", "display_name": "Ada", "email": "ada@example.org",
            "roles": ["auditor"],
        }})
    }

    #[test]
    fn every_aggregate_type_is_listed_once() {
        let mut types: Vec<&str> = aggregate_types().collect();
        assert_eq!(
            types,
            [
                "User",
                "ApiKey",
                "Document",
                "TranslationJob",
                "Category",
                "Post",
                "Comment",
                "Reactions",
                "Report",
                "Member",
                "Announcement",
                "AnnouncementReading",
                "PublicPages",
                "Tenant",
                "Asset",
                "PriceSeries",
                "PriceImport",
                "RefreshSchedule",
                "Portfolio"
            ]
        );
        types.dedup();
        assert_eq!(types.len(), AGGREGATES.len());
    }

    #[test]
    fn a_replay_is_the_aggregates_own_state_after_those_events() {
        let payloads = [registered()];
        let state = replay_stored("User", &payloads).unwrap().unwrap();
        let events: Vec<UserEvent> = payloads
            .iter()
            .map(|payload| serde_json::from_value(payload.clone()).unwrap())
            .collect();
        let expected = serde_json::to_value(replay::<User>(&events).state()).unwrap();
        assert_eq!(state, expected);
        assert_eq!(state["Registered"]["display_name"], "Ada", "{state}");
        assert_eq!(
            replay_stored("User", &[]).unwrap().unwrap(),
            serde_json::to_value(User::default()).unwrap()
        );
    }

    #[test]
    fn an_unknown_type_is_none_and_an_undecodable_event_names_its_sequence() {
        assert!(replay_stored("Spaceship", &[registered()]).is_none());
        let error = replay_stored("User", &[registered(), json!({ "nope": 1 })])
            .unwrap()
            .unwrap_err();
        assert_eq!(error.sequence, 2);
        assert!(!error.reason.is_empty());
    }
}
