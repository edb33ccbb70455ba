//! NATS JetStream: connecting, refusing servers that are too old, declaring the events stream.

use std::time::Duration;

use async_nats::jetstream::{self, stream};
use domain::event::Subjects;

/// The oldest nats-server accepted. Older servers (Debian ships 2.9) silently ignore stream and
/// consumer fields this system relies on, which would turn configuration into wishful thinking.
pub const MIN_SERVER_VERSION: (u64, u64) = (2, 11);

/// Why the bus could not be used.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The server could not be reached.
    #[error("cannot connect to NATS at {url}")]
    Connect {
        /// The URL tried (credentials are not part of NATS URLs here).
        url: String,
        /// Why.
        #[source]
        source: async_nats::ConnectError,
    },
    /// The server is too old.
    #[error(
        "nats-server {found} is too old: this backend needs nats-server >= {}.{} (JetStream \
         features it relies on are silently ignored by older servers); install the pinned \
         version with `just services`",
        MIN_SERVER_VERSION.0,
        MIN_SERVER_VERSION.1
    )]
    ServerTooOld {
        /// The version the server reported.
        found: String,
    },
    /// The stream could not be declared.
    #[error("cannot declare JetStream stream {stream}")]
    Stream {
        /// The stream's name.
        stream: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Where and how events are published.
#[derive(Debug, Clone)]
pub struct StreamSettings {
    /// The JetStream stream's name.
    pub name: String,
    /// The subject naming scheme.
    pub subjects: Subjects,
    /// Window in which a re-published message id is dropped as a duplicate.
    pub duplicate_window: Duration,
    /// How long the bus keeps events (Postgres keeps them forever). Zero keeps them forever.
    pub max_age: Duration,
    /// Copies JetStream keeps of the stream and its consumers (1 on a single server, 3 on a
    /// three-node cluster).
    pub replicas: usize,
}

/// Connects to NATS and checks the server's version. `urls` is one URL or a comma-separated list
/// of a cluster's servers (the client also learns the others from whichever it reaches).
///
/// # Errors
/// [`BusError::Connect`] or [`BusError::ServerTooOld`].
pub async fn connect(urls: &str) -> Result<async_nats::Client, BusError> {
    let servers: Vec<&str> = urls.split(',').map(str::trim).collect();
    let client = async_nats::ConnectOptions::new()
        .name("cqrs-backend")
        .connection_timeout(Duration::from_secs(5))
        .connect(servers.as_slice())
        .await
        .map_err(|source| BusError::Connect {
            url: urls.to_owned(),
            source,
        })?;
    check_server_version(&client.server_info().version)?;
    Ok(client)
}

/// Refuses server versions below [`MIN_SERVER_VERSION`].
///
/// # Errors
/// [`BusError::ServerTooOld`], also when the version cannot be read.
pub fn check_server_version(version: &str) -> Result<(), BusError> {
    let mut parts = version.trim_start_matches('v').split(['.', '-']);
    let mut next = || parts.next().and_then(|part| part.parse::<u64>().ok());
    match (next(), next()) {
        (Some(major), Some(minor)) if (major, minor) >= MIN_SERVER_VERSION => Ok(()),
        _ => Err(BusError::ServerTooOld {
            found: version.to_owned(),
        }),
    }
}

/// Declares the events stream, retained by limits so that every projection consumes
/// independently. An existing stream whose replica count, retention age or duplicate window differ
/// from the settings is updated (JetStream moves the data to the new replicas itself).
///
/// # Errors
/// [`BusError::Stream`].
pub async fn ensure_stream(
    context: &jetstream::Context,
    settings: &StreamSettings,
) -> Result<stream::Stream, BusError> {
    let failed = |source: Box<dyn std::error::Error + Send + Sync>| BusError::Stream {
        stream: settings.name.clone(),
        source,
    };
    let config = stream::Config {
        name: settings.name.clone(),
        subjects: vec![settings.subjects.all()],
        retention: stream::RetentionPolicy::Limits,
        storage: stream::StorageType::File,
        duplicate_window: settings.duplicate_window,
        max_age: settings.max_age,
        num_replicas: settings.replicas,
        ..Default::default()
    };
    let mut stream = context
        .get_or_create_stream(config)
        .await
        .map_err(|source| failed(Box::new(source)))?;
    let current = stream
        .info()
        .await
        .map_err(|source| failed(Box::new(source)))?
        .config
        .clone();
    if (
        current.num_replicas,
        current.max_age,
        current.duplicate_window,
    ) != (
        settings.replicas,
        settings.max_age,
        settings.duplicate_window,
    ) {
        let wanted = stream::Config {
            num_replicas: settings.replicas,
            max_age: settings.max_age,
            duplicate_window: settings.duplicate_window,
            ..current
        };
        context
            .update_stream(wanted)
            .await
            .map_err(|source| failed(Box::new(source)))?;
        // The handle's cached information is the old configuration's.
        stream = context
            .get_stream(&settings.name)
            .await
            .map_err(|source| failed(Box::new(source)))?;
    }
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_from_2_11_are_accepted() {
        for version in ["2.11.0", "2.15.1", "v2.12.0-beta", "3.0.0"] {
            assert!(check_server_version(version).is_ok(), "{version}");
        }
    }

    #[test]
    fn older_or_unreadable_versions_are_refused() {
        for version in ["2.9.25", "2.10.22", "1.4.1", "", "garbage"] {
            assert!(
                matches!(
                    check_server_version(version),
                    Err(BusError::ServerTooOld { .. })
                ),
                "{version}"
            );
        }
    }
}
