//! The documented shape of each live stream's events (`text/event-stream`).
//!
//! A stream's schema describes one event as a client's parser sees it (OpenAPI 3.1 has no
//! `itemSchema`; tools read `schema` as the schema of each event): its name, its id and its
//! data. An item event's data is its JSON (`contentMediaType` `application/json`, with the item's
//! schema as `contentSchema`); a `resync` event, sent first when what the client asked to resume
//! after is no longer retained, has a sentence as data and no id.

use std::borrow::Cow;

use utoipa::openapi::extensions::ExtensionsBuilder;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

/// The extension that becomes `contentSchema` once the document is complete (utoipa cannot
/// write that keyword itself).
pub const CONTENT_SCHEMA_EXTENSION: &str = "x-content-schema";

/// The pattern of an event id: a position in the event stream.
const ID_PATTERN: &str = "^[0-9]{1,19}$";

/// The schema of one event of a stream whose items are `event: {name}` carrying `item` (a
/// component schema's name), or `event: resync`.
fn event_schema(name: &str, item: &str) -> RefOr<Schema> {
    let text = |description: &str| {
        ObjectBuilder::new()
            .schema_type(SchemaType::new(Type::String))
            .description(Some(description))
    };
    let item_event = ObjectBuilder::new()
        .schema_type(SchemaType::new(Type::Object))
        .description(Some(format!("An item: a {item} as JSON.")))
        .property("event", text("The event's name.").enum_values(Some([name])))
        .property(
            "id",
            text(
                "Its position in the event stream: send it as `Last-Event-ID` to resume after it.",
            )
            .pattern(Some(ID_PATTERN))
            .min_length(Some(1))
            .max_length(Some(19)),
        )
        .property(
            "data",
            text(&format!("A {item} as JSON."))
                .content_media_type("application/json")
                .extensions(Some(
                    ExtensionsBuilder::new()
                        .add(
                            CONTENT_SCHEMA_EXTENSION,
                            serde_json::to_value(Ref::from_schema_name(item)).unwrap_or_else(
                                |error| unreachable!("a reference serializes: {error}"),
                            ),
                        )
                        .build(),
                )),
        )
        .required("event")
        .required("id")
        .required("data");
    let resync = ObjectBuilder::new()
        .schema_type(SchemaType::new(Type::Object))
        .description(Some(
            "Sent first when events after `Last-Event-ID` are no longer retained: re-read what \
             the stream follows, then follow it.",
        ))
        .property(
            "event",
            text("The event's name.").enum_values(Some(["resync"])),
        )
        .property("data", text("What to do, in a sentence."))
        .required("event")
        .required("data");
    OneOfBuilder::new()
        .item(item_event)
        .item(resync)
        .description(Some(format!(
            "One event of the stream: `{name}` or `resync`."
        )))
        .into()
}

/// Declares a live stream's documented events: `$name` is the schema of each event, whose items
/// are `event: $event` carrying `$item` (registered as a component with it).
macro_rules! event_stream {
    ($(#[$doc:meta])* $name:ident => ($event:literal, $item:ty)) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub enum $name {}

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                event_schema($event, &<$item as ToSchema>::name())
            }
        }

        impl ToSchema for $name {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($name))
            }

            fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
                schemas.push((
                    <$item as ToSchema>::name().into_owned(),
                    <$item as PartialSchema>::schema(),
                ));
                <$item as ToSchema>::schemas(schemas);
            }
        }
    };
}

event_stream! {
    /// The jobs' live stream: `event: job` carries a [`projections::jobs::live::JobUpdate`].
    JobEvents => ("job", projections::jobs::live::JobUpdate)
}

event_stream! {
    /// The community's live streams: `event: writing` carries a
    /// [`projections::community::live::WritingNotice`].
    WritingEvents => ("writing", projections::community::live::WritingNotice)
}

event_stream! {
    /// An asset's live bars: `event: bars` carries a [`projections::prices::live::BarsNotice`].
    BarEvents => ("bars", projections::prices::live::BarsNotice)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_names_its_item_schema_and_the_item_is_registered() {
        let schema = serde_json::to_value(WritingEvents::schema()).unwrap();
        let item = &schema["oneOf"][0];
        assert_eq!(item["properties"]["event"]["enum"][0], "writing");
        assert_eq!(
            item["properties"]["data"][CONTENT_SCHEMA_EXTENSION]["$ref"],
            "#/components/schemas/WritingNotice"
        );
        assert_eq!(
            schema["oneOf"][1]["properties"]["event"]["enum"][0],
            "resync"
        );
        let mut registered = Vec::new();
        WritingEvents::schemas(&mut registered);
        assert!(registered.iter().any(|(name, _)| name == "WritingNotice"));
    }
}
