//! The stored form of an event, as the relay publishes it and projections and auditors read it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use crate::subjects::{is_subject_token, Subjects};

/// Who asked for a change, on whose behalf, and as part of what: stored with every event.
///
/// Travels as the event's metadata in the store and as headers on the bus, so a projection or an
/// auditor can follow a correlation id across aggregates.
///
/// Every field reads with a default when absent: history is append-only and cannot be repaired,
/// so a row written without some of them (by hand, or by an older version) must still flow to
/// the bus rather than stop the relay for every event behind it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EventMetadata {
    /// The HTTP request (or job run) that issued the command.
    pub request_id: String,
    /// Shared by every command and event of one business operation.
    pub correlation_id: String,
    /// The command or event that caused this one.
    pub causation_id: String,
    /// The principal that issued the command (user id, API key id, or `system:…`).
    pub actor: String,
    /// The tenant the aggregate belongs to.
    pub tenant_id: String,
    /// The command's name, e.g. `RegisterUser`.
    pub command: String,
    /// When the command was accepted (the write side's clock).
    pub recorded_at: DateTime<Utc>,
    /// The client's `Idempotency-Key`, if it sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// Hash of the request that carried the idempotency key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_hash: Option<String>,
}

impl Default for EventMetadata {
    fn default() -> Self {
        Self {
            request_id: String::new(),
            correlation_id: String::new(),
            causation_id: String::new(),
            actor: String::new(),
            tenant_id: String::new(),
            command: String::new(),
            recorded_at: DateTime::<Utc>::UNIX_EPOCH,
            idempotency_key: None,
            request_hash: None,
        }
    }
}

/// One event as stored in the event store, with its global position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedEvent {
    /// Unique id of this event (stable across re-publishing).
    pub event_id: Uuid,
    /// Position in the global feed; increases with commit order only within one transaction.
    pub global_position: i64,
    /// The writing transaction's id; the feed is ordered by (transaction_id, global_position).
    pub transaction_id: u64,
    /// The tenant the aggregate belongs to.
    pub tenant_id: String,
    /// e.g. `User`.
    pub aggregate_type: String,
    /// The aggregate instance.
    pub aggregate_id: String,
    /// 1-based position in the aggregate's own stream.
    pub sequence: i64,
    /// e.g. `UserRegistered`.
    pub event_type: String,
    /// The payload's schema version.
    pub event_version: String,
    /// The event as serialized by its aggregate.
    pub payload: serde_json::Value,
    /// Who, why and when.
    pub metadata: EventMetadata,
    /// The database's commit-side clock when the row was written.
    pub recorded_at: DateTime<Utc>,
}

impl RecordedEvent {
    /// The id the bus uses to drop re-published copies: one per stored event, forever.
    pub fn message_id(&self) -> String {
        format!(
            "{}:{}:{}",
            self.aggregate_type, self.aggregate_id, self.sequence
        )
    }
}

/// Proof of a write that a client hands back to queries: "show me at least this".
///
/// It names one stream and a version in it, which stays meaningful however projections are
/// partitioned or rebuilt: a projection has applied the write exactly when its guard for that
/// stream has reached the version. Clients treat the text form as opaque.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsistencyToken {
    /// The aggregate type of the stream written.
    pub aggregate_type: String,
    /// The stream written.
    pub aggregate_id: String,
    /// The stream's version after the write (0 when a command changed nothing on a stream that
    /// has no events: there is nothing to wait for).
    pub version: u64,
}

impl ConsistencyToken {
    /// Every token this backend issues, and nothing else it accepts, as an ECMA-262 pattern.
    pub const PATTERN: &'static str = "^[A-Za-z][A-Za-z0-9]{0,63}:[A-Za-z0-9_-]{1,128}:\
        [0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}:(0|[1-9][0-9]{0,18})$";
}

/// A consistency token that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed consistency token: expected the value returned by a command")]
pub struct MalformedToken;

impl std::fmt::Display for ConsistencyToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}",
            self.aggregate_type, self.aggregate_id, self.version
        )
    }
}

impl std::str::FromStr for ConsistencyToken {
    type Err = MalformedToken;

