//! Configuration: defaults < optional TOML file < environment, validated before anything starts.
//!
//! Environment variables: `APP_<SECTION>__<KEY>` (e.g. `APP_HTTP__PORT=8080`) and `APP_ROLES`,
//! plus the conventional `DATABASE_URL`, `DATABASE_READ_URL` and `NATS_URL`. The file is named
//! by `--config` or `APP_CONFIG`.
//!
//! One file per section, each owning its settings, their defaults and their validation:
//! [`roles`] (which parts this process runs), [`database`], [`nats`], [`http`], [`auth`],
//! [`rate_limit`], [`commands`], [`relay`], [`projections`], [`queries`], [`jobs`],
//! [`documents`], [`audit`], [`log`], and [`secret`] (values never printed). Every validation error names its setting (and its
//! environment variable where that is not the `APP_` form).

pub mod audit;
pub mod auth;
pub mod commands;
pub mod community;
pub mod database;
pub mod documents;
pub mod http;
pub mod jobs;
pub mod log;
pub mod nats;
pub mod prices;
pub mod projections;
pub mod queries;
pub mod rate_limit;
pub mod relay;
pub mod roles;
pub mod secret;

use std::path::Path;
use std::time::Duration;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

pub use audit::AuditSettings;
pub use auth::AuthSettings;
pub use commands::CommandSettings;
pub use community::CommunitySettings;
pub use database::DatabaseSettings;
pub use documents::{DocumentSettings, DocumentStoreKind};
pub use http::HttpSettings;
pub use jobs::JobSettings;
pub use log::{LogFormat, LogSettings};
pub use nats::NatsSettings;
pub use prices::PriceSettings;
pub use projections::ProjectionSettings;
pub use queries::QuerySettings;
pub use rate_limit::RateLimitSettings;
pub use relay::WorkerSettings;
pub use roles::{Role, Roles, RolesError};
pub use secret::Secret;

/// All settings of the backend.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Which parts this process runs: command routes, query routes, background workers
    /// (`APP_ROLES=commands,queries`); all of them by default.
    pub roles: Roles,
    /// The HTTP listener.
    pub http: HttpSettings,
    /// The Postgres event store and read models.
    pub database: DatabaseSettings,
    /// NATS JetStream.
    pub nats: NatsSettings,
    /// The write side.
    pub commands: CommandSettings,
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
    /// The verifiable audit log.
    pub audit: AuditSettings,
    /// Community posts.
    pub community: CommunitySettings,
    /// Asset prices: the market-data provider and the importer.
    pub prices: PriceSettings,
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

impl ConfigError {
    /// An unacceptable value of `setting`; `problem` must not quote a secret.
    pub(crate) fn invalid(setting: &'static str, problem: impl Into<String>) -> Self {
        Self::Invalid {
            setting,
            problem: problem.into(),
        }
    }
}

/// Conventional environment variables read without the `APP_` prefix, and their settings.
/// They are merged last, so they win over their `APP_` forms.
const RAW_ENV: &[(&str, &str)] = &[
    ("DATABASE_URL", "database.url"),
    ("DATABASE_READ_URL", "database.read_url"),
    ("NATS_URL", "nats.url"),
];

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
                return Err(ConfigError::invalid(
                    "--config / APP_CONFIG",
                    format!("file {} does not exist", file.display()),
                ));
            }
            figment = figment.merge(Toml::file(file));
        }
        let raw_names: Vec<&str> = RAW_ENV.iter().map(|(name, _)| *name).collect();
        let settings: Settings = figment
            .merge(Env::prefixed("APP_").split("__").ignore(&["CONFIG"]))
            .merge(Env::raw().only(&raw_names).map(|key| {
                RAW_ENV
                    .iter()
                    .find(|(name, _)| key.as_str().eq_ignore_ascii_case(name))
                    .map_or_else(|| key.into(), |(_, setting)| (*setting).into())
            }))
            .extract()
            .map_err(Box::new)?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks what types alone cannot, section by section.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the setting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.database.validate()?;
        self.nats.validate()?;
        self.auth.validate()?;
        self.http.validate()?;
        self.rate_limit.validate()?;
        self.relay.validate()?;
        self.projections.validate()?;
        self.queries.validate()?;
        self.jobs.validate()?;
        self.documents.validate()?;
        self.audit.validate()?;
        self.community.validate()?;
        self.prices.validate()
    }

    /// The retry policy a tenant with `tenant`'s settings submits new jobs with.
    ///
    /// # Errors
    /// When the configured values are out of bounds (rejected by [`Settings::validate`]).
    pub fn retry_policy(
        &self,
        tenant: &domain::tenants::TenantSettings,
    ) -> Result<domain::jobs::RetryPolicy, domain::jobs::JobError> {
        domain::jobs::RetryPolicy::new(
            tenant.job_max_attempts.unwrap_or(self.jobs.max_attempts),
            self.jobs.retry_base_delay_ms,
            self.jobs.retry_max_delay_ms,
        )
    }

    /// How long a claim lasts without a heartbeat for a tenant with `tenant`'s settings.
    pub fn lease(&self, tenant: &domain::tenants::TenantSettings) -> chrono::TimeDelta {
        let secs = tenant.job_lease_secs.unwrap_or(self.jobs.lease_secs);
        chrono::TimeDelta::seconds(i64::try_from(secs).unwrap_or(i64::MAX))
    }

    /// The consistency wait as a duration.
    pub fn consistency_wait(&self) -> Duration {
        self.queries.consistency_wait()
    }

    /// Whether this process runs the relay: the `workers` role and `relay.enabled`.
    pub fn runs_relay(&self) -> bool {
        self.roles.runs_workers() && self.relay.enabled
    }

    /// Whether this process runs projection builders: the `workers` role and
    /// `projections.enabled`.
    pub fn runs_projections(&self) -> bool {
        self.roles.runs_workers() && self.projections.enabled
    }

    /// Whether this process runs the jobs' process manager: the `workers` role and
    /// `jobs.scheduler_enabled`.
    pub fn runs_scheduler(&self) -> bool {
        self.roles.runs_workers() && self.jobs.scheduler_enabled
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::{Secret, Settings};

    /// Defaults plus the two required URLs (the database one with a password to leak).
    pub(crate) fn valid() -> Settings {
        let mut settings = Settings::default();
        settings.database.url = Secret::new("postgres://app:hunter2@127.0.0.1:5432/app");
        settings.nats.url = Secret::new("nats://127.0.0.1:4222");
        settings
    }
}

