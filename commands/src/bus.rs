//! The generic command bus: one dispatch path for every aggregate.

use std::cell::Cell;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cqrs_es::{AggregateError, EventEnvelope, Query};
use domain::aggregate::{Decider, Guarded, Rejection, Versioned};
use domain::event::ConsistencyToken;
use postgres_es::{postgres_cqrs, PostgresCqrs};
use sqlx::PgPool;
use tokio::sync::Notify;

use crate::metadata::{to_map, CommandContext};

tokio::task_local! {
    /// The sequence of the last event the current command committed.
    ///
    /// cqrs-es's `execute_with_metadata` returns `()`; the only place that sees the committed
    /// events is a `Query`, which it awaits inline on the same task right after the commit.
    /// Scoping this cell around one `execute` hands the new version back exactly, without a
    /// second read that a concurrent writer could race.
    static COMMITTED_VERSION: Cell<Option<u64>>;
}

/// Runs after every commit, in process: records the new version and wakes the relay.
///
/// This is a wake-up poke only. Read models are never updated here (cqrs-es dispatches queries
/// after the commit and swallows their failures); they are fed from the relay.
struct AfterCommit {
    relay_wakeup: Arc<Notify>,
}

#[async_trait]
impl<D: Decider> Query<Versioned<D>> for AfterCommit {
    async fn dispatch(&self, _aggregate_id: &str, events: &[EventEnvelope<Versioned<D>>]) {
        if let Some(last) = events.last() {
            // Outside `CommandBus::execute` there is no scope, and nothing to report to.
            let _ = COMMITTED_VERSION.try_with(|cell| cell.set(Some(last.sequence as u64)));
        }
        self.relay_wakeup.notify_one();
    }
}

/// What a successful command changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutcome {
    /// The stream's version after the command.
    pub version: u64,
    /// Hand this to queries to read your own write.
    pub token: ConsistencyToken,
}

/// Why a command did not append.
#[derive(Debug, thiserror::Error)]
pub enum CommandError<E: std::error::Error> {
    /// The aggregate refused the command, or the expected version did not match.
    #[error(transparent)]
    Rejected(Rejection<E>),
    /// Another command appended to the same stream first; retrying may succeed.
    #[error("a concurrent command changed the same aggregate")]
    Conflict,
    /// A uniqueness rule enforced by the store refused the append.
    #[error("the store refused the append: constraint {constraint}")]
    Constraint {
        /// The violated constraint's name.
        constraint: String,
    },
    /// The store failed; details are for the logs, never for the client.
    #[error("event store failure")]
    Store(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl<E: std::error::Error> From<AggregateError<Rejection<E>>> for CommandError<E> {
    fn from(error: AggregateError<Rejection<E>>) -> Self {
        match error {
            AggregateError::UserError(rejection) => Self::Rejected(rejection),
            AggregateError::AggregateConflict => Self::Conflict,
            AggregateError::UnexpectedError(source) => {
                // postgres-es boxes every non-23505 database error as "unknown"; the constraint
                // name is the stable way to recognise the store's own uniqueness rules.
                let constraint = source
                    .downcast_ref::<sqlx::Error>()
                    .and_then(sqlx::Error::as_database_error)
                    .and_then(|db| db.constraint())
                    .map(str::to_owned);
                match constraint {
                    Some(constraint) => Self::Constraint { constraint },
                    None => Self::Store(source),
                }
            }
            AggregateError::DatabaseConnectionError(source)
            | AggregateError::DeserializationError(source) => Self::Store(source),
        }
    }
}

/// Dispatches commands of one aggregate type through cqrs-es in plain event-store mode.
pub struct CommandBus<D: Decider> {
    cqrs: PostgresCqrs<Versioned<D>>,
}

impl<D: Decider> fmt::Debug for CommandBus<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommandBus")
            .field("aggregate", &D::TYPE)
            .finish()
    }
}

impl<D: Decider + 'static> CommandBus<D> {
    /// A bus appending to the event store behind `pool`; `relay_wakeup` is notified after
    /// every commit.
    pub fn new(pool: PgPool, relay_wakeup: Arc<Notify>) -> Self {
        // Plain event-store mode: cqrs-es 0.5's snapshot and aggregate-store modes apply new
        // events twice.
        let cqrs = postgres_cqrs(pool, vec![Box::new(AfterCommit { relay_wakeup })], ());
        Self { cqrs }
    }

    /// Runs one command against the aggregate `aggregate_id`.
    ///
    /// # Errors
    /// [`CommandError`]: refused by the domain, a concurrent writer won, a store constraint, or
    /// a store failure. Nothing is appended in any of these cases.
    pub async fn execute(
        &self,
        context: &CommandContext,
        aggregate_id: &str,
        command: Guarded<D::Command>,
        command_name: &str,
        now: DateTime<Utc>,
    ) -> Result<CommandOutcome, CommandError<D::Error>> {
        let metadata = to_map(&context.metadata(command_name, now));
        let committed = Cell::new(None);
        let (result, committed) = COMMITTED_VERSION
            .scope(committed, async {
                let result = self
                    .cqrs
                    .execute_with_metadata(aggregate_id, command, metadata)
                    .await;
                (result, COMMITTED_VERSION.with(Cell::get))
            })
            .await;
        result?;
        // Every successful command of our deciders appends at least one event.
        let version = committed.ok_or_else(|| {
            CommandError::Store("command succeeded without appending an event".into())
        })?;
        Ok(CommandOutcome {
            version,
            token: ConsistencyToken {
                aggregate_type: D::TYPE.to_owned(),
                aggregate_id: aggregate_id.to_owned(),
                version,
            },
        })
    }
}
