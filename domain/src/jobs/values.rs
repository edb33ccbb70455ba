//! Value objects of the jobs context. Each can only be built through its parsing constructor.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::JobError;

/// What a job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// Translate a document.
    Translation,
    /// Check the quality of a finished translation.
    Validation,
    /// A human edit pass over a finished translation.
    PostEdit,
    /// Illustrate a document.
    Illustration,
}

impl JobKind {
    /// Every kind.
    pub const ALL: [JobKind; 4] = [
        Self::Translation,
        Self::Validation,
        Self::PostEdit,
        Self::Illustration,
    ];

    /// The kind as stored in read models and shown by the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Translation => "translation",
            Self::Validation => "validation",
            Self::PostEdit => "post_edit",
            Self::Illustration => "illustration",
        }
    }

    /// Whether the job works on a finished parent job's result.
    pub fn needs_parent(self) -> bool {
        matches!(self, Self::Validation | Self::PostEdit)
    }

    /// Whether the job turns text of one language into another (so the languages differ).
    pub fn changes_language(self) -> bool {
        matches!(self, Self::Translation | Self::PostEdit | Self::Validation)
    }
}

/// A language tag: a 2–3 letter language, optionally a 4-letter script and/or a region
/// (2 letters or 3 digits). Normalised to the usual case: `pt-BR`, `zh-Hant`, `es-419`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LanguageCode(String);

impl LanguageCode {
    /// The longest tag as sent, surrounding whitespace included (`zho-Hant-419` is 12).
    pub const MAX_CHARS: usize = 12;

    /// Parses and normalises a language tag.
    ///
    /// # Errors
    /// [`JobError::InvalidLanguage`].
    pub fn parse(raw: &str) -> Result<Self, JobError> {
        // Surrounding whitespace is trimmed; as sent, a tag is at most `MAX_CHARS` long.
        if raw.chars().count() > Self::MAX_CHARS {
            return Err(JobError::InvalidLanguage);
        }
        let mut parts = raw.trim().split(['-', '_']);
        let language = parts.next().unwrap_or_default();
        if !(2..=3).contains(&language.len()) || !language.bytes().all(|b| b.is_ascii_alphabetic())
        {
            return Err(JobError::InvalidLanguage);
        }
        let mut tag = language.to_ascii_lowercase();
        let mut script_allowed = true;
        let mut region_allowed = true;
        for part in parts {
            let alphabetic = part.bytes().all(|b| b.is_ascii_alphabetic());
            if part.len() == 4 && alphabetic && script_allowed {
                let mut script = part.to_ascii_lowercase();
                script[..1].make_ascii_uppercase();
                tag.push('-');
                tag.push_str(&script);
                script_allowed = false;
            } else if region_allowed
                && ((part.len() == 2 && alphabetic)
                    || (part.len() == 3 && part.bytes().all(|b| b.is_ascii_digit())))
            {
                tag.push('-');
                tag.push_str(&part.to_ascii_uppercase());
                script_allowed = false;
                region_allowed = false;
            } else {
                return Err(JobError::InvalidLanguage);
            }
        }
        Ok(Self(tag))
    }

    /// The tag.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LanguageCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How urgent a job is: 0 (lowest) to 9 (highest); claimed highest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Priority(u8);

impl Priority {
    /// The priority of a job that names none.
    pub const NORMAL: Priority = Priority(5);

    /// Parses a priority.
    ///
    /// # Errors
    /// [`JobError::InvalidPriority`].
    pub fn new(value: i64) -> Result<Self, JobError> {
        u8::try_from(value)
            .ok()
            .filter(|value| *value <= 9)
            .map(Self)
            .ok_or(JobError::InvalidPriority)
    }

    /// The value.
    pub fn value(self) -> u8 {
        self.0
    }
}

/// Free-form settings a worker reads (glossary, tone, model), bounded in size.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobOptions(BTreeMap<String, String>);

impl JobOptions {
    /// At most this many keys.
    pub const MAX_KEYS: usize = 20;

    /// Checks the bounds.
    ///
    /// # Errors
    /// [`JobError::InvalidOptions`].
    pub fn new(options: BTreeMap<String, String>) -> Result<Self, JobError> {
        let fits = options.len() <= Self::MAX_KEYS
            && options.iter().all(|(key, value)| {
                (1..=64).contains(&key.chars().count()) && value.chars().count() <= 256
            });
        if fits {
            Ok(Self(options))
        } else {
            Err(JobError::InvalidOptions)
        }
    }

    /// The options.
    pub fn as_map(&self) -> &BTreeMap<String, String> {
        &self.0
    }
}

/// How often a job is attempted and how long to wait between attempts. Recorded with the job
/// when it is submitted, so replaying its history decides exactly as it did then.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPolicy {
    max_attempts: u32,
    base_delay_ms: u64,
    max_delay_ms: u64,
}

impl RetryPolicy {
    /// Checks the bounds: 1 to 100 attempts, base delay ≤ max delay.
    ///
    /// # Errors
    /// [`JobError::InvalidRetryPolicy`].
    pub fn new(max_attempts: u32, base_delay_ms: u64, max_delay_ms: u64) -> Result<Self, JobError> {
        if (1..=100).contains(&max_attempts) && base_delay_ms <= max_delay_ms {
            Ok(Self {
                max_attempts,
                base_delay_ms,
                max_delay_ms,
            })
        } else {
            Err(JobError::InvalidRetryPolicy)
        }
    }

