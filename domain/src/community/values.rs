//! The text people write: titles (read in lists, so held to the rules of names) and bodies
//! (markdown, stored exactly as written and never rendered by the backend).

use serde::{Deserialize, Serialize};

use super::CommunityError;
use crate::names::{is_control_character, parse_name, NameRefusal};

/// How long titles and bodies may be, in characters: configurable, within ceilings no
/// configuration passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextLimits {
    /// The longest title (or category name).
    pub title_max_chars: usize,
    /// The longest body.
    pub body_max_chars: usize,
}

impl TextLimits {
    /// 200-character titles and 20,000-character bodies.
    pub const DEFAULT: Self = Self {
        title_max_chars: 200,
        body_max_chars: 20_000,
    };
    /// No title may be configured longer: titles are read in lists.
    pub const TITLE_CEILING: usize = 1_000;
    /// No body may be configured longer.
    pub const BODY_CEILING: usize = 60_000;

    /// Whether both limits are within their ceilings (and allow something).
    pub fn is_valid(&self) -> bool {
        (Title::MIN_CHARS..=Self::TITLE_CEILING).contains(&self.title_max_chars)
            && (1..=Self::BODY_CEILING).contains(&self.body_max_chars)
    }
}

impl Default for TextLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// A category's name or a post's title: trimmed, 1 to [`TextLimits::title_max_chars`]
/// characters, no control or invisible characters ([`crate::names`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Title(String);

impl Title {
    /// Shortest accepted title, in characters.
    pub const MIN_CHARS: usize = 1;

    /// Parses a title within the default limits ([`TextLimits::DEFAULT`]), for tests (the
    /// backend parses within its configured limits).
    ///
    /// # Errors
    /// As [`Title::parse_within`].
    #[cfg(test)]
    pub(crate) fn parse(raw: &str) -> Result<Self, CommunityError> {
        Self::parse_within(raw, TextLimits::DEFAULT)
    }

    /// Parses a title of at most `limits.title_max_chars` characters.
    ///
    /// # Errors
    /// [`CommunityError::TitleLength`], [`CommunityError::TitleCharacters`] or
    /// [`CommunityError::TitleInvisibleCharacter`].
    pub fn parse_within(raw: &str, limits: TextLimits) -> Result<Self, CommunityError> {
        match parse_name(raw, Self::MIN_CHARS..=limits.title_max_chars) {
            Ok(title) => Ok(Self(title.to_owned())),
            Err(NameRefusal::Length { min, max, actual }) => {
                Err(CommunityError::TitleLength { min, max, actual })
            }
            Err(NameRefusal::Control(_)) => Err(CommunityError::TitleCharacters),
            Err(NameRefusal::Invisible(character)) => {
                Err(CommunityError::TitleInvisibleCharacter { character })
            }
        }
    }

    /// The title.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Markdown text: at most [`TextLimits::body_max_chars`] characters, not blank, kept exactly as written
/// (line breaks and tabs included). The only characters refused are the controls that are
/// neither a line break nor a tab: no markdown needs them, and they rewrite terminals and logs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Body(String);

impl Body {
    /// Parses a body within the default limits ([`TextLimits::DEFAULT`]), for tests.
    ///
    /// # Errors
    /// As [`Body::parse_within`].
    #[cfg(test)]
    pub(crate) fn parse(raw: &str) -> Result<Self, CommunityError> {
        Self::parse_within(raw, TextLimits::DEFAULT)
    }

    /// Parses a body of at most `limits.body_max_chars` characters.
    ///
    /// # Errors
    /// [`CommunityError::BodyLength`] for a blank or too long body,
    /// [`CommunityError::BodyCharacters`] for a control character other than a line break or a tab.
    pub fn parse_within(raw: &str, limits: TextLimits) -> Result<Self, CommunityError> {
        let (max, actual) = (limits.body_max_chars, raw.chars().count());
        if actual > max || raw.trim().is_empty() {
            return Err(CommunityError::BodyLength { max, actual });
        }
        if raw.chars().any(Self::refuses) {
            return Err(CommunityError::BodyCharacters);
        }
        Ok(Self(raw.to_owned()))
    }

