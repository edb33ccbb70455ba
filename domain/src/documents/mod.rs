//! Documents: files users and workers upload for jobs to read and produce.
//!
//! The bytes live in an object store under a generated key; the event store records who
//! uploaded what, with its detected content type, size and sha-256, so a download can be
//! checked against history. The content type is decided here from the first bytes
//! ([`ContentType::sniff`]), never from what the client declared.

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::aggregate::Decider;
use crate::error::{DomainError, ErrorKind};
use crate::jobs::DocumentRef;

mod policy;

#[cfg(test)]
mod stored_events;

pub use policy::DocumentAction;

/// The kinds of document the platform accepts, recognised by content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContentType {
    /// UTF-8 text.
    PlainText,
    /// UTF-8 text the client declared as markdown (markdown has no signature of its own).
    Markdown,
    /// SubRip subtitles.
    Srt,
    /// WebVTT subtitles.
    WebVtt,
    /// A JSON document.
    Json,
    /// A Word document (an Office Open XML zip with a `word/` part).
    Docx,
    /// A PDF document.
    Pdf,
}

impl ContentType {
    /// Every accepted type.
    pub const ALL: [ContentType; 7] = [
        Self::PlainText,
        Self::Markdown,
        Self::Srt,
        Self::WebVtt,
        Self::Json,
        Self::Docx,
        Self::Pdf,
    ];

    /// The media type served on download.
    pub fn mime(self) -> &'static str {
        match self {
            Self::PlainText => "text/plain; charset=utf-8",
            Self::Markdown => "text/markdown; charset=utf-8",
            Self::Srt => "application/x-subrip",
            Self::WebVtt => "text/vtt; charset=utf-8",
            Self::Json => "application/json",
            Self::Docx => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            Self::Pdf => "application/pdf",
        }
    }

    /// Its short name, as configured in allow lists and shown by the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PlainText => "plain_text",
            Self::Markdown => "markdown",
            Self::Srt => "srt",
            Self::WebVtt => "webvtt",
            Self::Json => "json",
            Self::Docx => "docx",
            Self::Pdf => "pdf",
        }
    }

    /// Looks a type up by its short name.
    pub fn by_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }

    /// How many leading bytes [`ContentType::sniff`] wants to see.
    pub const SNIFF_LEN: usize = 8192;

    /// Recognises a document by its first bytes (up to [`ContentType::SNIFF_LEN`]); the
    /// declared media type only tells markdown from plain text, which no signature can.
    ///
    /// # Errors
    /// [`DocumentError::Empty`] for no bytes, [`DocumentError::UnsupportedContent`] for
    /// anything not recognised (images, archives, executables, binary data).
    pub fn sniff(head: &[u8], declared: Option<&str>) -> Result<Self, DocumentError> {
        if head.is_empty() {
            return Err(DocumentError::Empty);
        }
        if head.starts_with(b"%PDF-") {
            return Ok(Self::Pdf);
        }
        if head.starts_with(b"PK\x03\x04") {
            let has_word_part = head.windows(5).any(|window| window == b"word/");
            return if has_word_part {
                Ok(Self::Docx)
            } else {
                Err(DocumentError::UnsupportedContent)
            };
        }
        let text = text_prefix(head).ok_or(DocumentError::UnsupportedContent)?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        if text.trim().is_empty() {
            return Err(DocumentError::Empty);
        }
        if text.starts_with("WEBVTT") {
            return Ok(Self::WebVtt);
        }
        if looks_like_srt(text) {
            return Ok(Self::Srt);
        }
        if text.trim_start().starts_with(['{', '[']) {
            return Ok(Self::Json);
        }
        let markdown = declared.is_some_and(|declared| {
            let essence = declared.split(';').next().unwrap_or_default().trim();
            essence.eq_ignore_ascii_case("text/markdown")
                || essence.eq_ignore_ascii_case("text/x-markdown")
        });
        Ok(if markdown {
            Self::Markdown
        } else {
            Self::PlainText
        })
    }
}

