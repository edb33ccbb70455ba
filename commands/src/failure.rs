//! Whether a failure of a dependency is worth retrying.
//!
//! Clients are told to retry (503 with `Retry-After`) only when retrying can succeed: the pool
//! was exhausted, a connection was lost, or the database is shutting down, starting up or
//! failing over. Everything else (an event that does not decode, a broken invariant, a bug) is
//! permanent, and retrying it forever only hides it. A JetStream request that failed counts
//! as transient like a lost database connection.

use std::error::Error;

use cqrs_es::persist::PersistenceError;

/// Whether `error`, or the first cause in its chain that this function recognises, is
/// transient. Unrecognised failures are permanent.
pub fn is_transient(error: &(dyn Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if let Some(error) = error.downcast_ref::<sqlx::Error>() {
            return sqlx_is_transient(error);
        }
        if error.downcast_ref::<std::io::Error>().is_some() || is_bus_failure(error) {
            return true;
        }
        // cqrs-es's persistence error names its cause in its message only, not as a source.
        cause = match error.downcast_ref::<PersistenceError>() {
            Some(PersistenceError::ConnectionError(_)) => return true,
            Some(PersistenceError::UnknownError(inner)) => Some(inner.as_ref()),
            Some(_) => return false,
            None => error.source(),
        };
    }
    false
}

/// A request to JetStream that failed (timeout, no responders, connection): the bus is a
/// dependency like the database, and its failures pass.
fn is_bus_failure(error: &(dyn Error + 'static)) -> bool {
    use async_nats::jetstream::context;
    error.is::<context::GetStreamError>()
        || error.is::<context::ConsumerInfoError>()
        || error.is::<context::RequestError>()
        || error.is::<context::PublishError>()
        || error.is::<async_nats::jetstream::stream::ConsumerError>()
}

fn sqlx_is_transient(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(database) => database.code().is_some_and(|code| {
            // Connection exceptions (class 08), shutdown or start-up (57P01-57P03), too many
            // connections (53300), serialization failures and deadlocks (40001, 40P01), a lock
            // not available (55P03), a cancelled statement (57014) and a read-only transaction
            // on a server that was just demoted (25006).
            code.starts_with("08")
                || matches!(
                    code.as_ref(),
                    "57P01"
                        | "57P02"
                        | "57P03"
                        | "53300"
                        | "40001"
                        | "40P01"
                        | "55P03"
                        | "57014"
                        | "25006"
                )
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_and_pool_failures_are_transient() {
        assert!(is_transient(&sqlx::Error::PoolTimedOut));
        let lost = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert!(is_transient(&sqlx::Error::Io(lost)));
    }

    #[test]
    fn decode_failures_and_bugs_are_permanent() {
        let decode = serde_json::from_str::<u32>("\"x\"").unwrap_err();
        assert!(!is_transient(&decode));
        assert!(!is_transient(&sqlx::Error::RowNotFound));
        assert!(!is_transient(&sqlx::Error::ColumnNotFound("x".into())));
    }

    #[test]
    fn the_cause_chain_is_followed() {
        #[derive(Debug, thiserror::Error)]
        #[error("wrapped")]
        struct Wrapped(#[source] sqlx::Error);
        assert!(is_transient(&Wrapped(sqlx::Error::PoolTimedOut)));
        assert!(!is_transient(&Wrapped(sqlx::Error::RowNotFound)));
    }
}

#[cfg(test)]
mod store_errors {
    use super::*;
    use crate::bus::CommandError;

    #[test]
    fn a_lost_connection_inside_the_event_store_is_transient() {
        let lost = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        let store = PersistenceError::ConnectionError(Box::new(sqlx::Error::Io(lost)));
        let error: CommandError<std::io::Error> = CommandError::Store(Box::new(store));
        assert!(is_transient(&error));
        let unknown = PersistenceError::UnknownError(Box::new(sqlx::Error::PoolTimedOut));
        assert!(is_transient(&unknown));
        let undecodable = serde_json::from_str::<u8>("x").unwrap_err();
        assert!(!is_transient(&PersistenceError::DeserializationError(
            Box::new(undecodable)
        )));
    }
}
