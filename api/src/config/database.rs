//! `database`: the Postgres event store and read models, and where queries read from.

use serde::{Deserialize, Serialize};

use super::{ConfigError, Secret};

/// The Postgres connection.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSettings {
    /// `postgres://…` of the primary: the event store, and every write (env `DATABASE_URL`).
    pub url: Secret,
    /// `postgres://…` the query side reads read models from, typically a streaming replica of
    /// the primary (env `DATABASE_READ_URL` or `APP_DATABASE__READ_URL`). Absent or empty: the
    /// primary. Same database, only another server: the schema and migrations are the primary's.
    pub read_url: Option<Secret>,
    /// Pool size (of each pool: the primary's and, when set, the read URL's).
    pub max_connections: u32,
    /// Upper bound of any statement; also bounds how long a writer can hold the feed's horizon.
    pub statement_timeout_ms: u64,
    /// Upper bound of an idle open transaction (same reason).
    pub idle_in_transaction_timeout_ms: u64,
    /// Apply pending migrations at start-up.
    pub migrate_on_start: bool,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: Secret::default(),
            read_url: None,
            max_connections: 16,
            statement_timeout_ms: 30_000,
            idle_in_transaction_timeout_ms: 60_000,
            migrate_on_start: true,
        }
    }
}

impl DatabaseSettings {
    /// The URL the query side reads read models from: `read_url` when given, else `url`.
    pub fn query_url(&self) -> &Secret {
        self.replica_url().unwrap_or(&self.url)
    }

    /// `read_url` when it names a server apart from the primary (absent or empty: `None`).
    pub fn replica_url(&self) -> Option<&Secret> {
        self.read_url.as_ref().filter(|url| !url.is_empty())
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let setting = "database.url (DATABASE_URL)";
        if self.url.is_empty() {
            return Err(ConfigError::invalid(setting, "is required"));
        }
        if !is_postgres_url(self.url.expose()) {
            return Err(ConfigError::invalid(
                setting,
                "must start with postgres:// or postgresql://",
            ));
        }
        if let Some(read_url) = self.replica_url() {
            if !is_postgres_url(read_url.expose()) {
                return Err(ConfigError::invalid(
                    "database.read_url (DATABASE_READ_URL)",
                    "must start with postgres:// or postgresql://",
                ));
            }
        }
        if self.max_connections < 2 {
            return Err(ConfigError::invalid(
                "database.max_connections",
                "must be at least 2",
            ));
        }
        Ok(())
    }
}

fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::valid;

    #[test]
    fn a_missing_url_names_its_environment_variable() {
        let mut settings = valid();
        settings.database.url = Secret::default();
        let error = settings.validate().expect_err("refused").to_string();
        assert!(error.contains("DATABASE_URL"), "{error}");
    }

    #[test]
    fn queries_read_from_the_primary_unless_a_read_url_is_given() {
        let mut database = valid().database;
        assert_eq!(database.query_url(), &database.url);
        assert_eq!(database.replica_url(), None);

        database.read_url = Some(Secret::default());
        assert_eq!(database.query_url(), &database.url, "empty means absent");
        assert!(database.validate().is_ok());

        let replica = Secret::new("postgres://app:hunter2@127.0.0.1:5433/app");
        database.read_url = Some(replica.clone());
        assert_eq!(database.query_url(), &replica);
        assert_eq!(database.replica_url(), Some(&replica));
        assert!(database.validate().is_ok());
    }

    #[test]
    fn a_read_url_that_is_not_postgres_is_named_without_being_printed() {
        let mut database = valid().database;
        database.read_url = Some(Secret::new("mysql://app:hunter2@127.0.0.1/app"));
        let error = database.validate().expect_err("refused").to_string();
        assert!(error.contains("database.read_url"), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
        assert!(!format!("{database:?}").contains("hunter2"));
    }
}
