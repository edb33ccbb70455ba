//! The stored form of every event: what postgres-es writes to `events.payload` and
//! `events.event_type`, held as insta snapshots.
//!
//! History is append-only and outlives the code: a renamed Rust variant or field silently
//! changes what new rows look like, and old rows stop reading. So for every aggregate this test
//! checks, over one sample of each variant:
//! - every variant has a sample: the variant names are read from serde's own derive (a
//!   deserializer that records the names it is offered), not from a hand-kept list, so a new
//!   variant without a sample fails here;
//! - the payload's JSON tag equals `event_type()`;
//! - the payload reads back to the same event, and payloads written under a variant's former tag
//!   (before it was renamed to its event type) still read;
//! - the stored JSON equals the snapshot in `tests/snapshots/`.
//!
//! A mismatch fails the test. Run with `CI=true` (or `INSTA_UPDATE=no`) no file is written; on a
//! developer machine insta writes a `.snap.new` beside the snapshot for `cargo insta review`.
//! Accept a changed snapshot only together with an upcaster and a new `event_version`.

use std::collections::BTreeSet;
use std::fmt::Debug;

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use domain::api_keys::{ApiKeyEvent, KeyName, SecretHash};
use domain::documents::{ContentType, DocumentEvent, StoredDocument};
use domain::identity::{Role, Roles};
use domain::jobs::{
    DocumentRef, ErrorCode, Failure, JobEvent, JobKind, JobMetrics, JobOptions, LanguageCode,
    Priority, Progress, QueueReason, RetryPolicy, Text,
};
use domain::users::{DisplayName, Email, UserEvent};

/// A fixed instant, `offset` seconds after 2025-01-02T03:04:05Z.
fn at(offset: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_735_787_045 + offset, 0).expect("a valid timestamp")
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(0x0192_f0c4_0000_7000_8000_0000_0000_0000 + n)
}

fn roles() -> Roles {
    Roles::from([Role::Admin, Role::Auditor])
}

fn document_ref(n: u128) -> DocumentRef {
    DocumentRef {
        document_id: id(n),
        sha256: "ab".repeat(32),
        size_bytes: 1_234,
        content_type: "text/plain".to_owned(),
    }
}

fn user_events() -> Vec<UserEvent> {
    vec![
        UserEvent::UserRegistered {
            email: Email::parse("ada@example.org").expect("valid"),
            display_name: DisplayName::parse("Ada").expect("valid"),
            roles: roles(),
            at: at(0),
        },
        UserEvent::DisplayNameChanged {
            display_name: DisplayName::parse("Ada L.").expect("valid"),
            at: at(1),
        },
        UserEvent::RolesChanged {
            roles: Roles::from([Role::User]),
            at: at(2),
        },
        UserEvent::UserDeactivated { at: at(3) },
        UserEvent::UserReactivated { at: at(4) },
    ]
}

fn api_key_events() -> Vec<ApiKeyEvent> {
    vec![
        ApiKeyEvent::ApiKeyIssued {
            name: KeyName::parse("nightly import").expect("valid"),
            roles: roles(),
            expires_at: Some(at(86_400)),
            secret_hash: SecretHash::parse(&"0f".repeat(32)).expect("valid"),
            at: at(0),
        },
        ApiKeyEvent::ApiKeyRevoked { at: at(1) },
    ]
}

fn job_events() -> Vec<JobEvent> {
    let lease_id = id(10);
    vec![
        JobEvent::JobSubmitted {
            owner: id(1),
            kind: JobKind::Translation,
            source_language: LanguageCode::parse("en").expect("valid"),
            target_language: LanguageCode::parse("pt-BR").expect("valid"),
            source: document_ref(2),
            priority: Priority::NORMAL,
            options: JobOptions::new([("tone".to_owned(), "formal".to_owned())].into())
                .expect("valid"),
            parent_job_id: Some(id(3)),
            retry_policy: RetryPolicy::new(3, 1_000, 60_000).expect("valid"),
            at: at(0),
        },
        JobEvent::JobQueued {
            reason: QueueReason::Submitted,
            at: at(1),
        },
        JobEvent::JobClaimed {
            lease_id,
            worker: "key:0192f0c4-0000-7000-8000-000000000004".to_owned(),
            attempt: 1,
            lease_expires_at: at(32),
            at: at(2),
        },
        JobEvent::LeaseExtended {
            lease_id,
            lease_expires_at: at(63),
            at: at(3),
        },
        JobEvent::ProgressReported {
            lease_id,
            progress: Progress { done: 5, total: 10 },
            at: at(4),
        },
        JobEvent::JobSucceeded {
            lease_id,
            result: document_ref(5),
            metrics: JobMetrics {
                characters: 4_321,
                segments: 12,
            },
            at: at(5),
        },
        JobEvent::JobFailed {
            lease_id,
            attempt: 1,
            failure: Failure {
                code: ErrorCode::parse("engine_timeout").expect("valid"),
                message: Text::parse("the engine did not answer").expect("valid"),
                retryable: true,
            },
            at: at(6),
        },
        JobEvent::LeaseExpired {
            lease_id,
            attempt: 2,
            at: at(7),
        },
        JobEvent::RetryScheduled {
            next_attempt: 3,
            due_at: at(70),
            at: at(8),
        },
        JobEvent::JobCancelled {
            by: "user:0192f0c4-0000-7000-8000-000000000001".to_owned(),
            reason: Text::parse("no longer needed").expect("valid"),
            at: at(9),
        },
        JobEvent::JobDeadLettered {
            attempts: 3,
            at: at(10),
        },
        JobEvent::JobResubmitted {
            by: "user:0192f0c4-0000-7000-8000-000000000006".to_owned(),
            chain: 2,
            at: at(11),
        },
    ]
}