/// The bytes as text, if they are UTF-8 without control characters (other than tab, line
/// breaks and form feed). A character cut off by the end of the sniffed prefix is fine.
fn text_prefix(head: &[u8]) -> Option<&str> {
    let text = match std::str::from_utf8(head) {
        Ok(text) => text,
        Err(error) if error.error_len().is_none() => {
            std::str::from_utf8(&head[..error.valid_up_to()]).ok()?
        }
        Err(_) => return None,
    };
    let printable = text
        .chars()
        .all(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r' | '\u{c}'));
    printable.then_some(text)
}

/// A cue number line followed by `hh:mm:ss,mmm --> `.
fn looks_like_srt(text: &str) -> bool {
    let mut lines = text
        .lines()
        .map(str::trim)
        .skip_while(|line| line.is_empty());
    let (Some(number), Some(timing)) = (lines.next(), lines.next()) else {
        return false;
    };
    let timing = timing.as_bytes();
    !number.is_empty()
        && number.bytes().all(|b| b.is_ascii_digit())
        && timing.len() >= 17
        && timing[2] == b':'
        && timing[5] == b':'
        && timing[8] == b','
        && timing[12..].starts_with(b" -->")
}

/// Why a document command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    /// The upload had no content.
    #[error("the document is empty")]
    Empty,
    /// The content is not one of the accepted kinds, whatever type was declared.
    #[error("the content is not an accepted document type (plain text, markdown, subtitles, JSON, docx, PDF)")]
    UnsupportedContent,
    /// The content is recognised but not allowed by this deployment.
    #[error("documents of type {0} are not allowed here")]
    NotAllowed(&'static str),
    /// No document with this id exists.
    #[error("no such document")]
    NotFound,
    /// A document with this id was already uploaded.
    #[error("a document with this id was already uploaded")]
    AlreadyUploaded,
}

impl DomainError for DocumentError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Empty | Self::UnsupportedContent | Self::NotAllowed(_) => ErrorKind::Invalid,
            Self::NotFound => ErrorKind::NotFound,
            Self::AlreadyUploaded => ErrorKind::Conflict,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Empty => "empty_document",
            Self::UnsupportedContent => "unsupported_content",
            Self::NotAllowed(_) => "content_type_not_allowed",
            Self::NotFound => "document_not_found",
            Self::AlreadyUploaded => "document_already_uploaded",
        }
    }
}

/// A stored document, as recorded at upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredDocument {
    /// The uploading account (a user, or an API key): who may download it besides staff.
    pub owner: Uuid,
    /// The uploading principal.
    pub uploaded_by: String,
    /// The detected type.
    pub content_type: ContentType,
    /// Size in bytes.
    pub size_bytes: u64,
    /// Hex sha-256 of the bytes.
    pub sha256: String,
    /// Where the bytes are in the object store (generated, never from the client).
    pub storage_key: String,
}

/// The document aggregate.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub enum Document {
    /// Nothing uploaded under this id.
    #[default]
    Missing,
    /// An uploaded document.
    Uploaded(StoredDocument),
}

impl Document {
    /// The reference a job stores, for document `id`.
    pub fn reference(&self, id: Uuid) -> Option<DocumentRef> {
        match self {
            Self::Missing => None,
            Self::Uploaded(stored) => Some(DocumentRef {
                document_id: id,
                sha256: stored.sha256.clone(),
                size_bytes: stored.size_bytes,
                content_type: stored.content_type.as_str().to_owned(),
            }),
        }
    }
}

/// What can be asked of a document.
#[derive(Debug, Clone, PartialEq)]
pub enum DocumentCommand {
    /// Record bytes already written to the object store.
    Upload {
        /// What was stored.
        document: StoredDocument,
        /// When.
        at: DateTime<Utc>,
    },
}

/// What happened to a document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DocumentEvent {
    /// A document was uploaded.
    DocumentUploaded {
        /// What was stored.
        document: StoredDocument,
        /// When.
        at: DateTime<Utc>,
    },
}

impl DomainEvent for DocumentEvent {
    /// The stored event type. Part of the stored data: never change it.
    fn event_type(&self) -> String {
        "DocumentUploaded".to_owned()
    }

    /// Changes only together with an upcaster for the previous version.
    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

impl Decider for Document {
    const TYPE: &'static str = "Document";
    const SNAPSHOT_SCHEMA: u32 = 1;
    type Command = DocumentCommand;
    type Event = DocumentEvent;
    type Error = DocumentError;

