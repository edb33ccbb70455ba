//! Configuration: defaults < optional TOML file < environment, validated before anything starts.
//!
//! Environment variables: `APP_<SECTION>__<KEY>` (e.g. `APP_HTTP__PORT=8080`), plus the
//! conventional `DATABASE_URL` and `NATS_URL`. The file is named by `--config` or `APP_CONFIG`.

use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

/// A value that must never appear in logs or error messages (URLs with passwords).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself; use only where it is needed, never to print.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() {
            "\"\""
        } else {
            "\"<redacted>\""
        })
    }
}

/// All settings of the backend.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// The HTTP listener.
    pub http: HttpSettings,
    /// The Postgres event store and read models.
    pub database: DatabaseSettings,
    /// NATS JetStream.
    pub nats: NatsSettings,
    /// The relay from the event store to JetStream.
    pub relay: WorkerSettings,
    /// The projection builders.
    pub projections: ProjectionSettings,
    /// Queries.
    pub queries: QuerySettings,
    /// Authentication.
    pub auth: AuthSettings,
    /// Rate limits.
    pub rate_limit: RateLimitSettings,
    /// Logging.
    pub log: LogSettings,
    /// Translation jobs: leases, retries, the process manager.
    pub jobs: JobSettings,
    /// Document uploads and their storage.
    pub documents: DocumentSettings,
}

/// Translation jobs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JobSettings {
    /// How long a claim (and each heartbeat) holds a job.
    pub lease_secs: u64,
    /// Attempts per chain before a job is dead-lettered (1 to 100).
    pub max_attempts: u32,
    /// Wait before the first retry; doubled per attempt, with jitter.
    pub retry_base_delay_ms: u64,
    /// Longest wait between attempts.
    pub retry_max_delay_ms: u64,
    /// Run the process manager (lease expiry and retry timers) in this process.
    pub scheduler_enabled: bool,
    /// How often the process manager looks for due timers.
    pub scheduler_tick_ms: u64,
}

/// Where uploaded documents are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentStoreKind {
    /// A directory on the local filesystem (`documents.local_path`).
    Local,
    /// An S3-compatible bucket (`documents.s3_*`).
    S3,
}

/// Document uploads and their storage.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DocumentSettings {
    /// Largest accepted document, in bytes.
    pub max_bytes: u64,
    /// Accepted types by short name: plain_text, markdown, srt, webvtt, json, docx, pdf.
    pub allowed_types: Vec<String>,
    /// Which store.
    pub store: DocumentStoreKind,
    /// The directory of the local store (created when missing).
    pub local_path: String,
    /// The bucket of the S3 store.
    pub s3_bucket: String,
    /// The S3 endpoint (for S3-compatible services); AWS when empty.
    pub s3_endpoint: String,
    /// The S3 region.
    pub s3_region: String,
    /// The S3 access key id.
    pub s3_access_key_id: Secret,
    /// The S3 secret access key.
    pub s3_secret_access_key: Secret,
    /// Allow a plain-HTTP endpoint (local S3-compatible services only).
    pub s3_allow_http: bool,
}

/// The HTTP listener.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    /// Address to bind; `127.0.0.1` unless deliberately exposed.
    pub host: IpAddr,
    /// Port to bind; 0 picks a free one (tests).
    pub port: u16,
    /// Largest accepted request body, in bytes.
    pub body_limit_bytes: usize,
    /// Longest a request may take before it is answered with a timeout.
    pub request_timeout_ms: u64,
    /// Browser origins allowed by CORS (exact matches; never `*`).
    pub cors_allowed_origins: Vec<String>,
    /// Send `Strict-Transport-Security`: set when clients reach the API over TLS (at a proxy).
    pub hsts: bool,
}

/// The Postgres connection.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSettings {
    /// `postgres://…` (env `DATABASE_URL`).
    pub url: Secret,
    /// Pool size.
    pub max_connections: u32,
    /// Upper bound of any statement; also bounds how long a writer can hold the feed's horizon.
    pub statement_timeout_ms: u64,
    /// Upper bound of an idle open transaction (same reason).
    pub idle_in_transaction_timeout_ms: u64,
    /// Apply pending migrations at start-up.
    pub migrate_on_start: bool,
}

/// The NATS connection and the events stream.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NatsSettings {
    /// `nats://host:port` (env `NATS_URL`).
    pub url: Secret,
    /// The JetStream stream holding all events.
    pub stream: String,
    /// Subject prefix of that stream.
    pub subject_prefix: String,
    /// Re-publishes of the same event within this window are dropped by JetStream.
    pub duplicate_window_secs: u64,
    /// How long JetStream keeps events (Postgres keeps them forever); 0 = forever.
    pub max_age_secs: u64,
}

