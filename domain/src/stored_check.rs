//! The check every aggregate's events pass: their stored form, what postgres-es writes to
//! `events.payload` and `events.event_type`, held as insta snapshots. Test builds only.
//!
//! History is append-only and outlives the code: a renamed Rust variant or field silently
//! changes what new rows look like, and old rows stop reading. So for every aggregate the check
//! asserts, over one sample of each variant:
//! - every variant has a sample: the variant names are read from serde's own derive (a
//!   deserializer that records the names it is offered), not from a hand-kept list, so a new
//!   variant without a sample fails;
//! - the payload's JSON tag equals `event_type()`;
//! - the payload reads back to the same event, and payloads written under a variant's former tag
//!   (before it was renamed to its event type) still read;
//! - the stored JSON equals the snapshot in the context's `snapshots/` folder.
//!
//! Each context writes its samples in its own `stored_events.rs` and hands them to
//! [`stored_events_test!`], which writes the test and marks the event type [`Checked`]. In this
//! crate's test build `Decider::Event` must be `Checked`, so an aggregate whose events skip the
//! check does not compile: a new bounded context cannot forget it, and nothing outside its folder
//! lists it.
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

/// An event type whose stored form is checked by a test. Implemented only by
/// [`stored_events_test!`], next to the test it writes; required of every `Decider::Event`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no stored-events test",
    label = "events of an aggregate must have their stored form checked",
    note = "write one with `stored_events_test!` in the context's `stored_events.rs`"
)]
pub trait Checked {}

/// Writes the stored-events test of one event type, and marks the type [`Checked`].
///
/// ```text
/// stored_events_test! {
///     /// Every user event, as stored.
///     fn user_events_are_stored_under_their_event_types() for UserEvent {
///         snapshot: "user_events",
///         former_tags: [("RolesChanged", "UserRolesChanged")],
///         samples: samples(),
///     }
/// }
/// ```
///
/// `former_tags` lists `(former tag, tag)` for variants whose stored tag was changed to their
/// event type: old rows still carry the former one. The snapshot is named after the calling
/// module, so it lives in that module's `snapshots/` folder.
macro_rules! stored_events_test {
    (
        $(#[$meta:meta])*
        fn $test:ident() for $event:ty {
            snapshot: $snapshot:literal,
            former_tags: [$(($old:literal, $new:literal)),* $(,)?],
            samples: $samples:expr $(,)?
        }
    ) => {
        impl $crate::stored_check::Checked for $event {}

        $(#[$meta])*
        #[test]
        fn $test() {
            let samples: Vec<$event> = $samples;
            // The snapshot first: when a rename changes stored JSON, its diff is the clearest
            // report. The rules in `check` follow.
            let stored = $crate::stored_check::stored_form(&samples);
            insta::assert_json_snapshot!($snapshot, stored);
            $crate::stored_check::check(&samples, &[$(($old, $new)),*]);
        }
    };
}
pub(crate) use stored_events_test;

/// A fixed instant, `offset` seconds after 2025-01-02T03:04:05Z: samples must not read the
/// clock, or every run would change the snapshots.
pub fn at(offset: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_735_787_045 + offset, 0).expect("a valid timestamp")
}

/// A fixed id, numbered `n`, for the same reason.
pub fn id(n: u128) -> Uuid {
    Uuid::from_u128(0x0192_f0c4_0000_7000_8000_0000_0000_0000 + n)
}

/// What the event store holds for each event: its type, version and JSON payload.
pub fn stored_form<E: DomainEvent>(samples: &[E]) -> Vec<Value> {
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
pub fn check<E>(samples: &[E], renamed: &[(&str, &str)])
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
        "event variants without a sample (add one to the context's stored_events.rs): \
         {unsampled:?}"
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