    fn decide(&self, command: DocumentCommand) -> Result<Vec<DocumentEvent>, DocumentError> {
        match (self, command) {
            (Self::Missing, DocumentCommand::Upload { document, at }) => {
                Ok(vec![DocumentEvent::DocumentUploaded { document, at }])
            }
            (Self::Uploaded(_), DocumentCommand::Upload { .. }) => {
                Err(DocumentError::AlreadyUploaded)
            }
        }
    }

    fn evolve(&mut self, event: &DocumentEvent) {
        let DocumentEvent::DocumentUploaded { document, .. } = event;
        *self = Self::Uploaded(document.clone());
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use cqrs_es::test::TestFramework;

    use super::*;
    use crate::aggregate::{replay, Guarded, Rejection, Versioned};

    fn sniff(bytes: &[u8]) -> Result<ContentType, DocumentError> {
        ContentType::sniff(bytes, None)
    }

    #[test]
    fn recognises_accepted_types_by_content() {
        assert_eq!(sniff(b"%PDF-1.7\n..."), Ok(ContentType::Pdf));
        assert_eq!(
            sniff(b"PK\x03\x04....[Content_Types].xml....word/document.xml"),
            Ok(ContentType::Docx)
        );
        assert_eq!(
            sniff(b"WEBVTT\n\n00:00.000 --> 00:01.000\nHi"),
            Ok(ContentType::WebVtt)
        );
        assert_eq!(
            sniff(b"1\n00:00:01,000 --> 00:00:02,000\nHello\n"),
            Ok(ContentType::Srt)
        );
        assert_eq!(sniff(b"  {\"a\": 1}"), Ok(ContentType::Json));
        assert_eq!(sniff("Grüße\n".as_bytes()), Ok(ContentType::PlainText));
        assert_eq!(
            ContentType::sniff(b"# Title\n", Some("text/markdown; charset=utf-8")),
            Ok(ContentType::Markdown)
        );
        // A multi-byte character cut off by the sniffed prefix is still text.
        assert_eq!(sniff(&"aé".as_bytes()[..2]), Ok(ContentType::PlainText));
    }

    #[test]
    fn refuses_other_content_whatever_was_declared() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        assert_eq!(
            ContentType::sniff(png, Some("text/plain")),
            Err(DocumentError::UnsupportedContent)
        );
        let zip = b"PK\x03\x04 just an archive";
        assert_eq!(sniff(zip), Err(DocumentError::UnsupportedContent));
        assert_eq!(
            sniff(b"MZ\x90\0\x03\0"),
            Err(DocumentError::UnsupportedContent)
        );
        assert_eq!(sniff(b""), Err(DocumentError::Empty));
        assert_eq!(sniff(b" \n\t"), Err(DocumentError::Empty));
    }

    #[test]
    fn text_that_is_not_subtitles_stays_text() {
        // Each breaks one part of the SubRip cue signature.
        for near_miss in [
            "1a\n00:00:01,000 --> 00:00:02,000\n",
            "1\n00:00:01,000 -->\n",
            "1\n00-00:01,000 --> 00:00:02,000\n",
            "1\n00:00-01,000 --> 00:00:02,000\n",
            "1\n00:00:01.000 --> 00:00:02.000\n",
            "1\n00:00:01,000 ==> 00:00:02,000\n",
            "1\n",
            "Dear Ada,\nthank you.\n",
        ] {
            assert_eq!(
                sniff(near_miss.as_bytes()),
                Ok(ContentType::PlainText),
                "{near_miss:?}"
            );
        }
        assert_eq!(
            sniff(b"\n\n 12 \n00:00:01,000 --> 00:00:02,000\nHi"),
            Ok(ContentType::Srt)
        );
    }

    #[test]
    fn markdown_is_only_what_the_client_declared_as_such() {
        for declared in ["text/markdown", "TEXT/X-Markdown ; charset=utf-8"] {
            assert_eq!(
                ContentType::sniff(b"# Title\n", Some(declared)),
                Ok(ContentType::Markdown),
                "{declared}"
            );
        }
        for declared in [None, Some("text/plain"), Some("text/markdownish")] {
            assert_eq!(
                ContentType::sniff(b"# Title\n", declared),
                Ok(ContentType::PlainText),
                "{declared:?}"
            );
        }
    }