/// A background worker (relay or projection builder).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerSettings {
    /// Run it in this process.
    pub enabled: bool,
    /// Events per batch.
    pub batch_size: usize,
    /// Fallback polling interval (the relay is also woken on every local commit).
    pub poll_interval_ms: u64,
}

/// The projection builders.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProjectionSettings {
    /// Run projection builders in this process.
    pub enabled: bool,
    /// Events applied per transaction.
    pub batch_size: usize,
    /// Readiness fails when a projection is further behind than this many events.
    pub max_lag_events: i64,
    /// Partitions per projection; each has one active worker across all processes.
    pub partitions: u32,
}

/// Query behaviour.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuerySettings {
    /// Longest a query waits for its consistency token before answering "behind".
    pub consistency_wait_ms: u64,
    /// Largest page size.
    pub max_page_size: u32,
}

/// Authentication: JWTs (HS256 and/or RS256) and API keys.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    /// Shared secret for HS256 tokens; empty disables HS256.
    pub jwt_hs256_secret: Secret,
    /// PEM public key for RS256 tokens; empty disables RS256.
    pub jwt_rs256_public_key_pem: Secret,
    /// Required `iss` claim.
    pub jwt_issuer: String,
    /// Required `aud` claim.
    pub jwt_audience: String,
    /// How long an `Idempotency-Key` is remembered.
    pub idempotency_ttl_secs: u64,
}

/// Rate limits per principal (per client IP for anonymous requests), per minute.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitSettings {
    /// Switch off for load tests.
    pub enabled: bool,
    /// Command requests (POST, PUT, PATCH, DELETE) per principal per minute.
    pub commands_per_minute: u32,
    /// Query requests (GET) per principal per minute.
    pub queries_per_minute: u32,
    /// Requests without credentials per client IP per minute.
    pub anonymous_per_minute: u32,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// JSON when stdout is not a terminal, text otherwise.
    Auto,
    /// One JSON object per line.
    Json,
    /// Human-readable text.
    Text,
}

/// Logging.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// Output format.
    pub format: LogFormat,
    /// `tracing` filter directives (`RUST_LOG` wins when set).
    pub filter: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            http: HttpSettings {
                host: IpAddr::from([127, 0, 0, 1]),
                port: 8080,
                body_limit_bytes: 64 * 1024,
                request_timeout_ms: 30_000,
                cors_allowed_origins: Vec::new(),
                hsts: false,
            },
            database: DatabaseSettings {
                url: Secret::default(),
                max_connections: 16,
                statement_timeout_ms: 30_000,
                idle_in_transaction_timeout_ms: 60_000,
                migrate_on_start: true,
            },
            nats: NatsSettings {
                url: Secret::default(),
                stream: "EVENTS".to_owned(),
                subject_prefix: "events".to_owned(),
                duplicate_window_secs: 120,
                max_age_secs: 30 * 24 * 3600,
            },
            relay: WorkerSettings {
                enabled: true,
                batch_size: 500,
                poll_interval_ms: 250,
            },
            projections: ProjectionSettings {
                enabled: true,
                batch_size: 256,
                max_lag_events: 10_000,
                partitions: 4,
            },
            queries: QuerySettings {
                consistency_wait_ms: 5_000,
                max_page_size: 100,
            },
            auth: AuthSettings {
                jwt_hs256_secret: Secret::default(),
                jwt_rs256_public_key_pem: Secret::default(),
                jwt_issuer: "cqrs-backend".to_owned(),
                jwt_audience: "cqrs-backend".to_owned(),
                idempotency_ttl_secs: 24 * 3600,
            },
            rate_limit: RateLimitSettings {
                enabled: true,
                commands_per_minute: 600,
                queries_per_minute: 3_000,
                anonymous_per_minute: 120,
            },
            log: LogSettings {
                format: LogFormat::Auto,
                filter: "info".to_owned(),
            },
            jobs: JobSettings {
                lease_secs: 60,
                max_attempts: 5,
                retry_base_delay_ms: 5_000,
                retry_max_delay_ms: 300_000,
                scheduler_enabled: true,
                scheduler_tick_ms: 500,
            },
            documents: DocumentSettings {
                max_bytes: 20 * 1024 * 1024,
                allowed_types: domain::documents::ContentType::ALL
                    .iter()
                    .map(|kind| kind.as_str().to_owned())
                    .collect(),
                store: DocumentStoreKind::Local,
                local_path: ".local/documents".to_owned(),
                s3_bucket: String::new(),
                s3_endpoint: String::new(),
                s3_region: "us-east-1".to_owned(),
                s3_access_key_id: Secret::default(),
                s3_secret_access_key: Secret::default(),
                s3_allow_http: false,
            },
        }
    }
}