    /// Reads exactly the form commands return ([`ConsistencyToken::PATTERN`]):
    /// `{type}:{tenant}:{uuid}:{version}`.
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let (aggregate_type, rest) = raw.split_once(':').ok_or(MalformedToken)?;
        let (aggregate_id, version) = rest.rsplit_once(':').ok_or(MalformedToken)?;
        let (tenant, id) = aggregate_id.split_once(':').ok_or(MalformedToken)?;
        let type_ok = (1..=64).contains(&aggregate_type.len())
            && aggregate_type.starts_with(|c: char| c.is_ascii_alphabetic())
            && aggregate_type.chars().all(|c| c.is_ascii_alphanumeric());
        let id_ok = id.len() == 36
            && id.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f' | '-'))
            && uuid::Uuid::parse_str(id).is_ok();
        // Version 0: a command that changed nothing on a stream nothing was written to yet.
        let version_ok = version == "0"
            || ((1..=19).contains(&version.len())
                && !version.starts_with('0')
                && version.chars().all(|c| c.is_ascii_digit()));
        if !(type_ok && is_subject_token(tenant) && id_ok && version_ok) {
            return Err(MalformedToken);
        }
        let version = version.parse().map_err(|_| MalformedToken)?;
        Ok(Self {
            aggregate_type: aggregate_type.to_owned(),
            aggregate_id: aggregate_id.to_owned(),
            version,
        })
    }
}

/// An event for tests, of stream `aggregate_id` in tenant `acme`.
#[cfg(test)]
pub(crate) fn sample(aggregate_id: &str) -> RecordedEvent {
    RecordedEvent {
        event_id: Uuid::from_u128(1),
        global_position: 7,
        transaction_id: 9,
        tenant_id: "acme".to_owned(),
        aggregate_type: "User".to_owned(),
        aggregate_id: aggregate_id.to_owned(),
        sequence: 3,
        event_type: "UserRegistered".to_owned(),
        event_version: "1".to_owned(),
        payload: serde_json::json!({}),
        metadata: EventMetadata::default(),
        recorded_at: DateTime::<Utc>::UNIX_EPOCH,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_with_missing_fields_still_reads() {
        let metadata: EventMetadata = serde_json::from_str(r#"{"tenant_id":"acme"}"#).unwrap();
        assert_eq!(metadata.tenant_id, "acme");
        assert_eq!(metadata.request_id, "");
        assert_eq!(metadata.recorded_at, DateTime::<Utc>::UNIX_EPOCH);
    }

    #[test]
    fn token_round_trips() {
        let token = ConsistencyToken {
            aggregate_type: "User".into(),
            aggregate_id: "acme:0192f0c4-0000-7000-8000-000000000000".into(),
            version: 3,
        };
        assert_eq!(token.to_string().parse(), Ok(token));
    }

    #[test]
    fn malformed_tokens_are_refused() {
        for raw in [
            "", "User", "User:x", "User:x:y", "User:x:0", ":x:1", "User::1",
        ] {
            assert_eq!(
                raw.parse::<ConsistencyToken>(),
                Err(MalformedToken),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn one_message_id_per_stored_event() {
        assert_eq!(
            sample("acme:0192f0c4-0000").message_id(),
            "User:acme:0192f0c4-0000:3"
        );
    }

    #[test]
    fn a_token_needs_a_type_an_id_and_a_version() {
        let id = "acme:0192f0c4-0000-7000-8000-00000000000a";
        assert_eq!(
            format!("User:{id}:1").parse(),
            Ok(ConsistencyToken {
                aggregate_type: "User".to_owned(),
                aggregate_id: id.to_owned(),
                version: 1,
            })
        );
        // Version 0: a no-op command on a stream without events.
        assert_eq!(
            format!("User:{id}:0")
                .parse::<ConsistencyToken>()
                .map(|t| t.version),
            Ok(0)
        );
        for raw in [
            "User:x:1".to_owned(),
            format!("User:{id}:-1"),
            format!("User:{id}:+1"),
            format!("User:{id}:01"),
            format!("User:{id}:00"),
            format!("User:{id}:99999999999999999999"),
            format!("User:{}:1", id.to_uppercase()),
            format!("1User:{id}:1"),
            format!("User:{}:1", id.replace("acme", "a.b")),
            "User:acme:0192f0c40000700080000000000000aa:1".to_owned(),
        ] {
            assert_eq!(
                raw.parse::<ConsistencyToken>(),
                Err(MalformedToken),
                "{raw}"
            );
        }
    }
}
