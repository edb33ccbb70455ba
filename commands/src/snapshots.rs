//! Snapshots behind cqrs-es's `EventStore` trait, so that a command on a long stream does not
//! replay all of it.
//!
//! cqrs-es 0.5's own snapshot mode applies a command's events to a state that already holds
//! them (see `DESIGN.md`). Here the state saved is the one cqrs-es hands to `commit`: its
//! `handle` wrote the events through the sink, which applied them, so it is exactly the state
//! after the committed events. A snapshot is taken once a load would otherwise replay `every`
//! events or more, and written in its own task after the events' commit, never in its way:
//! losing one costs a longer replay and nothing else.
//!
//! A snapshot is used only when its schema is the decider's [`Decider::SNAPSHOT_SCHEMA`], its
//! version is the one the state inside it records, and the stream has an event of that
//! version; then the events after it are applied.
//! Anything else (none, another schema, a state that no longer decodes) replays the stream.

use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;

use cqrs_es::persist::{
    EventStoreAggregateContext, PersistedEventRepository, PersistenceError, SerializedEvent,
};
use cqrs_es::{AggregateError, EventEnvelope, EventStore};
use domain::aggregate::{resume, Decider, Rejection, Versioned};
use postgres_es::PostgresEventRepository;
use serde_json::Value;
use sqlx::PgPool;

type Failure<D> = AggregateError<Rejection<<D as Decider>::Error>>;

/// The event store of one aggregate type, with snapshots every `every` events (never when 0).
pub struct SnapshotStore<D> {
    repository: PostgresEventRepository,
    pool: PgPool,
    every: u64,
    decider: PhantomData<fn() -> D>,
}

impl<D> Clone for SnapshotStore<D> {
    fn clone(&self) -> Self {
        Self {
            repository: PostgresEventRepository::new(self.pool.clone()),
            pool: self.pool.clone(),
            every: self.every,
            decider: PhantomData,
        }
    }
}

impl<D> fmt::Debug for SnapshotStore<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SnapshotStore")
            .field("every", &self.every)
            .finish()
    }
}

/// A database failure, as postgres-es reports its own (the cause stays inspectable, so a lost
/// connection is still told from a bug).
fn store_failure<D: Decider>(error: sqlx::Error) -> Failure<D> {
    match error {
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolTimedOut => {
            AggregateError::DatabaseConnectionError(Box::new(error))
        }
        error => AggregateError::UnexpectedError(Box::new(error)),
    }
}

impl<D: Decider> SnapshotStore<D> {
    /// The store behind `pool`; `every` is the snapshot interval in events (0: never).
    pub fn new(pool: PgPool, every: u64) -> Self {
        Self {
            repository: PostgresEventRepository::new(pool.clone()),
            pool,
            every,
            decider: PhantomData,
        }
    }

    /// The aggregate's current state, and the version of the snapshot it started from (0 when
    /// it replayed the whole stream).
    ///
    /// # Errors
    /// When the store fails or a stored event does not decode.
    pub async fn load(&self, aggregate_id: &str) -> Result<(Versioned<D>, u64), Failure<D>> {
        if let Some(snapshot) = self.snapshot(aggregate_id).await? {
            let version = snapshot.version();
            let events = self.events_after(aggregate_id, version).await?;
            return Ok((resume(snapshot, &events), version));
        }
        let events = self.events_after(aggregate_id, 0).await?;
        Ok((resume(Versioned::default(), &events), 0))
    }

    /// The stored snapshot, when snapshots are on and it is one this code can use.
    async fn snapshot(&self, aggregate_id: &str) -> Result<Option<Versioned<D>>, Failure<D>> {
        if self.every == 0 {
            return Ok(None);
        }
        // Only a snapshot of a version the stream has (a store restored without its snapshots
        // must not be decided on from a state it no longer holds).
        let row: Option<(i64, Value)> = sqlx::query_as(
            "SELECT s.version, s.state FROM snapshots.aggregates s
              WHERE s.aggregate_type = $1 AND s.aggregate_id = $2 AND s.schema = $3
                AND EXISTS (SELECT 1 FROM events e
                             WHERE e.aggregate_type = s.aggregate_type
                               AND e.aggregate_id = s.aggregate_id
                               AND e.sequence = s.version)",
        )
        .bind(D::TYPE)
        .bind(aggregate_id)
        .bind(i64::from(D::SNAPSHOT_SCHEMA))
        .fetch_optional(&self.pool)
        .await
        .map_err(store_failure::<D>)?;
        let Some((version, state)) = row else {
            return Ok(None);
        };
        match serde_json::from_value::<Versioned<D>>(state) {
            Ok(snapshot) if i64::try_from(snapshot.version()) == Ok(version) => Ok(Some(snapshot)),
            Ok(_) => {
                tracing::warn!(
                    aggregate_type = D::TYPE,
                    aggregate_id,
                    "snapshot's state does not record its version; replaying the stream"
                );
                Ok(None)
            }
            Err(error) => {
                tracing::warn!(
                    aggregate_type = D::TYPE,
                    aggregate_id,
                    %error,
                    "snapshot does not decode; replaying the stream"
                );
                Ok(None)
            }
        }
    }