    /// Attempts allowed per chain (a resubmission starts a new chain).
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The wait after failed attempt `attempt` (1-based): the base delay doubled per earlier
    /// attempt, capped at the maximum, then scaled by the jitter into [50 %, 100 %] of that
    /// ("equal jitter": spreads retries of jobs that failed together, yet never retries early).
    pub fn backoff(&self, attempt: u32, jitter: Jitter) -> TimeDelta {
        let doublings = attempt.saturating_sub(1).min(40);
        let exponential = self.base_delay_ms.saturating_mul(1u64 << doublings);
        let capped = exponential.min(self.max_delay_ms);
        // In u128: half of a delay near `u64::MAX` times the jitter does not fit in a u64.
        let half = u128::from(capped / 2);
        let jittered = half + half * u128::from(jitter.0) / 1000;
        TimeDelta::milliseconds(i64::try_from(jittered).unwrap_or(i64::MAX))
    }
}

/// A random draw in [0, 1000] supplied by the caller (the domain has no randomness), used to
/// spread retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jitter(u16);

impl Jitter {
    /// Clamps `permille` into [0, 1000].
    pub fn new(permille: u16) -> Self {
        Self(permille.min(1000))
    }
}

/// A worker's machine-readable failure code (`timeout`, `engine.unavailable`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ErrorCode(String);

impl ErrorCode {
    /// Parses an error code.
    ///
    /// # Errors
    /// [`JobError::InvalidErrorCode`].
    pub fn parse(raw: &str) -> Result<Self, JobError> {
        let valid = (1..=64).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b));
        if valid {
            Ok(Self(raw.to_owned()))
        } else {
            Err(JobError::InvalidErrorCode)
        }
    }

    /// The code.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Human-readable text with a length limit (an error message, a cancellation reason).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Text(String);

impl Text {
    /// The longest text kept.
    pub const MAX_LEN: usize = 1000;

    /// Trims and checks the length: at most [`Self::MAX_LEN`] characters as sent, at least one
    /// once trimmed.
    ///
    /// # Errors
    /// [`JobError::TextLength`].
    pub fn parse(raw: &str) -> Result<Self, JobError> {
        let text = raw.trim();
        if raw.chars().count() <= Self::MAX_LEN && !text.is_empty() {
            Ok(Self(text.to_owned()))
        } else {
            Err(JobError::TextLength { max: Self::MAX_LEN })
        }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why an attempt failed, as the worker reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// Machine-readable code.
    pub code: ErrorCode,
    /// What happened.
    pub message: Text,
    /// Whether another attempt may succeed.
    pub retryable: bool,
}

/// A stored document a job reads or produced: what the documents context recorded for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentRef {
    /// The document's id.
    pub document_id: Uuid,
    /// Hex sha-256 of the content.
    pub sha256: String,
    /// Size in bytes.
    pub size_bytes: u64,
    /// The content type detected at upload.
    pub content_type: String,
}

/// The finished parent of a validation or post-edit job, as the command layer found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParentJob {
    /// The parent job.
    pub job_id: Uuid,
    /// Its result, which this job works on.
    pub result: DocumentRef,
}

/// The largest count a worker may report: units of progress, characters, segments.
///
/// A trillion is far beyond any document, yet small enough that read models store a count as a
/// signed 64-bit integer and sum millions of them without overflow, and that JSON clients which
/// read numbers as doubles (exact up to 2^53) see every count exactly. The API documents it as
/// the `maximum` of each count field.
pub const MAX_COUNT: u64 = 1_000_000_000_000;

/// `value` if it is at most [`MAX_COUNT`].
fn count(field: &'static str, value: u64) -> Result<u64, JobError> {
    if value <= MAX_COUNT {
        Ok(value)
    } else {
        Err(JobError::CountTooLarge {
            field,
            max: MAX_COUNT,
            actual: value,
        })
    }
}

/// What a finished job measured: each count at most [`MAX_COUNT`].
///
/// Built only by [`JobMetrics::new`]; history is read as recorded, so metrics stored before the
/// bound existed still read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobMetrics {
    characters: u64,
    segments: u64,
}

impl JobMetrics {
    /// Checks both counts against [`MAX_COUNT`].
    ///
    /// # Errors
    /// [`JobError::CountTooLarge`] naming `characters` or `segments`.
    pub fn new(characters: u64, segments: u64) -> Result<Self, JobError> {
        Ok(Self {
            characters: count("characters", characters)?,
            segments: count("segments", segments)?,
        })
    }

    /// Characters processed.
    pub fn characters(self) -> u64 {
        self.characters
    }

    /// Segments processed.
    pub fn segments(self) -> u64 {
        self.segments
    }
}

/// A worker's hold on a job until `expires_at`; every worker call names the lease it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// Generated per claim: a worker whose lease was taken away cannot act by mistake.
    pub lease_id: Uuid,
    /// The principal that claimed.
    pub worker: String,
    /// When the lease runs out unless extended.
    pub expires_at: DateTime<Utc>,
}

/// Units of work done out of a total, as reported by the worker: each at most [`MAX_COUNT`].
///
/// Built only by [`Progress::new`]; history is read as recorded. How a report relates to the
/// total and to the previous report (a total of at least 1, never above it, never backwards) is
/// the job's rule, checked when the report is decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    done: u64,
    total: u64,
}

impl Progress {
    /// Checks both counts against [`MAX_COUNT`].
    ///
    /// # Errors
    /// [`JobError::CountTooLarge`] naming `done` or `total`.
    pub fn new(done: u64, total: u64) -> Result<Self, JobError> {
        Ok(Self {
            done: count("done", done)?,
            total: count("total", total)?,
        })
    }

    /// Units done.
    pub fn done(self) -> u64 {
        self.done
    }

    /// Units in total.
    pub fn total(self) -> u64 {
        self.total
    }
}
