//! The rules every name a person reads obeys: display names, API key names, any label one
//! principal sets and others see.
//!
//! A name is shown in lists, audit trails and notifications next to text it does not control, so
//! it must read as exactly what it is. Two kinds of character break that and no name may hold:
//! - control characters (general category Cc) and the line and paragraph separators (Zl, Zp):
//!   line breaks and terminal escapes rewrite the line a name is printed on;
//! - format characters (Cf): invisible, yet they change what is seen. Bidirectional controls
//!   reorder the text around them (`Ada`, U+202E RIGHT-TO-LEFT OVERRIDE, `nimda` is shown as
//!   `Adaadmin`: the "Trojan Source" trick), and zero-width spaces, joiners, soft hyphens and
//!   byte order marks make two different names look the same, so one user can pass for another.
//!
//! Each context keeps its own error type and maps a [`NameRefusal`] to its variants, so a client
//! sees the codes of the context it called; the rules themselves live only here.

use std::fmt;
use std::ops::RangeInclusive;

/// Every format character (general category Cf), in code point order: the same list from
/// Unicode 15.0 (the last version to add one, the Egyptian hieroglyph controls) through 18.0.
///
/// Rust's standard library exposes no general category, and one table is less than a dependency.
/// A character a later Unicode version makes Cf is refused once it is added here.
const FORMAT_CHARACTERS: &[RangeInclusive<char>] = &[
    '\u{00AD}'..='\u{00AD}',   // soft hyphen
    '\u{0600}'..='\u{0605}',   // Arabic number signs
    '\u{061C}'..='\u{061C}',   // Arabic letter mark (bidirectional)
    '\u{06DD}'..='\u{06DD}',   // Arabic end of ayah
    '\u{070F}'..='\u{070F}',   // Syriac abbreviation mark
    '\u{0890}'..='\u{0891}',   // Arabic pound and piastre marks above
    '\u{08E2}'..='\u{08E2}',   // Arabic disputed end of ayah
    '\u{180E}'..='\u{180E}',   // Mongolian vowel separator
    '\u{200B}'..='\u{200F}',   // zero-width space, non-joiner, joiner; LRM, RLM
    '\u{202A}'..='\u{202E}',   // bidirectional embeddings and overrides
    '\u{2060}'..='\u{2064}',   // word joiner, invisible operators
    '\u{2066}'..='\u{206F}',   // bidirectional isolates; deprecated format characters
    '\u{FEFF}'..='\u{FEFF}',   // zero-width no-break space (byte order mark)
    '\u{FFF9}'..='\u{FFFB}',   // interlinear annotation
    '\u{110BD}'..='\u{110BD}', // Kaithi number sign
    '\u{110CD}'..='\u{110CD}', // Kaithi number sign above
    '\u{13430}'..='\u{1343F}', // Egyptian hieroglyph format controls
    '\u{1BCA0}'..='\u{1BCA3}', // shorthand format controls
    '\u{1D173}'..='\u{1D17A}', // musical symbol format controls
    '\u{E0001}'..='\u{E0001}', // language tag
    '\u{E0020}'..='\u{E007F}', // tag characters
];

/// Whether `c` breaks or rewrites the line a name is printed on: a control character (general
/// category Cc) or the line or paragraph separator (U+2028, U+2029, the only characters of Zl and
/// Zp).
pub fn is_control_character(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')
}

/// Whether `c` is a format character (general category Cf): invisible, but changing how the
/// text around it is shown.
pub fn is_format_character(c: char) -> bool {
    FORMAT_CHARACTERS.iter().any(|range| range.contains(&c))
}

/// A refused character, shown as its code point (`U+202E`): printing the character itself in an
/// error message would do to the message what it was refused for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodePoint(char);

impl CodePoint {
    /// The code point of `c`.
    pub const fn of(c: char) -> Self {
        Self(c)
    }

    /// The character.
    pub fn as_char(self) -> char {
        self.0
    }
}

impl fmt::Display for CodePoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "U+{:04X}", u32::from(self.0))
    }
}