    /// The stream's events after `version`, in order.
    async fn events_after(
        &self,
        aggregate_id: &str,
        version: u64,
    ) -> Result<Vec<D::Event>, Failure<D>> {
        let payloads: Vec<Value> = sqlx::query_scalar(
            "SELECT payload FROM events
              WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence > $3
              ORDER BY sequence",
        )
        .bind(D::TYPE)
        .bind(aggregate_id)
        .bind(i64::try_from(version).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(store_failure::<D>)?;
        payloads
            .into_iter()
            .map(|payload| {
                serde_json::from_value(payload)
                    .map_err(|error| AggregateError::DeserializationError(Box::new(error)))
            })
            .collect()
    }

    /// Saves `state` unless a newer snapshot of this schema is already there, in its own task:
    /// the command has its answer already. Failures are logged: the events are committed, and
    /// a missing snapshot only means a longer replay.
    fn save(&self, aggregate_id: &str, state: &Versioned<D>) {
        let json = match serde_json::to_value(state) {
            Ok(json) => json,
            Err(error) => {
                tracing::warn!(aggregate_type = D::TYPE, aggregate_id, %error, "snapshot not saved");
                return;
            }
        };
        let (pool, aggregate_id, version) = (
            self.pool.clone(),
            aggregate_id.to_owned(),
            i64::try_from(state.version()).unwrap_or(i64::MAX),
        );
        tokio::spawn(async move {
            let saved = sqlx::query(
                "INSERT INTO snapshots.aggregates (aggregate_type, aggregate_id, version, schema, state)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (aggregate_type, aggregate_id) DO UPDATE
                    SET version = EXCLUDED.version, schema = EXCLUDED.schema,
                        state = EXCLUDED.state, taken_at = now()
                  WHERE snapshots.aggregates.version < EXCLUDED.version
                     OR snapshots.aggregates.schema <> EXCLUDED.schema",
            )
            .bind(D::TYPE)
            .bind(&aggregate_id)
            .bind(version)
            .bind(i64::from(D::SNAPSHOT_SCHEMA))
            .bind(json)
            .execute(&pool)
            .await;
            if let Err(error) = saved {
                tracing::warn!(
                    aggregate_type = D::TYPE,
                    aggregate_id,
                    %error,
                    "snapshot not saved; the next load replays further"
                );
            }
        });
    }
}

impl<D: Decider + 'static> EventStore<Versioned<D>> for SnapshotStore<D> {
    type AC = EventStoreAggregateContext<Versioned<D>>;

    async fn load_events(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<EventEnvelope<Versioned<D>>>, Failure<D>> {
        self.repository
            .get_events::<Versioned<D>>(aggregate_id)
            .await?
            .into_iter()
            .map(|event| EventEnvelope::try_from(event).map_err(AggregateError::from))
            .collect()
    }

    async fn load_aggregate(&self, aggregate_id: &str) -> Result<Self::AC, Failure<D>> {
        let (aggregate, snapshot) = self.load(aggregate_id).await?;
        Ok(EventStoreAggregateContext {
            aggregate_id: aggregate_id.to_owned(),
            current_sequence: aggregate.version() as usize,
            aggregate,
            // The version of the snapshot this state started from.
            current_snapshot: Some(snapshot as usize),
        })
    }

    async fn commit(
        &self,
        events: Vec<D::Event>,
        context: Self::AC,
        metadata: HashMap<String, String>,
    ) -> Result<Vec<EventEnvelope<Versioned<D>>>, Failure<D>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let first = context.current_sequence + 1;
        let envelopes: Vec<EventEnvelope<Versioned<D>>> = events
            .into_iter()
            .zip(first..)
            .map(|(payload, sequence)| EventEnvelope {
                aggregate_id: context.aggregate_id.clone(),
                sequence,
                payload,
                metadata: metadata.clone(),
            })
            .collect();
        let serialized = envelopes
            .iter()
            .map(SerializedEvent::try_from)
            .collect::<Result<Vec<_>, PersistenceError>>()?;
        self.repository
            .persist::<Versioned<D>>(&serialized, None)
            .await?;
        // cqrs-es's sink applied the events to this state as `handle` wrote them.
        let committed = (context.current_sequence + envelopes.len()) as u64;
        let from_snapshot = context.current_snapshot.unwrap_or(0) as u64;
        if self.every > 0
            && context.aggregate.version() == committed
            && committed - from_snapshot >= self.every
        {
            self.save(&context.aggregate_id, &context.aggregate);
        }
        Ok(envelopes)
    }
}
