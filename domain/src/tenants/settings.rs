//! A tenant's settings and names, each validated with an error that names what is wrong.

use serde::{Deserialize, Serialize};

use super::TenantError;
use crate::documents::ContentType;
use crate::names::{parse_name, NameRefusal};

/// A tenant's settings. Each one left out follows the server's configuration. The document
/// size and types narrow what the server accepts (a tenant never gets a larger upload than the
/// server takes); the others replace the server's values.
///
/// Stored in events: unknown fields are ignored when reading, so history written by a newer
/// version still reads (the API and the command line refuse unknown settings).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantSettings {
    /// Command requests (POST, PUT, PATCH, DELETE) per principal per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commands_per_minute: Option<u32>,
    /// Query requests (GET) per principal per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queries_per_minute: Option<u32>,
    /// Largest document upload, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_max_bytes: Option<u64>,
    /// How many times a job is attempted before it is dead-lettered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_max_attempts: Option<u32>,
    /// How long a worker's claim on a job lasts without a heartbeat, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_lease_secs: Option<u64>,
    /// Quota: jobs submitted per UTC day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota_jobs_per_day: Option<u64>,
    /// Quota: bytes of documents stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota_stored_bytes: Option<u64>,
    /// The document types accepted, each at most once (the server's `documents.allowed_types`
    /// still applies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_types: Option<Vec<ContentType>>,
    /// Whether the community's public pages may be open: `false` closes them, whatever the
    /// tenant's admins switched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_community_pages: Option<bool>,
}

/// A setting outside its bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingRefused {
    /// The setting, as named in [`TenantSettings`].
    pub setting: &'static str,
    /// What the setting must be.
    pub rule: &'static str,
}

impl TenantSettings {
    /// Bounds of each setting: `(name, smallest, largest, rule)`.
    pub const BOUNDS: [(&'static str, u64, u64, &'static str); 7] = [
        (
            "commands_per_minute",
            1,
            1_000_000,
            "1 to 1000000 requests per minute",
        ),
        (
            "queries_per_minute",
            1,
            1_000_000,
            "1 to 1000000 requests per minute",
        ),
        (
            "document_max_bytes",
            1,
            1 << 40,
            "1 byte to 1 TiB (the server's own limit still applies)",
        ),
        ("job_max_attempts", 1, 100, "1 to 100 attempts"),
        ("job_lease_secs", 5, 86_400, "5 to 86400 seconds"),
        ("quota_jobs_per_day", 0, 1 << 40, "0 to 2^40 jobs per day"),
        ("quota_stored_bytes", 0, 1 << 50, "0 to 2^50 bytes"),
    ];

    /// The settings, each number checked against [`Self::BOUNDS`], and the document types.
    ///
    /// # Errors
    /// Every setting out of bounds, in the order of [`Self::BOUNDS`], then the document types.
    pub fn validated(self) -> Result<Self, Vec<SettingRefused>> {
        let mut refused: Vec<SettingRefused> = self
            .values()
            .into_iter()
            .zip(Self::BOUNDS)
            .filter_map(|(value, (setting, min, max, rule))| {
                value
                    .filter(|value| !(min..=max).contains(value))
                    .map(|_| SettingRefused { setting, rule })
            })
            .collect();
        if let Some(types) = &self.document_types {
            let unique = types
                .iter()
                .enumerate()
                .all(|(i, kind)| !types[..i].contains(kind));
            if types.is_empty() || !unique {
                refused.push(SettingRefused {
                    setting: "document_types",
                    rule: "at least one document type, each at most once",
                });
            }
        }
        if refused.is_empty() {
            Ok(self)
        } else {
            Err(refused)
        }
    }

    /// Each setting's value, in the order of [`Self::BOUNDS`].
    fn values(&self) -> [Option<u64>; 7] {
        [
            self.commands_per_minute.map(u64::from),
            self.queries_per_minute.map(u64::from),
            self.document_max_bytes,
            self.job_max_attempts.map(u64::from),
            self.job_lease_secs,
            self.quota_jobs_per_day,
            self.quota_stored_bytes,
        ]
    }
}

/// A quota that is used up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaExceeded {
    /// The quota, as named in [`TenantSettings`].
    pub quota: &'static str,
    /// Its limit.
    pub limit: u64,
    /// What is used of it.
    pub used: u64,
}

impl TenantSettings {
    /// Whether one more job may be submitted, `submitted_today` having been.
    ///
    /// # Errors
    /// [`QuotaExceeded`] naming `quota_jobs_per_day`.
    pub fn admit_job(&self, submitted_today: u64) -> Result<(), QuotaExceeded> {
        match self.quota_jobs_per_day {
            Some(limit) if submitted_today >= limit => Err(QuotaExceeded {
                quota: "quota_jobs_per_day",
                limit,
                used: submitted_today,
            }),
            _ => Ok(()),
        }
    }

    /// How many more bytes may be stored, `stored` being; `None` without a quota.
    ///
    /// # Errors
    /// [`QuotaExceeded`] naming `quota_stored_bytes` when nothing is left.
    pub fn storage_left(&self, stored: u64) -> Result<Option<u64>, QuotaExceeded> {
        match self.quota_stored_bytes {
            None => Ok(None),
            Some(limit) if stored >= limit => Err(QuotaExceeded {
                quota: "quota_stored_bytes",
                limit,
                used: stored,
            }),
            Some(limit) => Ok(Some(limit - stored)),
        }
    }
}

/// A tenant's display name: 1 to 100 characters, trimmed, nothing a reader cannot see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TenantName(String);

impl TenantName {
    /// Longest accepted name, in characters.
    pub const MAX_CHARS: usize = 100;

    /// Parses a display name.
    ///
    /// # Errors
    /// [`TenantError::InvalidName`] saying which rule it breaks.
    pub fn parse(raw: &str) -> Result<Self, TenantError> {
        parse_name(raw, 1..=Self::MAX_CHARS)
            .map(|name| Self(name.to_owned()))
            .map_err(|refusal| TenantError::InvalidName {
                reason: refusal_reason(refusal),
            })
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why a tenant was suspended: 1 to 500 characters, nothing a reader cannot see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SuspensionReason(String);

impl SuspensionReason {
    /// Longest accepted reason, in characters.
    pub const MAX_CHARS: usize = 500;

    /// Parses a reason.
    ///
    /// # Errors
    /// [`TenantError::InvalidReason`] saying which rule it breaks.
    pub fn parse(raw: &str) -> Result<Self, TenantError> {
        parse_name(raw, 1..=Self::MAX_CHARS)
            .map(|reason| Self(reason.to_owned()))
            .map_err(|refusal| TenantError::InvalidReason {
                reason: refusal_reason(refusal),
            })
    }

    /// The reason.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn refusal_reason(refusal: NameRefusal) -> &'static str {
    match refusal {
        NameRefusal::Length { .. } => "too short or too long",
        NameRefusal::Control(_) => "contains a control character",
        NameRefusal::Invisible(_) => "contains an invisible or bidirectional character",
    }
}