    #[test]
    fn invalid_utf8_or_control_characters_are_not_text() {
        assert_eq!(
            sniff(b"abc\xff def"),
            Err(DocumentError::UnsupportedContent)
        );
        assert_eq!(sniff(b"abc\x01def"), Err(DocumentError::UnsupportedContent));
        assert_eq!(sniff(b"a\tb\r\n\x0cc"), Ok(ContentType::PlainText));
        // A byte order mark is not content.
        assert_eq!(sniff("\u{feff} \n".as_bytes()), Err(DocumentError::Empty));
        assert_eq!(
            sniff("\u{feff}WEBVTT\n".as_bytes()),
            Ok(ContentType::WebVtt)
        );
    }

    #[test]
    fn every_type_has_a_short_name_and_a_media_type() {
        for kind in ContentType::ALL {
            assert_eq!(ContentType::by_name(kind.as_str()), Some(kind));
        }
        let names: Vec<&str> = ContentType::ALL.iter().map(|kind| kind.as_str()).collect();
        assert_eq!(
            names,
            [
                "plain_text",
                "markdown",
                "srt",
                "webvtt",
                "json",
                "docx",
                "pdf"
            ]
        );
        let mimes: Vec<&str> = ContentType::ALL.iter().map(|kind| kind.mime()).collect();
        assert_eq!(
            mimes,
            [
                "text/plain; charset=utf-8",
                "text/markdown; charset=utf-8",
                "application/x-subrip",
                "text/vtt; charset=utf-8",
                "application/json",
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                "application/pdf",
            ]
        );
        assert_eq!(ContentType::by_name("exe"), None);
    }

    #[test]
    fn error_codes_and_kinds_are_stable() {
        let cases = [
            (DocumentError::Empty, "empty_document", ErrorKind::Invalid),
            (
                DocumentError::UnsupportedContent,
                "unsupported_content",
                ErrorKind::Invalid,
            ),
            (
                DocumentError::NotAllowed("pdf"),
                "content_type_not_allowed",
                ErrorKind::Invalid,
            ),
            (
                DocumentError::NotFound,
                "document_not_found",
                ErrorKind::NotFound,
            ),
            (
                DocumentError::AlreadyUploaded,
                "document_already_uploaded",
                ErrorKind::Conflict,
            ),
        ];
        for (error, code, kind) in cases {
            assert_eq!((error.code(), error.kind()), (code, kind), "{error:?}");
        }
    }

    type Given = TestFramework<Versioned<Document>>;

    fn stored() -> StoredDocument {
        StoredDocument {
            owner: Uuid::from_u128(1),
            uploaded_by: "user:1".to_owned(),
            content_type: ContentType::Srt,
            size_bytes: 1_234,
            sha256: "ab".repeat(32),
            storage_key: "acme/2".to_owned(),
        }
    }

    fn uploaded() -> DocumentEvent {
        DocumentEvent::DocumentUploaded {
            document: stored(),
            at: Utc.with_ymd_and_hms(2026, 11, 22, 9, 0, 0).unwrap(),
        }
    }

    fn upload() -> Guarded<DocumentCommand> {
        let DocumentEvent::DocumentUploaded { document, at } = uploaded();
        Guarded::new(DocumentCommand::Upload { document, at })
    }

    #[test]
    fn a_document_is_uploaded_once() {
        Given::with(())
            .given_no_previous_events()
            .when(upload())
            .then_expect_events(vec![uploaded()]);
        Given::with(())
            .given(vec![uploaded()])
            .when(upload())
            .then_expect_error(Rejection::Domain(DocumentError::AlreadyUploaded));
    }

    #[test]
    fn an_uploaded_document_is_referenced_as_recorded() {
        let id = Uuid::from_u128(2);
        assert_eq!(Document::Missing.reference(id), None);
        let document = replay::<Document>(&[uploaded()]);
        assert_eq!(document.state(), &Document::Uploaded(stored()));
        assert_eq!(
            document.state().reference(id),
            Some(DocumentRef {
                document_id: id,
                sha256: "ab".repeat(32),
                size_bytes: 1_234,
                content_type: "srt".to_owned(),
            })
        );
    }

    proptest::proptest! {
        /// A snapshot after any event of any history, resumed with the rest, is the replay.
        #[test]
        fn snapshots_resume_to_the_replay(uploads in 0..4usize) {
            let command = || upload().command;
            let history = crate::aggregate::history_of::<Document>((0..uploads).map(|_| command()));
            crate::aggregate::assert_snapshots_resume::<Document>(&history);
        }
    }
}