impl Default for HttpSettings {
    fn default() -> Self {
        Settings::default().http
    }
}
impl Default for DatabaseSettings {
    fn default() -> Self {
        Settings::default().database
    }
}
impl Default for NatsSettings {
    fn default() -> Self {
        Settings::default().nats
    }
}
impl Default for WorkerSettings {
    fn default() -> Self {
        Settings::default().relay
    }
}
impl Default for ProjectionSettings {
    fn default() -> Self {
        Settings::default().projections
    }
}
impl Default for QuerySettings {
    fn default() -> Self {
        Settings::default().queries
    }
}
impl Default for AuthSettings {
    fn default() -> Self {
        Settings::default().auth
    }
}
impl Default for RateLimitSettings {
    fn default() -> Self {
        Settings::default().rate_limit
    }
}
impl Default for JobSettings {
    fn default() -> Self {
        Settings::default().jobs
    }
}

impl Default for DocumentSettings {
    fn default() -> Self {
        Settings::default().documents
    }
}

impl Default for LogSettings {
    fn default() -> Self {
        Settings::default().log
    }
}

/// Invalid configuration; the message names the setting.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value could not be read (wrong type, unknown key, unreadable file).
    #[error("configuration error: {0}")]
    Load(#[from] Box<figment::Error>),
    /// A value was read but is not acceptable.
    #[error("configuration error: {setting}: {problem}")]
    Invalid {
        /// The setting, as `section.key` (and its environment variable).
        setting: &'static str,
        /// What is wrong.
        problem: String,
    },
}

impl Settings {
    /// Loads settings from defaults, then `file` (if given), then the environment, and
    /// validates them.
    ///
    /// # Errors
    /// [`ConfigError`] naming the offending setting.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(file) = file {
            if !file.exists() {
                return Err(ConfigError::Invalid {
                    setting: "--config / APP_CONFIG",
                    problem: format!("file {} does not exist", file.display()),
                });
            }
            figment = figment.merge(Toml::file(file));
        }
        let settings: Settings =
            figment
                .merge(Env::prefixed("APP_").split("__").ignore(&["CONFIG"]))
                .merge(Env::raw().only(&["DATABASE_URL", "NATS_URL"]).map(
                    |key| match key.as_str() {
                        "DATABASE_URL" => "database.url".into(),
                        _ => "nats.url".into(),
                    },
                ))
                .extract()
                .map_err(Box::new)?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks what types alone cannot.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the setting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |setting, problem: &str| {
            Err(ConfigError::Invalid {
                setting,
                problem: problem.to_owned(),
            })
        };
        let url = self.database.url.expose();
        if url.is_empty() {
            return invalid("database.url (DATABASE_URL)", "is required");
        }
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return invalid(
                "database.url (DATABASE_URL)",
                "must start with postgres:// or postgresql://",
            );
        }
        let nats = self.nats.url.expose();
        if nats.is_empty() {
            return invalid("nats.url (NATS_URL)", "is required");
        }
        if !(nats.starts_with("nats://") || nats.starts_with("tls://")) {
            return invalid("nats.url (NATS_URL)", "must start with nats:// or tls://");
        }
        if self.database.max_connections < 2 {
            return invalid("database.max_connections", "must be at least 2");
        }
        let token = domain::event::is_subject_token;
        if !token(&self.nats.stream) {
            return invalid("nats.stream", "must be letters, digits, '-' or '_'");
        }
        if !token(&self.nats.subject_prefix) {
            return invalid("nats.subject_prefix", "must be letters, digits, '-' or '_'");
        }
        let secret = self.auth.jwt_hs256_secret.expose();
        if !secret.is_empty() && secret.len() < 32 {
            return invalid("auth.jwt_hs256_secret", "must be at least 32 bytes");
        }
        let pem = self.auth.jwt_rs256_public_key_pem.expose();
        if !pem.is_empty() && jsonwebtoken::DecodingKey::from_rsa_pem(pem.as_bytes()).is_err() {
            return invalid(
                "auth.jwt_rs256_public_key_pem",
                "is not a PEM RSA public key",
            );
        }
        if self
            .http
            .cors_allowed_origins
            .iter()
            .any(|origin| origin == "*" || origin.parse::<http::HeaderValue>().is_err())
        {
            return invalid(
                "http.cors_allowed_origins",
                "must list exact origins, never '*'",
            );
        }
        let limits = &self.rate_limit;
        if limits.commands_per_minute == 0
            || limits.queries_per_minute == 0
            || limits.anonymous_per_minute == 0
        {
            return invalid(
                "rate_limit.*_per_minute",
                "must be positive (set rate_limit.enabled = false to switch limits off)",
            );
        }
        if self.relay.batch_size == 0 || self.projections.batch_size == 0 {
            return invalid(
                "relay.batch_size / projections.batch_size",
                "must be positive",
            );
        }
        if !(1..=256).contains(&self.projections.partitions) {
            return invalid("projections.partitions", "must be 1 to 256");
        }
        if self.queries.max_page_size == 0 {
            return invalid("queries.max_page_size", "must be positive");
        }
        let jobs = &self.jobs;
        if jobs.lease_secs == 0 || jobs.scheduler_tick_ms == 0 {
            return invalid(
                "jobs.lease_secs / jobs.scheduler_tick_ms",
                "must be positive",
            );
        }
        if self.retry_policy().is_err() {
            return invalid(
                "jobs.max_attempts / jobs.retry_*_delay_ms",
                "need 1 to 100 attempts and retry_base_delay_ms <= retry_max_delay_ms",
            );
        }
        let documents = &self.documents;
        if documents.max_bytes == 0 {
            return invalid("documents.max_bytes", "must be positive");
        }
        if let Some(unknown) = documents
            .allowed_types
            .iter()
            .find(|name| domain::documents::ContentType::by_name(name).is_none())
        {
            return invalid(
                "documents.allowed_types",
                &format!(
                    "{unknown:?} is not one of plain_text, markdown, srt, webvtt, json, docx, pdf"
                ),
            );
        }
        match documents.store {
            DocumentStoreKind::Local if documents.local_path.is_empty() => {
                return invalid("documents.local_path", "is required for the local store");
            }
            DocumentStoreKind::S3 if documents.s3_bucket.is_empty() => {
                return invalid("documents.s3_bucket", "is required for the S3 store");
            }
            _ => {}
        }
        Ok(())
    }

    /// The retry policy new jobs are submitted with.
    ///
    /// # Errors
    /// When the configured values are out of bounds (rejected by [`Settings::validate`]).
    pub fn retry_policy(&self) -> Result<domain::jobs::RetryPolicy, domain::jobs::JobError> {
        domain::jobs::RetryPolicy::new(
            self.jobs.max_attempts,
            self.jobs.retry_base_delay_ms,
            self.jobs.retry_max_delay_ms,
        )
    }

    /// The consistency wait as a duration.
    pub fn consistency_wait(&self) -> Duration {
        Duration::from_millis(self.queries.consistency_wait_ms)
    }
}