fn document_events() -> Vec<DocumentEvent> {
    vec![DocumentEvent::DocumentUploaded {
        document: StoredDocument {
            owner: id(1),
            uploaded_by: "user:0192f0c4-0000-7000-8000-000000000001".to_owned(),
            content_type: ContentType::PlainText,
            size_bytes: 1_234,
            sha256: "ab".repeat(32),
            storage_key: "acme/0192f0c4-0000-7000-8000-000000000002".to_owned(),
        },
        at: at(0),
    }]
}

// Each test compares the snapshot first: when a rename changes stored JSON, its diff is the
// clearest report. The rules in `check` follow.

#[test]
fn user_events_are_stored_under_their_event_types() {
    let samples = user_events();
    insta::assert_json_snapshot!("user_events", stored_form(&samples));
    check(&samples, &[("RolesChanged", "UserRolesChanged")]);
}

#[test]
fn api_key_events_are_stored_under_their_event_types() {
    let samples = api_key_events();
    insta::assert_json_snapshot!("api_key_events", stored_form(&samples));
    check(&samples, &[]);
}

#[test]
fn job_events_are_stored_under_their_event_types() {
    let samples = job_events();
    insta::assert_json_snapshot!("job_events", stored_form(&samples));
    check(
        &samples,
        &[
            ("LeaseExtended", "JobLeaseExtended"),
            ("ProgressReported", "JobProgressReported"),
            ("LeaseExpired", "JobLeaseExpired"),
            ("RetryScheduled", "JobRetryScheduled"),
        ],
    );
}

#[test]
fn document_events_are_stored_under_their_event_types() {
    let samples = document_events();
    insta::assert_json_snapshot!("document_events", stored_form(&samples));
    check(&samples, &[]);
}

/// What the event store holds for each event: its type, version and JSON payload.
fn stored_form<E: DomainEvent>(samples: &[E]) -> Vec<Value> {
    samples
        .iter()
        .map(|event| {
            json!({
                "event_type": event.event_type(),
                "event_version": event.event_version(),
                "payload": serde_json::to_value(event).expect("an event serializes"),
            })
        })
        .collect()
}

/// Checks every rule in the module doc but the snapshot. `renamed` lists `(former tag, tag)`
/// for variants whose stored tag was changed to their event type: old rows still carry the
/// former.
fn check<E>(samples: &[E], renamed: &[(&str, &str)])
where
    E: DomainEvent + Debug,
{
    let mut tags = BTreeSet::new();
    for event in samples {
        let payload = serde_json::to_value(event).expect("an event serializes");
        let tag = tag_of(&payload);
        assert_eq!(
            tag,
            event.event_type(),
            "the stored tag of {event:?} differs from its event_type(): add \
             #[serde(rename = \"{}\")] to the variant",
            event.event_type()
        );
        assert!(tags.insert(tag.clone()), "two samples of {tag}");
        let read: E = serde_json::from_value(payload).expect("a payload reads back");
        assert_eq!(&read, event, "{tag} does not read back to itself");
    }

    for (old, new) in renamed {
        let event = samples
            .iter()
            .find(|event| event.event_type() == *new)
            .expect("a renamed tag names a sampled event type");
        let payload = serde_json::to_value(event).expect("an event serializes");
        let read: E = serde_json::from_value(retag(&payload, old))
            .unwrap_or_else(|error| panic!("a payload stored as {old} no longer reads: {error}"));
        assert_eq!(&read, event, "{old} reads as {new}");
    }

    // serde offers every name a variant reads under: its tag and its aliases (former tags).
    let offered = variant_names::<E>();
    let former = renamed.iter().map(|(old, _)| (*old).to_owned());
    let expected: BTreeSet<String> = tags.into_iter().chain(former).collect();
    let unsampled: Vec<_> = offered.difference(&expected).collect();
    assert!(
        unsampled.is_empty(),
        "event variants without a sample (add one to this test): {unsampled:?}"
    );
    // A name serde does not know can only be a mistake in `renamed`.
    let unknown: Vec<_> = expected.difference(&offered).collect();
    assert!(unknown.is_empty(), "tags no variant reads: {unknown:?}");
}

/// The single key of an externally tagged enum's JSON.
fn tag_of(payload: &Value) -> String {
    let object = payload.as_object().expect("an event is a JSON object");
    assert_eq!(object.len(), 1, "an event is tagged by one key: {payload}");
    object.keys().next().cloned().unwrap_or_default()
}

/// The same payload under another tag.
fn retag(payload: &Value, tag: &str) -> Value {
    let content = payload
        .as_object()
        .and_then(|object| object.values().next())
        .cloned()
        .unwrap_or(Value::Null);
    Value::Object(Map::from_iter([(tag.to_owned(), content)]))
}

/// Every name the derived `Deserialize` of enum `E` accepts for its variants (tags and
/// aliases), as serde's derive hands them to the deserializer.
fn variant_names<E: DeserializeOwned>() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let _ = E::deserialize(VariantNames(&mut names));
    assert!(
        !names.is_empty(),
        "{} is not an enum",
        std::any::type_name::<E>()
    );
    names
}

/// A deserializer that records the variant names an enum offers and reads nothing.
struct VariantNames<'a>(&'a mut BTreeSet<String>);

impl<'de> Deserializer<'de> for VariantNames<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("only enums are inspected"))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Self::Error> {
        self.0
            .extend(variants.iter().map(|name| (*name).to_owned()));
        Err(de::Error::custom("variant names recorded"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct identifier
        ignored_any
    }
}
