//! Request types more than one context's routes share, and the documented shape of every value
//! object a request carries.
//!
//! A request field holds what the client sent (a `String`, an `i64`); the handler parses it with
//! the domain's value object, which is the one place the rule is enforced. So that a client (or a
//! generator of test requests) can know the rule before sending, each value object has a schema
//! here, built from the same predicates and constants the parser uses and named in the document
//! after the value object (`DisplayName`, `LanguageCode`, ...). Fields point at them with
//! `#[schema(value_type = ...)]`.
//!
//! Patterns are written to read the same in every engine that checks them: ECMA-262 with the `u`
//! flag (what JSON Schema prescribes), Python's `re` and Rust's `regex` (what Schemathesis
//! generates and validates with). So they use no `\p{..}`, `\s`, `\d` or `\w` (whose meaning
//! differs between those engines): every class is spelled out, BMP characters as `\uXXXX`,
//! characters beyond it as themselves, for which no escape reads alike in all three.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::sync::LazyLock;

use domain::identity::Role;
use domain::jobs::{JobKind as DomainJobKind, JobStatus as DomainJobStatus, Text as DomainText};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

pub mod events;

/// A role a tenant's admin may grant to a user or an API key. The operator role is not among
/// them: operator keys are created only from the command line (`backend create-operator-key`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GrantableRole {
    /// Everything within the tenant.
    Admin,
    /// Community moderation; reads users.
    Moderator,
    /// An ordinary user.
    User,
    /// A machine that claims and performs work.
    Worker,
    /// Reads everything of the tenant, changes nothing.
    Auditor,
}

impl From<GrantableRole> for Role {
    fn from(role: GrantableRole) -> Self {
        match role {
            GrantableRole::Admin => Role::Admin,
            GrantableRole::Moderator => Role::Moderator,
            GrantableRole::User => Role::User,
            GrantableRole::Worker => Role::Worker,
            GrantableRole::Auditor => Role::Auditor,
        }
    }
}

/// A set written as a JSON array, refusing a repeated element (`422 invalid_body`) rather than
/// dropping it, so that `uniqueItems` (and a `maxItems` equal to the number of values) describe
/// exactly what is accepted. For `#[serde(deserialize_with = "unique")]`.
///
/// # Errors
/// A repeated element, or what deserializing an element refuses.
pub fn unique<'de, D, T>(deserializer: D) -> Result<BTreeSet<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Ord,
{
    set(Vec::<T>::deserialize(deserializer)?)
}

/// [`unique`] for an optional set (absent or `null` is `None`). For
/// `#[serde(default, deserialize_with = "unique_or_none")]`.
///
/// # Errors
/// As [`unique`].
pub fn unique_or_none<'de, D, T>(deserializer: D) -> Result<Option<BTreeSet<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Ord,
{
    Option::<Vec<T>>::deserialize(deserializer)?
        .map(set)
        .transpose()
}

fn set<T: Ord, E: serde::de::Error>(items: Vec<T>) -> Result<BTreeSet<T>, E> {
    let count = items.len();
    let set: BTreeSet<T> = items.into_iter().collect();
    if set.len() == count {
        Ok(set)
    } else {
        Err(E::custom("an element is repeated"))
    }
}

/// Reads integers the way JSON Schema counts them: `integer` is any number without a fractional
/// part, so `3.0` and `1e3` are integers a client (or a schema-driven test generator) may send,
/// which serde's own integer parsing refuses. Fractions and numbers beyond 2^53 (which a JSON
/// number with a fraction or exponent cannot hold exactly) are still refused.
pub mod whole_number {
    use serde::de::{self, Deserializer, Visitor};
    use serde::Deserialize;

    /// The largest integer an `f64` holds exactly, with all below it.
    const EXACT: f64 = 9_007_199_254_740_992.0;

    struct Whole;

