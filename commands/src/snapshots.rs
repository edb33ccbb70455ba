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
use std::sync::Arc;

use cqrs_es::persist::{
    EventStoreAggregateContext, PersistedEventRepository, PersistenceError, SerializedEvent,
};
use cqrs_es::{AggregateError, EventEnvelope, EventStore};
use domain::aggregate::{resume, Decider, Rejection, Versioned};
use postgres_es::PostgresEventRepository;
use serde_json::Value;
use sqlx::PgPool;
use tokio::sync::watch;
use uuid::Uuid;

type Failure<D> = AggregateError<Rejection<<D as Decider>::Error>>;

/// The event store's primary key: a second event at the same sequence of a stream.
const EVENTS_PRIMARY_KEY: &str = "events_pkey";

/// One stored payload as the decider's event.
fn decode<D: Decider>(payload: Value) -> Result<D::Event, Failure<D>> {
    serde_json::from_value(payload)
        .map_err(|error| AggregateError::DeserializationError(Box::new(error)))
}

/// The event store of one aggregate type, with snapshots every `every` events (never when 0).
pub struct SnapshotStore<D> {
    repository: PostgresEventRepository,
    pool: PgPool,
    every: u64,
    /// The snapshot writes in flight (they run after the command has its answer).
    saving: Arc<watch::Sender<usize>>,
    decider: PhantomData<fn() -> D>,
}

impl<D> Clone for SnapshotStore<D> {
    fn clone(&self) -> Self {
        Self {
            repository: PostgresEventRepository::new(self.pool.clone()),
            pool: self.pool.clone(),
            every: self.every,
            saving: self.saving.clone(),
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
            saving: Arc::new(watch::Sender::new(0)),
            decider: PhantomData,
        }
    }