#[cfg(test)]
// figment's Jail closures return figment's own (large) error type; nothing to shrink here.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    fn valid() -> Settings {
        let mut settings = Settings::default();
        settings.database.url = Secret::new("postgres://app:hunter2@127.0.0.1:5432/app");
        settings.nats.url = Secret::new("nats://127.0.0.1:4222");
        settings
    }

    #[test]
    fn defaults_with_urls_are_valid() {
        assert!(valid().validate().is_ok());
    }

    #[test]
    fn errors_name_the_setting() {
        let mut settings = valid();
        settings.database.url = Secret::default();
        let error = settings.validate().unwrap_err().to_string();
        assert!(error.contains("DATABASE_URL"), "{error}");

        let mut settings = valid();
        settings.nats.stream = "bad.name".into();
        let error = settings.validate().unwrap_err().to_string();
        assert!(error.contains("nats.stream"), "{error}");
    }

    #[test]
    fn environment_overrides_the_file_which_overrides_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "backend.toml",
                "[http]\nport = 9000\nbody_limit_bytes = 1024\n",
            )?;
            jail.set_env("APP_HTTP__PORT", "9100");
            jail.set_env("DATABASE_URL", "postgres://app@127.0.0.1:5432/app");
            jail.set_env("NATS_URL", "nats://127.0.0.1:4222");
            let settings = Settings::load(Some(Path::new("backend.toml"))).expect("loads");
            assert_eq!(settings.http.port, 9100, "environment wins");
            assert_eq!(settings.http.body_limit_bytes, 1024, "file beats default");
            assert_eq!(settings.nats.stream, "EVENTS", "default stays");
            Ok(())
        });
    }

    #[test]
    fn a_mistyped_or_unknown_setting_is_named() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("DATABASE_URL", "postgres://app@127.0.0.1:5432/app");
            jail.set_env("NATS_URL", "nats://127.0.0.1:4222");
            jail.set_env("APP_HTTP__PORT", "eighty");
            let error = Settings::load(None).unwrap_err().to_string();
            assert!(error.to_lowercase().contains("http.port"), "{error}");

            jail.set_env("APP_HTTP__PORT", "8080");
            jail.create_file("typo.toml", "[relay]\nbatch_sise = 10\n")?;
            let error = Settings::load(Some(Path::new("typo.toml")))
                .unwrap_err()
                .to_string();
            assert!(error.contains("batch_sise"), "{error}");
            Ok(())
        });
    }

    #[test]
    fn secrets_are_never_printed() {
        let printed = format!("{:?}", valid());
        assert!(!printed.contains("hunter2"), "{printed}");
    }
}