    impl Visitor<'_> for Whole {
        type Value = i128;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an integer")
        }

        fn visit_i64<E: de::Error>(self, value: i64) -> Result<i128, E> {
            Ok(i128::from(value))
        }

        fn visit_u64<E: de::Error>(self, value: u64) -> Result<i128, E> {
            Ok(i128::from(value))
        }

        #[allow(clippy::cast_possible_truncation)] // checked: whole and within ±2^53
        fn visit_f64<E: de::Error>(self, value: f64) -> Result<i128, E> {
            if value.fract() == 0.0 && value.abs() <= EXACT {
                Ok(value as i128)
            } else {
                Err(E::invalid_value(de::Unexpected::Float(value), &self))
            }
        }
    }

    fn whole<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i128, D::Error> {
        deserializer.deserialize_any(Whole)
    }

    fn fit<T: TryFrom<i128>, E: de::Error>(value: i128, what: &str) -> Result<T, E> {
        T::try_from(value).map_err(|_| E::custom(format!("{value} is not {what}")))
    }

    /// A `u64`. For `#[serde(deserialize_with = "whole_number::u64")]`.
    ///
    /// # Errors
    /// Not an integer, or negative.
    pub fn u64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
        fit(whole(deserializer)?, "a non-negative 64-bit integer")
    }

    /// An optional unsigned integer of any width (absent or `null` is `None`). For
    /// `#[serde(default, deserialize_with = "whole_number::option")]`.
    ///
    /// # Errors
    /// Not an integer, or outside the range of `T`.
    pub fn option<'de, D: Deserializer<'de>, T: TryFrom<i128>>(
        deserializer: D,
    ) -> Result<Option<T>, D::Error> {
        #[derive(Deserialize)]
        #[serde(transparent)]
        struct Whole(#[serde(deserialize_with = "whole")] i128);

        Option::<Whole>::deserialize(deserializer)?
            .map(|Whole(value)| fit(value, "an integer in range"))
            .transpose()
    }

    /// An optional `i64` (absent or `null` is `None`). For
    /// `#[serde(default, deserialize_with = "whole_number::option_i64")]`.
    ///
    /// # Errors
    /// Not an integer, or outside the range of `i64`.
    pub fn option_i64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
        #[derive(Deserialize)]
        #[serde(transparent)]
        struct Whole(#[serde(deserialize_with = "whole")] i128);

        Option::<Whole>::deserialize(deserializer)?
            .map(|Whole(value)| fit(value, "a 64-bit integer"))
            .transpose()
    }
}

/// The characters for which `keep` holds, as the inside of a regex character class.
///
/// Runs within the BMP are ranges of `\uXXXX` escapes. Characters beyond it are listed one by one
/// as themselves: a checker that compiles the pattern without the `u` flag (Spectral's `regex`
/// format check does) reads each as two UTF-16 units, and a range between two of them would then
/// run backwards and not compile; single ones compile either way.
fn class(keep: impl Fn(char) -> bool) -> String {
    fn close(class: &mut String, (start, end): (char, char)) {
        let _ = write!(class, "\\u{:04X}", u32::from(start));
        if end != start {
            let dash = if u32::from(end) > u32::from(start) + 1 {
                "-"
            } else {
                ""
            };
            let _ = write!(class, "{dash}\\u{:04X}", u32::from(end));
        }
    }
    let mut class = String::new();
    let mut run: Option<(char, char)> = None;
    for c in ('\0'..=char::MAX).filter(|c| keep(*c)) {
        if u32::from(c) > 0xFFFF {
            if let Some(done) = run.take() {
                close(&mut class, done);
            }
            class.push(c);
            continue;
        }
        run = match run {
            Some((start, end)) if u32::from(end) + 1 == u32::from(c) => Some((start, c)),
            Some(done) => {
                close(&mut class, done);
                Some((c, c))
            }
            None => Some((c, c)),
        };
    }
    if let Some(done) = run {
        close(&mut class, done);
    }
    class
}

/// What `str::trim` removes: Unicode `White_Space`.
static WHITESPACE: LazyLock<String> = LazyLock::new(|| class(char::is_whitespace));

/// What no name may hold ([`domain::names`]): control characters (Cc, and the line and paragraph
/// separators) and format characters (Cf) as the domain's own tables list them.
static INVISIBLE: LazyLock<String> = LazyLock::new(|| {
    class(|c| domain::names::is_control_character(c) || domain::names::is_format_character(c))
});

/// A pattern for a value that is trimmed, then must be `min..=max` characters (`min >= 1`) of
/// `inner`, the first and last of them not whitespace.
fn trimmed(inner: &str, min: usize, max: usize) -> String {
    let space = format!("[{}]", *WHITESPACE);
    let edge = format!("[^{}{}]", *WHITESPACE, inner_exclusions(inner));
    let core = match (min, max) {
        (_, 1) => edge,
        (0 | 1, _) => format!("{edge}(?:{inner}{{0,{}}}{edge})?", max - 2),
        _ => format!("{edge}{inner}{{{},{}}}{edge}", min - 2, max - 2),
    };
    format!("^{space}*{core}{space}*$")
}

/// The characters a negated class `inner` leaves out, so an edge character excludes them too.
fn inner_exclusions(inner: &str) -> &str {
    inner
        .strip_prefix("[^")
        .and_then(|rest| rest.strip_suffix(']'))
        .unwrap_or("")
}