    /// The aggregate's current state, and the version of the snapshot it started from (0 when
    /// it replayed the whole stream).
    ///
    /// One round trip: the usable snapshot, if any, and the events after it. Only when the
    /// snapshot turns out not to decode does a second read replay the whole stream.
    ///
    /// # Errors
    /// When the store fails or a stored event does not decode.
    pub async fn load(&self, aggregate_id: &str) -> Result<(Versioned<D>, u64), Failure<D>> {
        // Only a snapshot of a version the stream has (a store restored without its snapshots
        // must not be decided on from a state it no longer holds). A stream's sequences run from
        // 1 to its head without gaps, so "has" is "at most the head": one index entry read from
        // the end, spelled as ORDER BY ... LIMIT 1 because the cached generic plans of both an
        // `EXISTS` on the version and a `max()` read every entry of the stream (3 ms and 776
        // buffers on a 10,000-event stream, against 5 buffers).
        // A union promises no order, so the rows are put in order here (cheaply: the events
        // come from the index in order).
        let mut rows: Vec<(bool, i64, Value)> = sqlx::query_as(
            "WITH snapshot AS (
                 SELECT s.version, s.state FROM snapshots.aggregates s
                  WHERE $4 AND s.aggregate_type = $1 AND s.aggregate_id = $2 AND s.schema = $3
                    AND s.version <= (SELECT e.sequence FROM events e
                                       WHERE e.aggregate_type = $1 AND e.aggregate_id = $2
                                       ORDER BY e.sequence DESC LIMIT 1))
             SELECT true, version, state::json FROM snapshot
             UNION ALL
             (SELECT false, sequence, payload FROM events
               WHERE aggregate_type = $1 AND aggregate_id = $2
                 AND sequence > coalesce((SELECT version FROM snapshot), 0)
               ORDER BY sequence)",
        )
        .bind(D::TYPE)
        .bind(aggregate_id)
        .bind(i64::from(D::SNAPSHOT_SCHEMA))
        .bind(self.every > 0)
        .fetch_all(&self.pool)
        .await
        .map_err(store_failure::<D>)?;
        // The snapshot first, then the events by sequence.
        rows.sort_by_key(|(snapshot, version, _)| (!*snapshot, *version));
        let mut rows = rows.into_iter().peekable();
        if let Some((_, version, state)) = rows.next_if(|(snapshot, ..)| *snapshot) {
            if let Some(snapshot) = self.usable(aggregate_id, version, state) {
                let events = rows
                    .map(|(_, _, payload)| decode::<D>(payload))
                    .collect::<Result<Vec<_>, _>>()?;
                return Ok((resume(snapshot, &events), version.unsigned_abs()));
            }
            let events = self.events_after(aggregate_id, 0).await?;
            return Ok((resume(Versioned::default(), &events), 0));
        }
        let events = rows
            .map(|(_, _, payload)| decode::<D>(payload))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((resume(Versioned::default(), &events), 0))
    }

    /// The snapshot's state, when it decodes and records the version it was stored under.
    fn usable(&self, aggregate_id: &str, version: i64, state: Value) -> Option<Versioned<D>> {
        match serde_json::from_value::<Versioned<D>>(state) {
            Ok(snapshot) if i64::try_from(snapshot.version()) == Ok(version) => Some(snapshot),
            Ok(_) => {
                tracing::warn!(
                    aggregate_type = D::TYPE,
                    aggregate_id,
                    "snapshot's state does not record its version; replaying the stream"
                );
                None
            }
            Err(error) => {
                tracing::warn!(
                    aggregate_type = D::TYPE,
                    aggregate_id,
                    %error,
                    "snapshot does not decode; replaying the stream"
                );
                None
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
        payloads.into_iter().map(decode::<D>).collect()
    }

    /// Appends one command's events in one statement (its own transaction, so one round trip
    /// and one commit). The store's triggers (email claims, idempotency keys) run inside it.
    /// Another writer's event at one of these sequences is a conflict, as in postgres-es.
    async fn append(&self, events: &[SerializedEvent]) -> Result<(), Failure<D>> {
        let Some(first) = events.first() else {
            return Ok(());
        };
        let mut sequences = Vec::with_capacity(events.len());
        let mut types = Vec::with_capacity(events.len());
        let mut versions = Vec::with_capacity(events.len());
        let mut payloads = Vec::with_capacity(events.len());
        // Time-ordered ids: each lands at the end of the event-id index instead of on a random
        // page of it (after every checkpoint, a random page costs a full-page image in the WAL).
        let ids: Vec<Uuid> = events.iter().map(|_| Uuid::now_v7()).collect();
        for event in events {
            sequences.push(i64::try_from(event.sequence).unwrap_or(i64::MAX));
            types.push(event.event_type.as_str());
            versions.push(event.event_version.as_str());
            payloads.push(&event.payload);
        }
        // Every event of a command carries the same metadata.
        sqlx::query(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                                 payload, metadata, event_id)
             SELECT $1, $2, e.sequence, e.event_type, e.event_version, e.payload::json, $7::json,
                    e.event_id
               FROM unnest($3::bigint[], $4::text[], $5::text[], $6::jsonb[], $8::uuid[])
                    AS e(sequence, event_type, event_version, payload, event_id)
              ORDER BY e.sequence",
        )
        .bind(D::TYPE)
        .bind(&first.aggregate_id)
        .bind(&sequences)
        .bind(&types)
        .bind(&versions)
        .bind(&payloads)
        .bind(&first.metadata)
        .bind(&ids)
        .execute(&self.pool)
        .await
        .map_err(|error| match error.as_database_error() {
            Some(db) if db.constraint() == Some(EVENTS_PRIMARY_KEY) => {
                AggregateError::AggregateConflict
            }
            _ => store_failure::<D>(error),
        })?;
        Ok(())
    }

    /// Records the idempotency key of a command that changed nothing (no event carries it to
    /// the `0005_idempotency_keys` trigger), with the version it answered. A key already
    /// recorded fails on the same constraint as an append would, so the caller answers a
    /// retry with its first outcome and refuses the key for another request.
    async fn record_unchanged(
        &self,
        context: &EventStoreAggregateContext<Versioned<D>>,
        metadata: &HashMap<String, String>,
    ) -> Result<(), Failure<D>> {
        let (Some(key), Some(hash), Some(actor), Some(tenant)) = (
            metadata.get("idempotency_key"),
            metadata.get("request_hash"),
            metadata.get("actor"),
            metadata.get("tenant_id"),
        ) else {
            return Ok(());
        };
        sqlx::query(
            "INSERT INTO idempotency_keys (tenant_id, actor, key, request_hash, aggregate_type,
                                           aggregate_id, version)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(tenant)
        .bind(actor)
        .bind(key)
        .bind(hash)
        .bind(D::TYPE)
        .bind(&context.aggregate_id)
        .bind(i64::try_from(context.current_sequence).unwrap_or(i64::MAX))
        .execute(&self.pool)
        .await
        .map_err(store_failure::<D>)?;
        Ok(())
    }

    /// Waits until every snapshot write started so far has finished (written, skipped for a
    /// newer one, or failed and logged).
    pub async fn snapshots_saved(&self) {
        // The sender lives in `self`, so the channel stays open while this waits.
        let _ = self
            .saving
            .subscribe()
            .wait_for(|writing| *writing == 0)
            .await;
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
        let saving = self.saving.clone();
        saving.send_modify(|writing| *writing += 1);
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
            saving.send_modify(|writing| *writing -= 1);
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
            // Nothing changed: the answer is the version the command was decided on, and a
            // client's idempotency key is recorded as an append would have recorded it.
            self.record_unchanged(&context, &metadata).await?;
            let _ = crate::bus::COMMITTED_VERSION
                .try_with(|cell| cell.set(Some(context.current_sequence as u64)));
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
        self.append(&serialized).await?;
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