/// Why a name was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRefusal {
    /// Too short or too long, in characters, after trimming.
    Length {
        /// Fewest characters accepted.
        min: usize,
        /// Most characters accepted.
        max: usize,
        /// Characters given.
        actual: usize,
    },
    /// A control character (line break, escape), the first one found.
    Control(CodePoint),
    /// An invisible format character (bidirectional control, zero-width character, soft
    /// hyphen), the first one found.
    Invisible(CodePoint),
}

/// Trims `raw` and checks it against the rules of every name: `chars` characters long, no
/// control characters, no format characters.
///
/// # Errors
/// [`NameRefusal`] saying which rule the name breaks (length first).
pub fn parse_name(raw: &str, chars: RangeInclusive<usize>) -> Result<&str, NameRefusal> {
    let name = raw.trim();
    // Surrounding whitespace is trimmed, but counts against the maximum: a name is never longer
    // as sent than the rule says.
    let sent = raw.chars().count();
    let actual = if sent > *chars.end() {
        sent
    } else {
        name.chars().count()
    };
    if !chars.contains(&actual) {
        return Err(NameRefusal::Length {
            min: *chars.start(),
            max: *chars.end(),
            actual,
        });
    }
    if let Some(control) = name.chars().find(|c| is_control_character(*c)) {
        return Err(NameRefusal::Control(CodePoint(control)));
    }
    if let Some(invisible) = name.chars().find(|c| is_format_character(*c)) {
        return Err(NameRefusal::Invisible(CodePoint(invisible)));
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The characters the rule exists for, each with a name a reviewer recognises.
    const BIDI_CONTROLS: [char; 12] = [
        '\u{061C}', '\u{200E}', '\u{200F}', '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}',
        '\u{202E}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}',
    ];
    const INVISIBLE: [char; 10] = [
        '\u{00AD}',
        '\u{200B}',
        '\u{200C}',
        '\u{200D}',
        '\u{2060}',
        '\u{2061}',
        '\u{2064}',
        '\u{FEFF}',
        '\u{180E}',
        '\u{E0041}',
    ];

    #[test]
    fn bidirectional_controls_and_invisible_characters_are_refused_anywhere_in_a_name() {
        for c in BIDI_CONTROLS.into_iter().chain(INVISIBLE) {
            for name in [format!("{c}Ada"), format!("Ada{c}"), format!("A{c}da")] {
                assert_eq!(
                    parse_name(&name, 1..=64),
                    Err(NameRefusal::Invisible(CodePoint(c))),
                    "{:?}",
                    CodePoint(c)
                );
            }
        }
    }

    #[test]
    fn every_range_of_the_table_is_refused_at_both_ends_and_its_neighbours_are_not() {
        for range in FORMAT_CHARACTERS {
            assert!(is_format_character(*range.start()), "{range:?}");
            assert!(is_format_character(*range.end()), "{range:?}");
            let before = char::from_u32(u32::from(*range.start()) - 1).expect("a char");
            let after = char::from_u32(u32::from(*range.end()) + 1).expect("a char");
            for neighbour in [before, after] {
                assert!(!is_format_character(neighbour), "{neighbour:?}");
            }
        }
        // In order, and neither overlapping nor touching (each range is as wide as it can be),
        // so the neighbours above are outside the table and the comments read as a table.
        for pair in FORMAT_CHARACTERS.windows(2) {
            let gap = u32::from(*pair[1].start()) - u32::from(*pair[0].end());
            assert!(gap > 1, "{pair:?}");
        }
    }

    #[test]
    fn names_in_every_script_are_accepted() {
        for name in [
            "Ada Lovelace",
            "Zoë Ñúñez-O'Brien",
            "محمد",
            "דוד",
            "李小龍",
            "Ярослава",
            "ગુજરાતી",
            "🦀 Ferris",
        ] {
            assert_eq!(parse_name(name, 1..=64), Ok(name), "{name}");
        }
    }

    #[test]
    fn length_is_counted_in_characters_after_trimming_and_checked_first() {
        assert_eq!(parse_name(" Ada ", 1..=5), Ok("Ada"));
        // Padding counts against the maximum: as sent, a name is never longer than the rule.
        assert_eq!(
            parse_name("  Ada \n", 1..=3),
            Err(NameRefusal::Length {
                min: 1,
                max: 3,
                actual: 7
            })
        );
        assert_eq!(
            parse_name(" \t ", 1..=3),
            Err(NameRefusal::Length {
                min: 1,
                max: 3,
                actual: 0
            })
        );
        assert_eq!(parse_name("ééé", 3..=3), Ok("ééé"));
        assert_eq!(
            parse_name("éééé", 2..=3),
            Err(NameRefusal::Length {
                min: 2,
                max: 3,
                actual: 4
            })
        );
        assert_eq!(
            parse_name("é", 2..=3),
            Err(NameRefusal::Length {
                min: 2,
                max: 3,
                actual: 1
            })
        );
        assert_eq!(
            parse_name("A\u{202E}\u{200B}\u{0}", 1..=3),
            Err(NameRefusal::Length {
                min: 1,
                max: 3,
                actual: 4
            })
        );
    }

    #[test]
    fn control_characters_are_refused_before_invisible_ones() {
        assert_eq!(
            parse_name("a\u{200B}b\u{1B}c", 1..=64),
            Err(NameRefusal::Control(CodePoint('\u{1B}')))
        );
        assert_eq!(
            parse_name("a\nb", 1..=64),
            Err(NameRefusal::Control(CodePoint('\n')))
        );
        assert_eq!(
            parse_name("a\u{85}b", 1..=64),
            Err(NameRefusal::Control(CodePoint('\u{85}')))
        );
        assert_eq!(
            parse_name("Ada\u{2028}Lovelace", 1..=20),
            Err(NameRefusal::Control(CodePoint('\u{2028}')))
        );
        assert_eq!(
            parse_name("Ada\u{2029}x", 1..=10),
            Err(NameRefusal::Control(CodePoint('\u{2029}')))
        );
    }

    #[test]
    fn a_refused_character_is_shown_as_its_code_point() {
        assert_eq!(CodePoint('\u{202E}').to_string(), "U+202E");
        assert_eq!(CodePoint('\u{AD}').to_string(), "U+00AD");
        assert_eq!(CodePoint('\u{E0041}').to_string(), "U+E0041");
        assert_eq!(CodePoint('\u{FEFF}').as_char(), '\u{FEFF}');
    }

    proptest! {
        /// An accepted name is trimmed, within bounds, and holds no control or format character;
        /// parsing it again gives it back.
        #[test]
        fn accepted_names_are_visible_fixed_points(raw in "\\PC{0,20}|.{0,20}", min in 0usize..4, span in 0usize..20) {
            let max = min + span;
            if let Ok(name) = parse_name(&raw, min..=max) {
                prop_assert!((min..=max).contains(&name.chars().count()));
                prop_assert_eq!(name, name.trim());
                prop_assert!(!name.chars().any(|c| c.is_control() || is_format_character(c)));
                prop_assert_eq!(parse_name(name, min..=max), Ok(name));
            }
        }

        /// Any format character spliced into an otherwise good name is found and named.
        #[test]
        fn a_spliced_format_character_is_named(
            range in prop::sample::select(FORMAT_CHARACTERS.to_vec()),
            offset in 0u32..200,
            at in 0usize..4,
        ) {
            let span = u32::from(*range.end()) - u32::from(*range.start());
            let c = char::from_u32(u32::from(*range.start()) + offset % (span + 1)).expect("a char");
            let mut name: Vec<char> = "Ada".chars().collect();
            name.insert(at.min(name.len()), c);
            let name: String = name.into_iter().collect();
            prop_assert_eq!(
                parse_name(&name, 1..=64),
                Err(NameRefusal::Invisible(CodePoint(c)))
            );
        }
    }
}