/// A string schema: description, length bounds in characters, pattern, example.
fn string(
    description: &str,
    (min, max): (usize, usize),
    pattern: String,
    example: &str,
) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(SchemaType::new(Type::String))
        .description(Some(description))
        .min_length(Some(min))
        .max_length(Some(max))
        .pattern(Some(pattern))
        .examples([example])
        .into()
}

/// A name people read ([`domain::names::parse_name`]): trimmed, then `min..=max` characters
/// with no control or format character.
fn name(what: &str, (min, max): (usize, usize), example: &str) -> RefOr<Schema> {
    let description = format!(
        "{what}: at most {max} characters as sent, and {min} to {max} once surrounding \
         whitespace is trimmed, none of them a control character (Unicode category Cc), a line \
         or paragraph separator (U+2028, U+2029) or a format character (Cf: invisible and \
         bidirectional controls)."
    );
    let pattern = trimmed(&format!("[^{}]", *INVISIBLE), min, max);
    string(&description, (min, max), pattern, example)
}

/// A string that is one of `names`.
fn one_of<'a>(description: &str, names: impl IntoIterator<Item = &'a str>) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(SchemaType::new(Type::String))
        .description(Some(description))
        .enum_values(Some(names))
        .into()
}

/// Declares a value object's documented shape: a named component schema, referenced by request
/// fields with `#[schema(value_type = ...)]`. Never built; only its schema is used.
macro_rules! documented {
    ($(#[$doc:meta])* $name:ident => $schema:expr) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub enum $name {}

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                $schema
            }
        }

        impl ToSchema for $name {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($name))
            }
        }
    };
}

documented! {
    /// [`domain::users::DisplayName`].
    DisplayName => name(
        "How a user is shown to others",
        (domain::users::DisplayName::MIN_CHARS, domain::users::DisplayName::MAX_CHARS),
        "Ada Lovelace",
    )
}

/// What no post body may hold ([`domain::community::Body::refuses`]).
static REFUSED_IN_BODY: LazyLock<String> =
    LazyLock::new(|| class(domain::community::Body::refuses));

documented! {
    /// [`domain::community::Title`], within the default limits (the served document states the
    /// configured ones: [`text_schemas`]).
    Title => title(domain::community::TextLimits::DEFAULT.title_max_chars)
}

documented! {
    /// [`domain::community::Body`], within the default limits (see [`Title`]).
    Body => body(domain::community::TextLimits::DEFAULT.body_max_chars)
}

/// The `Title` and `Body` component schemas within `limits` (`community.*_max_chars`).
pub fn text_schemas(limits: domain::community::TextLimits) -> [(String, RefOr<Schema>); 2] {
    [
        (Title::name().into_owned(), title(limits.title_max_chars)),
        (Body::name().into_owned(), body(limits.body_max_chars)),
    ]
}

fn title(max: usize) -> RefOr<Schema> {
    name(
        "A category's name or a post's title",
        (domain::community::Title::MIN_CHARS, max),
        "Glossary for legal German",
    )
}

fn body(max: usize) -> RefOr<Schema> {
    string(
        &format!(
            "Markdown, stored exactly as written and never rendered by the server: at most {max} \
             characters, at least one of them not whitespace, and no control character other \
             than a tab or a line break (CR, LF)."
        ),
        (1, max),
        format!(
            "^[^{refused}]*[^{refused}{space}][^{refused}]*$",
            refused = *REFUSED_IN_BODY,
            space = *WHITESPACE
        ),
        "Which term do you use for *Rechtsfähigkeit*?",
    )
}

documented! {
    /// [`domain::api_keys::KeyName`].
    KeyName => name(
        "What the key is for",
        (domain::api_keys::KeyName::MIN_CHARS, domain::api_keys::KeyName::MAX_CHARS),
        "ci",
    )
}

documented! {
    /// [`domain::tenants::TenantName`].
    TenantName => name(
        "How a tenant is shown",
        (1, domain::tenants::TenantName::MAX_CHARS),
        "Acme Translations",
    )
}

documented! {
    /// [`domain::tenants::SuspensionReason`].
    SuspensionReason => name(
        "Why a tenant is suspended (shown to operators only)",
        (1, domain::tenants::SuspensionReason::MAX_CHARS),
        "invoice 2026-11 overdue",
    )
}

/// A character of an email address's local part, as the pattern admits it.
const EMAIL_LOCAL: &str = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]";
/// A host name label: letters, digits and inner hyphens.
const EMAIL_LABEL: &str = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?";