    /// Whether a body may not hold `c`: a control character other than a line break or a tab.
    pub fn refuses(c: char) -> bool {
        is_control_character(c) && !matches!(c, '\n' | '\r' | '\t')
    }

    /// The markdown as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn a_title_is_trimmed_and_bounded() {
        assert_eq!(Title::parse("  Welcome ").unwrap().as_str(), "Welcome");
        assert!(matches!(
            Title::parse("   "),
            Err(CommunityError::TitleLength { actual: 0, .. })
        ));
        assert!(Title::parse(&"x".repeat(200)).is_ok());
        assert!(matches!(
            Title::parse(&"x".repeat(201)),
            Err(CommunityError::TitleLength { actual: 201, .. })
        ));
        assert_eq!(Title::parse("a\nb"), Err(CommunityError::TitleCharacters));
        assert!(matches!(
            Title::parse("Ada\u{202E}nimda"),
            Err(CommunityError::TitleInvisibleCharacter { .. })
        ));
    }

    #[test]
    fn a_body_is_kept_as_written() {
        let markdown = "  # Hello\n\n* one\n\t* two\r\n<script>alert(1)</script>  ";
        assert_eq!(Body::parse(markdown).unwrap().as_str(), markdown);
        assert!(matches!(
            Body::parse(" \n\t "),
            Err(CommunityError::BodyLength { .. })
        ));
        assert!(Body::parse(&"y".repeat(20_000)).is_ok());
        assert!(matches!(
            Body::parse(&"y".repeat(20_001)),
            Err(CommunityError::BodyLength { actual: 20_001, .. })
        ));
        assert_eq!(Body::parse("a\u{7}b"), Err(CommunityError::BodyCharacters));
    }

    #[test]
    fn configured_limits_are_the_ones_kept() {
        let tight = TextLimits {
            title_max_chars: 5,
            body_max_chars: 10,
        };
        assert!(tight.is_valid());
        assert!(Title::parse_within("Hello", tight).is_ok());
        assert_eq!(
            Title::parse_within(" Hello ", tight),
            Err(CommunityError::TitleLength {
                min: 1,
                max: 5,
                actual: 7
            }),
            "as sent, surrounding spaces count"
        );
        assert_eq!(
            Title::parse_within("Hello!", tight),
            Err(CommunityError::TitleLength {
                min: 1,
                max: 5,
                actual: 6
            })
        );
        assert!(Body::parse_within(&"y".repeat(10), tight).is_ok());
        assert_eq!(
            Body::parse_within(&"y".repeat(11), tight),
            Err(CommunityError::BodyLength {
                max: 10,
                actual: 11
            })
        );
        let generous = TextLimits {
            title_max_chars: TextLimits::TITLE_CEILING,
            body_max_chars: TextLimits::BODY_CEILING,
        };
        assert!(Body::parse_within(&"y".repeat(50_000), generous).is_ok());
        for invalid in [
            TextLimits {
                title_max_chars: 0,
                ..TextLimits::DEFAULT
            },
            TextLimits {
                title_max_chars: TextLimits::TITLE_CEILING + 1,
                ..TextLimits::DEFAULT
            },
            TextLimits {
                body_max_chars: 0,
                ..TextLimits::DEFAULT
            },
            TextLimits {
                body_max_chars: TextLimits::BODY_CEILING + 1,
                ..TextLimits::DEFAULT
            },
        ] {
            assert!(!invalid.is_valid(), "{invalid:?}");
        }
    }

    proptest! {
        #[test]
        fn any_accepted_body_round_trips_unchanged(
            raw in "[^\\p{Cc}\u{2028}\u{2029}]{0,50}(\n[^\\p{Cc}\u{2028}\u{2029}]{0,50}){0,3}"
        ) {
            match Body::parse(&raw) {
                Ok(body) => prop_assert_eq!(body.as_str(), raw.as_str()),
                Err(error) => prop_assert!(raw.trim().is_empty(), "{error:?}"),
            }
        }
    }
}
