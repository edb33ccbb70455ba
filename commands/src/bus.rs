//! The generic command bus: one dispatch path for every aggregate.

use std::cell::Cell;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cqrs_es::{AggregateError, CqrsFramework, EventEnvelope, Query};
use domain::aggregate::{Decider, Guarded, Rejection, Versioned};
use domain::event::ConsistencyToken;
use domain::identity::StreamId;
use sqlx::PgPool;
use tokio::sync::Notify;

use crate::idempotency::{self, Recorded};
use crate::metadata::{to_map, CommandContext};
use crate::snapshots::SnapshotStore;

/// Snapshot interval unless configured: a load replays fewer than this many events.
pub const DEFAULT_SNAPSHOT_EVERY: u64 = 100;

tokio::task_local! {
    /// The sequence of the last event the current command committed.
    ///
    /// cqrs-es's `execute_with_metadata` returns `()`; the only place that sees the committed
    /// events is a `Query`, which it awaits inline on the same task right after the commit.
    /// Scoping this cell around one `execute` hands the new version back exactly, without a
    /// second read that a concurrent writer could race. A command that changes nothing (an
    /// idempotent repeat, such as adding a reaction already there) has no events to dispatch:
    /// the store's commit records the version it was decided on instead.
    pub(crate) static COMMITTED_VERSION: Cell<Option<u64>>;
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
    /// The stream written.
    pub stream: StreamId,
    /// The stream's version after the command.
    pub version: u64,
    /// Hand this to queries to read your own write.
    pub token: ConsistencyToken,
    /// True when this is the stored result of an earlier request with the same idempotency
    /// key; nothing was appended this time.
    pub replayed: bool,
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
    /// The idempotency key was used before for a different request.
    #[error("this Idempotency-Key was already used for a different request")]
    IdempotencyKeyReused,
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

impl<E: std::error::Error> CommandError<E> {
    fn store(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Store(Box::new(error))
    }
}

impl<E: std::error::Error> From<AggregateError<Rejection<E>>> for CommandError<E> {
    fn from(error: AggregateError<Rejection<E>>) -> Self {
        match error {
            AggregateError::UserError(rejection) => Self::Rejected(rejection),
            AggregateError::AggregateConflict => Self::Conflict,
            AggregateError::UnexpectedError(source) => {
                // The store reports every database error but a conflict on the stream's sequence
                // as unexpected; the constraint name is the stable way to recognise the store's
                // own rules (raised by its triggers: the email claim, the idempotency key).
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

/// Dispatches commands of one aggregate type through cqrs-es, over the event store with
/// snapshots done right ([`SnapshotStore`]).
pub struct CommandBus<D: Decider + 'static> {
    cqrs: CqrsFramework<Versioned<D>, SnapshotStore<D>>,
    store: SnapshotStore<D>,
    pool: PgPool,
    relay_wakeup: Arc<Notify>,
    idempotency_ttl: Duration,
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
    /// every commit. Idempotency keys are honoured for 24 hours and a snapshot is taken every
    /// [`DEFAULT_SNAPSHOT_EVERY`] events unless changed.
    pub fn new(pool: PgPool, relay_wakeup: Arc<Notify>) -> Self {
        Self::with_store(
            SnapshotStore::new(pool.clone(), DEFAULT_SNAPSHOT_EVERY),
            pool,
            relay_wakeup,
        )
    }

    fn with_store(store: SnapshotStore<D>, pool: PgPool, relay_wakeup: Arc<Notify>) -> Self {
        // Not cqrs-es's snapshot or aggregate-store modes: they apply new events twice.
        let cqrs = CqrsFramework::new(
            store.clone(),
            vec![Box::new(AfterCommit {
                relay_wakeup: relay_wakeup.clone(),
            })],
            (),
        );
        Self {
            cqrs,
            store,
            pool,
            relay_wakeup,
            idempotency_ttl: Duration::from_secs(24 * 3600),
        }
    }

    /// Takes a snapshot once a load would replay `every` events or more (0: never).
    pub fn with_snapshots_every(self, every: u64) -> Self {
        let ttl = self.idempotency_ttl;
        Self::with_store(
            SnapshotStore::new(self.pool.clone(), every),
            self.pool,
            self.relay_wakeup,
        )
        .with_idempotency_ttl(ttl)
    }

    /// How long an idempotency key is remembered.
    pub fn with_idempotency_ttl(mut self, ttl: Duration) -> Self {
        self.idempotency_ttl = ttl;
        self
    }

    /// The aggregate's current state, replayed from its stream (empty streams give the
    /// default state at version 0).
    ///
    /// # Errors
    /// When the store fails or an event does not decode.
    pub async fn load(&self, stream: &StreamId) -> Result<Versioned<D>, CommandError<D::Error>> {
        let (state, _) = self.store.load(&stream.to_string()).await?;
        Ok(state)
    }

    /// The event store's pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Waits until the snapshots this bus started writing after its commands are written.
    pub async fn snapshots_saved(&self) {
        self.store.snapshots_saved().await;
    }

    /// Runs one command against the aggregate at `stream`.
    ///
    /// With an idempotency key in the context, a retry of the same request answers with the
    /// original outcome and appends nothing, and the same key with a different request is
    /// refused.
    ///
    /// # Errors
    /// [`CommandError`]: refused by the domain, a concurrent writer won, a reused idempotency
    /// key, a store constraint, or a store failure. Nothing is appended in any of these cases.
    pub async fn execute(
        &self,
        context: &CommandContext,
        stream: &StreamId,
        command: Guarded<D::Command>,
        command_name: &str,
        now: DateTime<Utc>,
    ) -> Result<CommandOutcome, CommandError<D::Error>> {
        self.idempotent(context, || {
            self.append(context, stream, command.clone(), command_name, now)
        })
        .await
    }

    /// Runs `attempt` (which appends through [`CommandBus::append`], after whatever checks a
    /// caller adds, and changes nothing else) under the context's idempotency key.
    ///
    /// The event store records the key in the appending statement and refuses a key already
    /// recorded (the `0005_idempotency_keys` trigger), so a first request costs no lookup: only
    /// when the attempt fails is the key looked up, and a request that used it before (a retry,
    /// or a concurrent twin that won) answers with that outcome whatever the attempt's error.
    /// A key whose record had expired is forgotten by that lookup, and the attempt runs again.
    ///
    /// # Errors
    /// The attempt's error, or [`CommandError::IdempotencyKeyReused`].
    pub async fn idempotent<F, Fut>(
        &self,
        context: &CommandContext,
        attempt: F,
    ) -> Result<CommandOutcome, CommandError<D::Error>>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<CommandOutcome, CommandError<D::Error>>>,
    {
        if context.idempotency.is_none() {
            return attempt().await;
        }
        let mut tries = 0;
        loop {
            tries += 1;
            let error = match attempt().await {
                Ok(outcome) => return Ok(outcome),
                Err(error) => error,
            };
            if let Some(outcome) = self.replay_idempotent(context).await? {
                return Ok(outcome);
            }
            let expired_key = matches!(
                &error,
                CommandError::Constraint { constraint } if constraint == idempotency::CONSTRAINT
            );
            if !expired_key || tries == 2 {
                return Err(error);
            }
        }
    }

    /// The outcome recorded for the context's idempotency key, if a request with it was
    /// accepted before: for checks a caller makes before running a command (a quota) that a
    /// retry of an accepted request must not fail.
    ///
    /// # Errors
    /// [`CommandError::IdempotencyKeyReused`] when the key was used for a different request.
    pub async fn recorded(
        &self,
        context: &CommandContext,
    ) -> Result<Option<CommandOutcome>, CommandError<D::Error>> {
        self.replay_idempotent(context).await
    }

    /// The stored outcome of an earlier request with the context's idempotency key, if any.
    ///
    /// # Errors
    /// [`CommandError::IdempotencyKeyReused`] when the key was used for a different request.
    async fn replay_idempotent(
        &self,
        context: &CommandContext,
    ) -> Result<Option<CommandOutcome>, CommandError<D::Error>> {
        let Some(claim) = &context.idempotency else {
            return Ok(None);
        };
        let recorded = idempotency::lookup(&self.pool, context, claim, self.idempotency_ttl)
            .await
            .map_err(CommandError::store)?;
        match recorded {
            None => Ok(None),
            Some(Recorded { request_hash, .. }) if request_hash != claim.request_hash => {
                Err(CommandError::IdempotencyKeyReused)
            }
            Some(Recorded {
                aggregate_id,
                version,
                ..
            }) => {
                let stream = aggregate_id
                    .parse::<StreamId>()
                    .map_err(CommandError::store)?;
                Ok(Some(outcome::<D>(stream, version, true)))
            }
        }
    }

    /// Appends one command's events, without the idempotency replay (see
    /// [`CommandBus::idempotent`]); the key, if any, is still recorded with the events.
    ///
    /// # Errors
    /// See [`CommandBus::execute`].
    pub async fn append(
        &self,
        context: &CommandContext,
        stream: &StreamId,
        command: Guarded<D::Command>,
        command_name: &str,
        now: DateTime<Utc>,
    ) -> Result<CommandOutcome, CommandError<D::Error>> {
        let metadata = to_map(&context.metadata(command_name, now));
        let aggregate_id = stream.to_string();
        let (result, committed) = COMMITTED_VERSION
            .scope(Cell::new(None), async {
                let result = self
                    .cqrs
                    .execute_with_metadata(&aggregate_id, command, metadata)
                    .await;
                (result, COMMITTED_VERSION.with(Cell::get))
            })
            .await;
        result?;
        let version = committed.ok_or_else(|| {
            CommandError::Store("command succeeded without reaching the store's commit".into())
        })?;
        Ok(outcome::<D>(stream.clone(), version, false))
    }
}

fn outcome<D: Decider>(stream: StreamId, version: u64, replayed: bool) -> CommandOutcome {
    CommandOutcome {
        token: ConsistencyToken {
            aggregate_type: D::TYPE.to_owned(),
            aggregate_id: stream.to_string(),
            version,
        },
        stream,
        version,
        replayed,
    }
}