documented! {
    /// [`domain::users::Email`].
    Email => string(
        "An email address, trimmed and compared case-insensitively: a local part of 1 to 64 \
         characters (letters, digits and ``!#$%&'*+/=?^_`{|}~.-``, no leading, trailing or \
         doubled `.`), `@`, and a host name of at least two labels (each 1 to 63 letters, digits \
         or inner `-`), at most 254 in all. The pattern describes the ASCII addresses with at \
         most one `.` before the `@`; letters and digits of any script, and more dots, are \
         accepted too.",
        (5, domain::users::Email::MAX_LEN),
        format!(
            "^[{space}]*{EMAIL_LOCAL}{{1,32}}(?:\\.{EMAIL_LOCAL}{{1,31}})?@{EMAIL_LABEL}(?:\\.{EMAIL_LABEL})+[{space}]*$",
            space = *WHITESPACE
        ),
        "ada@example.org",
    )
}

/// The longest language tag as sent: a 3-letter language, a script and a 3-digit region.
const LANGUAGE_CODE_MAX: usize = domain::jobs::LanguageCode::MAX_CHARS;

documented! {
    /// [`domain::jobs::LanguageCode`].
    LanguageCode => string(
        "A language tag: a 2 or 3 letter language, optionally a 4-letter script, optionally a \
         region (2 letters or 3 digits), joined by `-` or `_`, in any case (normalised to \
         `pt-BR`, `zh-Hant`, `es-419`); surrounding whitespace is trimmed.",
        (2, LANGUAGE_CODE_MAX),
        format!(
            "^[{space}]*[A-Za-z]{{2,3}}(?:[-_][A-Za-z]{{4}})?(?:[-_](?:[A-Za-z]{{2}}|[0-9]{{3}}))?[{space}]*$",
            space = *WHITESPACE
        ),
        "pt-BR",
    )
}

/// The longest error code ([`domain::jobs::ErrorCode::parse`]).
const ERROR_CODE_MAX: usize = 64;

documented! {
    /// [`domain::jobs::ErrorCode`].
    ErrorCode => string(
        "A machine-readable failure code: 1 to 64 of `a`-`z`, `0`-`9`, `_`, `.`, `-`.",
        (1, ERROR_CODE_MAX),
        format!("^[a-z0-9_.-]{{1,{ERROR_CODE_MAX}}}$"),
        "engine.timeout",
    )
}

documented! {
    /// [`domain::jobs::Text`].
    Text => string(
        &format!(
            "Human-readable text: at most {max} characters as sent, and at least one once \
             surrounding whitespace is trimmed; any characters.",
            max = DomainText::MAX_LEN
        ),
        (1, DomainText::MAX_LEN),
        trimmed("[\\s\\S]", 1, DomainText::MAX_LEN),
        "the model did not answer in time",
    )
}

documented! {
    /// [`domain::jobs::JobKind`].
    JobKind => one_of("What a job does.", DomainJobKind::ALL.map(DomainJobKind::as_str))
}

documented! {
    /// [`domain::community::Reason`].
    Reason => string(
        &format!(
            "Why: at most {max} characters as sent, and at least one once surrounding whitespace \
             is trimmed; any characters.",
            max = domain::community::Reason::MAX_CHARS
        ),
        (1, domain::community::Reason::MAX_CHARS),
        trimmed("[\\s\\S]", 1, domain::community::Reason::MAX_CHARS),
        "Advertising, posted in every category",
    )
}

documented! {
    /// [`domain::community::ReactionKind`].
    ReactionKind => one_of(
        "A reaction to a post or comment.",
        domain::community::ReactionKind::ALL.map(domain::community::ReactionKind::as_str),
    )
}

documented! {
    /// [`domain::jobs::JobStatus`], by name.
    JobStatus => one_of(
        "Where a job is in its lifecycle.",
        DomainJobStatus::NAMES.iter().copied(),
    )
}

documented! {
    /// [`domain::audit::aggregate_types`]: every aggregate type whose history can be read.
    AggregateType => one_of("An aggregate type.", domain::audit::aggregate_types())
}

/// A property of a documented request body, as JSON, for tests that hold documented bounds to
/// the domain's.
#[cfg(test)]
pub fn property<T: ToSchema>(field: &str) -> serde_json::Value {
    let schema = serde_json::to_value(T::schema()).expect("a schema serializes");
    schema["properties"][field].clone()
}

/// The schema of a documented parameter, as JSON.
#[cfg(test)]
pub fn parameter<T: utoipa::IntoParams>(name: &str) -> serde_json::Value {
    let parameters = serde_json::to_value(T::into_params(|| None)).expect("parameters serialize");
    parameters
        .as_array()
        .and_then(|all| all.iter().find(|parameter| parameter["name"] == name))
        .map(|parameter| parameter["schema"].clone())
        .unwrap_or_else(|| panic!("no parameter {name}"))
}

// After `documented!`, which it uses.
pub mod prices;

#[cfg(test)]
mod tests;
