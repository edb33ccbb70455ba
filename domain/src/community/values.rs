//! The text people write: titles (read in lists, so held to the rules of names) and bodies
//! (markdown, stored exactly as written and never rendered by the backend).

use serde::{Deserialize, Serialize};

use super::CommunityError;
use crate::names::{is_control_character, parse_name, NameRefusal};

/// A category's name or a post's title: trimmed, 1 to [`Title::MAX_CHARS`] characters, no
/// control or invisible characters ([`crate::names`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Title(String);

impl Title {
    /// Shortest accepted title, in characters.
    pub const MIN_CHARS: usize = 1;
    /// Longest accepted title, in characters.
    pub const MAX_CHARS: usize = 200;

    /// Parses a title.
    ///
    /// # Errors
    /// [`CommunityError::TitleLength`], [`CommunityError::TitleCharacters`] or
    /// [`CommunityError::TitleInvisibleCharacter`].
    pub fn parse(raw: &str) -> Result<Self, CommunityError> {
        match parse_name(raw, Self::MIN_CHARS..=Self::MAX_CHARS) {
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

/// Markdown text: at most [`Body::MAX_CHARS`] characters, not blank, kept exactly as written
/// (line breaks and tabs included). The only characters refused are the controls that are
/// neither a line break nor a tab: no markdown needs them, and they rewrite terminals and logs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Body(String);

impl Body {
    /// Longest accepted body, in characters.
    pub const MAX_CHARS: usize = 20_000;

    /// Parses a body.
    ///
    /// # Errors
    /// [`CommunityError::BodyLength`] for a blank or too long body,
    /// [`CommunityError::BodyCharacters`] for a control character other than a line break or a tab.
    pub fn parse(raw: &str) -> Result<Self, CommunityError> {
        let actual = raw.chars().count();
        if actual > Self::MAX_CHARS || raw.trim().is_empty() {
            return Err(CommunityError::BodyLength {
                max: Self::MAX_CHARS,
                actual,
            });
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
