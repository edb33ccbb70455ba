//! Bounds every schema of the document states: what the server keeps to even where a handler's
//! annotation did not say so. Applied once to the whole document as JSON, after the operations
//! are complete, so no schema (a request's, a response's, a header's) is missed.
//!
//! - A string's length follows from its format (a UUID is 36 characters, a time at most 64);
//!   any other string the server writes is at most [`TEXT_MAX`] characters, since nothing it
//!   stores or says is longer than the largest request body. An upload is 1 byte to
//!   `documents.max_bytes`.
//! - An integer without bounds gets its format's range.
//! - A list without `maxItems`: a page holds at most `queries.max_page_size` items, any other
//!   list at most [`LIST_MAX`].
//! - A live stream's event data names its item's schema as `contentSchema` (utoipa writes it as
//!   the extension [`CONTENT_SCHEMA_EXTENSION`], having no field for the keyword).
//! - A pattern ends with `$(?!\n)` instead of `$`: the same in ECMA-262, and in Python's `re`
//!   (which generators such as Schemathesis use) it no longer matches before a final newline.

use serde_json::{json, Map, Value};

use crate::http::schema::events::CONTENT_SCHEMA_EXTENSION;

/// The longest string the server writes where no format bounds it.
pub const TEXT_MAX: u64 = 65_536;

/// The most items a list other than a page holds (parked streams are listed this many at most).
pub const LIST_MAX: u64 = 1_000;

/// Settings the bounds depend on.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// `queries.max_page_size`.
    pub max_page_size: u32,
    /// `documents.max_bytes`.
    pub upload_max_bytes: u64,
    /// `community.title_max_chars` and `community.body_max_chars`.
    pub text: domain::community::TextLimits,
}

/// States the bounds in every schema of `document` (the document as JSON).
pub fn bound(document: &mut Value, limits: Limits) {
    walk(document, limits, None);
}

fn walk(value: &mut Value, limits: Limits, key: Option<&str>) {
    match value {
        Value::Object(object) => {
            if is_schema(object) {
                bound_schema(object, limits, key);
            }
            for (name, child) in object.iter_mut() {
                if name == "application/octet-stream" {
                    upload(child, limits);
                }
                walk(child, limits, Some(name));
            }
        }
        Value::Array(items) => {
            for item in items {
                walk(item, limits, key);
            }
        }
        _ => {}
    }
}

fn is_schema(object: &Map<String, Value>) -> bool {
    object.contains_key("type") && !object.contains_key("in") && !object.contains_key("scheme")
}

fn has_type(object: &Map<String, Value>, wanted: &str) -> bool {
    match object.get("type") {
        Some(Value::String(single)) => single == wanted,
        Some(Value::Array(types)) => types.iter().any(|t| t == wanted),
        _ => false,
    }
}

fn bound_schema(object: &mut Map<String, Value>, limits: Limits, key: Option<&str>) {
    if let Some(content) = object.remove(CONTENT_SCHEMA_EXTENSION) {
        object.insert("contentSchema".to_owned(), content);
    }
    if let Some(Value::String(pattern)) = object.get_mut("pattern") {
        if pattern.ends_with('$') && !pattern.ends_with("\\$") && !pattern.ends_with("(?!\\n)") {
            pattern.push_str("(?!\\n)");
        }
    }
    let fixed = object.contains_key("enum") || object.contains_key("const");
    if has_type(object, "string") && !fixed && !object.contains_key("maxLength") {
        let max = match object.get("format").and_then(Value::as_str) {
            Some("uuid") => 36,
            Some("date-time") => 64,
            Some("date") => 10,
            _ => TEXT_MAX,
        };
        object.insert("maxLength".to_owned(), json!(max));
    }
    if has_type(object, "integer") {
        let (min, max) = match object.get("format").and_then(Value::as_str) {
            Some("int32") => (i64::from(i32::MIN), i64::from(i32::MAX)),
            _ => (i64::MIN, i64::MAX),
        };
        object.entry("minimum").or_insert(json!(min));
        object.entry("maximum").or_insert(json!(max));
    }
    if has_type(object, "array") && !object.contains_key("maxItems") {
        let max = if key == Some("items") && is_page(object) {
            u64::from(limits.max_page_size)
        } else {
            LIST_MAX
        };
        object.insert("maxItems".to_owned(), json!(max));
    }
}

/// Raw bytes (an upload): at least one, at most `documents.max_bytes`.
fn upload(media: &mut Value, limits: Limits) {
    if let Some(Value::Object(schema)) = media.get_mut("schema") {
        schema.entry("minLength").or_insert(json!(1));
        schema
            .entry("maxLength")
            .or_insert(json!(limits.upload_max_bytes));
    }
}

/// A page's `items` (its schema refers to a row type; pages are the only lists named `items`).
fn is_page(object: &Map<String, Value>) -> bool {
    object.get("items").is_some_and(Value::is_object)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_page_size: 100,
        upload_max_bytes: 1024,
        text: domain::community::TextLimits::DEFAULT,
    };

    #[test]
    fn strings_integers_and_lists_get_true_bounds() {
        let mut document = json!({
            "id": {"type": "string", "format": "uuid"},
            "at": {"type": ["string", "null"], "format": "date-time"},
            "kind": {"type": "string", "enum": ["a"]},
            "detail": {"type": "string"},
            "small": {"type": "integer", "format": "int32", "minimum": 0},
            "roles": {"type": "array", "items": {"type": "string", "maxLength": 8}},
            "code": {"type": "string", "maxLength": 3, "pattern": "^[a-z]+$"},
        });
        bound(&mut document, LIMITS);
        assert_eq!(document["id"]["maxLength"], 36);
        assert_eq!(document["at"]["maxLength"], 64);
        assert!(document["kind"].get("maxLength").is_none());
        assert_eq!(document["detail"]["maxLength"], TEXT_MAX);
        assert_eq!(document["small"]["minimum"], 0);
        assert_eq!(document["small"]["maximum"], i32::MAX);
        assert_eq!(document["roles"]["maxItems"], LIST_MAX);
        assert_eq!(document["code"]["pattern"], "^[a-z]+$(?!\\n)");
    }

    #[test]
    fn a_pattern_no_longer_matches_before_a_final_newline_in_python_style_engines() {
        let mut document = json!({"code": {"type": "string", "pattern": "^a$"}});
        bound(&mut document, LIMITS);
        bound(&mut document, LIMITS);
        assert_eq!(document["code"]["pattern"], "^a$(?!\\n)", "applied once");
    }
}