#[cfg(test)]
// figment's Jail closures return figment's own (large) error type; nothing to shrink here.
#[allow(clippy::result_large_err)]
mod tests {
    use super::test_support::valid;
    use super::*;

    /// Sets the two required URLs inside a figment jail.
    fn required_urls(jail: &mut figment::Jail) {
        jail.set_env("DATABASE_URL", "postgres://app@127.0.0.1:5432/app");
        jail.set_env("NATS_URL", "nats://127.0.0.1:4222");
    }

    #[test]
    fn defaults_with_urls_are_valid() {
        assert!(valid().validate().is_ok());
    }

    #[test]
    fn environment_overrides_the_file_which_overrides_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "backend.toml",
                "[http]\nport = 9000\nbody_limit_bytes = 1024\n",
            )?;
            jail.set_env("APP_HTTP__PORT", "9100");
            required_urls(jail);
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
            required_urls(jail);
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
        let mut settings = valid();
        settings.database.read_url = Some(Secret::new("postgres://app:hunter2@replica/app"));
        let printed = format!("{settings:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
    }

    #[test]
    fn roles_come_from_the_environment_as_a_comma_separated_list() {
        figment::Jail::expect_with(|jail| {
            required_urls(jail);
            assert_eq!(Settings::load(None).expect("loads").roles, Roles::all());

            jail.set_env("APP_ROLES", "commands,queries");
            let settings = Settings::load(None).expect("loads");
            assert!(settings.roles.serves_commands() && settings.roles.serves_queries());
            assert!(!settings.roles.runs_workers());
            assert!(!settings.runs_relay() && !settings.runs_projections());
            assert!(!settings.runs_scheduler());

            jail.set_env("APP_ROLES", "workers");
            let settings = Settings::load(None).expect("loads");
            assert_eq!(
                settings.roles,
                Roles::new([Role::Workers]).expect("non-empty")
            );
            assert!(settings.runs_relay() && settings.runs_projections());

            jail.set_env("APP_ROLES", "[queries]");
            let settings = Settings::load(None).expect("loads");
            assert_eq!(
                settings.roles,
                Roles::new([Role::Queries]).expect("non-empty")
            );
            Ok(())
        });
    }

    #[test]
    fn roles_come_from_the_file_as_a_list_and_the_environment_wins() {
        figment::Jail::expect_with(|jail| {
            required_urls(jail);
            jail.create_file("backend.toml", "roles = [\"queries\"]\n")?;
            let file = Some(Path::new("backend.toml"));
            let settings = Settings::load(file).expect("loads");
            assert_eq!(settings.roles.to_string(), "queries");

            jail.set_env("APP_ROLES", "commands");
            let settings = Settings::load(file).expect("loads");
            assert_eq!(settings.roles.to_string(), "commands");
            Ok(())
        });
    }

    #[test]
    fn an_unknown_or_empty_role_names_the_setting_and_the_accepted_values() {
        figment::Jail::expect_with(|jail| {
            required_urls(jail);
            for value in ["commands,reads", "", "[]"] {
                jail.set_env("APP_ROLES", value);
                let error = Settings::load(None).unwrap_err().to_string();
                assert!(error.to_lowercase().contains("roles"), "{value:?}: {error}");
                assert!(
                    error.contains("commands, queries, workers"),
                    "{value:?}: {error}"
                );
            }
            Ok(())
        });
    }

    #[test]
    fn a_relay_enabled_by_its_section_still_needs_the_workers_role() {
        let mut settings = valid();
        assert!(settings.runs_relay() && settings.runs_projections() && settings.runs_scheduler());
        settings.relay.enabled = false;
        assert!(!settings.runs_relay() && settings.runs_projections());
        settings.roles = Roles::new([Role::Commands]).expect("non-empty");
        assert!(!settings.runs_projections() && !settings.runs_scheduler());
    }

    #[test]
    fn the_read_url_comes_from_either_environment_variable() {
        figment::Jail::expect_with(|jail| {
            required_urls(jail);
            let settings = Settings::load(None).expect("loads");
            assert_eq!(settings.database.query_url(), &settings.database.url);

            jail.set_env(
                "APP_DATABASE__READ_URL",
                "postgres://app@127.0.0.1:5433/app",
            );
            let settings = Settings::load(None).expect("loads");
            assert_eq!(
                settings.database.query_url().expose(),
                "postgres://app@127.0.0.1:5433/app"
            );

            jail.set_env("DATABASE_READ_URL", "postgres://app@127.0.0.1:5434/app");
            let settings = Settings::load(None).expect("loads");
            assert_eq!(
                settings.database.query_url().expose(),
                "postgres://app@127.0.0.1:5434/app",
                "the conventional name wins, like DATABASE_URL"
            );

            jail.set_env("DATABASE_READ_URL", "http://replica/app");
            let error = Settings::load(None).unwrap_err().to_string();
            assert!(error.contains("database.read_url"), "{error}");
            Ok(())
        });
    }
}
