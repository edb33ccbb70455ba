//! The per-stream guard: what makes redelivery harmless.
//!
//! For each projection and stream, `projection.stream_positions` holds the last sequence
//! applied. An event is applied only when it is exactly the next one; an older one is a
//! duplicate (acknowledged, not applied) and a newer one is a gap (retried later, or filled from
//! the store). The guard rows of a batch are locked for its transaction, so two workers can never
//! apply the same stream side by side, and they are written in the same transaction as the read
//! model: either both change or neither does.

use std::collections::{HashMap, HashSet};

use domain::event::RecordedEvent;
use sqlx::PgConnection;
use tracing::warn;

use super::parking::park;
use super::source::error_chain;
use super::{ApplyError, Projection};

/// What the per-stream guard decided for one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The next event of its stream: applied.
    Applied,
    /// Already applied (a redelivery or a re-publish): acknowledged, not applied.
    Duplicate,
    /// An earlier event of its stream has not been applied yet: retried later.
    Gap,
    /// Its stream is parked (by this event, or by an earlier one it now waits behind): kept in
    /// `projection.parked` until a retry, and acknowledged.
    Parked,
}

/// A stream's key in the guard: (aggregate type, aggregate id), borrowed from the batch.
pub(super) type StreamKey<'a> = (&'a str, &'a str);

pub(super) fn stream_key(event: &RecordedEvent) -> StreamKey<'_> {
    (event.aggregate_type.as_str(), event.aggregate_id.as_str())
}

/// The per-stream guard of one batch: the last applied sequence of each of its streams, and
/// which of them are parked.
#[derive(Debug, Clone, Default)]
pub(super) struct Guard<'a> {
    last: HashMap<StreamKey<'a>, i64>,
    advanced: HashSet<StreamKey<'a>>,
    pub(super) parked: HashSet<StreamKey<'a>>,
}

impl<'a> Guard<'a> {
    /// Reads, and locks, the guard rows of every stream in `events`, and which of them are
    /// parked, in one statement.
    pub(super) async fn load(
        connection: &mut PgConnection,
        projection: &str,
        events: &[&'a RecordedEvent],
    ) -> Result<Self, sqlx::Error> {
        let streams: Vec<StreamKey<'a>> = events.iter().map(|event| stream_key(event)).collect();
        Self::load_streams(connection, projection, streams).await
    }

    /// The same for the streams named, which need no event at hand (a catch-up from the store
    /// knows only which streams are behind).
    pub(super) async fn load_streams(
        connection: &mut PgConnection,
        projection: &str,
        mut streams: Vec<StreamKey<'a>>,
    ) -> Result<Self, sqlx::Error> {
        streams.sort_unstable();
        streams.dedup();
        let (types, ids): (Vec<&str>, Vec<&str>) = streams.iter().copied().unzip();
        // Rows are locked in key order, so overlapping batches cannot deadlock on them.
        //
        // Planned for every batch (not prepared): a cached generic plan cannot see how many
        // streams the arrays hold, and one built while the table was small stayed a hash join
        // over all of the projection's rows as the table grew (the bench profiled 10 ms per
        // batch under load; planned with the arrays at hand it is an index lookup per stream).
        let rows: Vec<(String, String, i64, bool)> = sqlx::query_as(
            "WITH batch AS (SELECT * FROM unnest($2::text[], $3::text[]) AS b(aggregate_type, aggregate_id)),
             positions AS (
                 SELECT aggregate_type, aggregate_id, last_sequence FROM projection.stream_positions
                  WHERE projection = $1 AND (aggregate_type, aggregate_id) IN (SELECT * FROM batch)
                  ORDER BY aggregate_type, aggregate_id
                  FOR UPDATE)
             SELECT aggregate_type, aggregate_id, last_sequence, false FROM positions
             UNION ALL
             SELECT DISTINCT aggregate_type, aggregate_id, 0, true FROM projection.parked
              WHERE projection = $1 AND (aggregate_type, aggregate_id) IN (SELECT * FROM batch)",
        )
        .bind(projection)
        .bind(&types)
        .bind(&ids)
        .persistent(false)
        .fetch_all(connection)
        .await?;
        let mut guard = Self::default();
        for (aggregate_type, aggregate_id, last_sequence, parked) in rows {
            // Keys borrow from the batch, not from the rows.
            let Ok(at) = streams.binary_search(&(aggregate_type.as_str(), aggregate_id.as_str()))
            else {
                continue;
            };
            if parked {
                guard.parked.insert(streams[at]);
            } else {
                guard.last.insert(streams[at], last_sequence);
            }
        }
        Ok(guard)
    }

    pub(super) fn next(&self, event: &RecordedEvent) -> i64 {
        self.last_of(stream_key(event)) + 1
    }

    /// The last sequence applied of `stream` (0: none).
    pub(super) fn last_of(&self, stream: StreamKey<'_>) -> i64 {
        self.last.get(&stream).copied().unwrap_or(0)
    }

    pub(super) fn is_parked(&self, event: &RecordedEvent) -> bool {
        self.is_parked_stream(stream_key(event))
    }

    pub(super) fn is_parked_stream(&self, stream: StreamKey<'_>) -> bool {
        self.parked.contains(&stream)
    }

    pub(super) fn applied(&mut self, event: &'a RecordedEvent) {
        let key = stream_key(event);
        self.last.insert(key, event.sequence);
        self.advanced.insert(key);
    }

    /// Writes the positions of the streams this batch advanced, in one statement.
    pub(super) async fn save(
        &self,
        connection: &mut PgConnection,
        projection: &str,
    ) -> Result<(), sqlx::Error> {
        if self.advanced.is_empty() {
            return Ok(());
        }
        let mut rows: Vec<(&str, &str, i64)> = self
            .advanced
            .iter()
            .map(|key| (key.0, key.1, self.last[key]))
            .collect();
        // A stable order keeps concurrent writers of overlapping guards from deadlocking.
        rows.sort_unstable();
        let types: Vec<&str> = rows.iter().map(|row| row.0).collect();
        let ids: Vec<&str> = rows.iter().map(|row| row.1).collect();
        let sequences: Vec<i64> = rows.iter().map(|row| row.2).collect();
        sqlx::query(
            "INSERT INTO projection.stream_positions
                    (projection, aggregate_type, aggregate_id, last_sequence)
             SELECT $1, * FROM unnest($2::text[], $3::text[], $4::bigint[])
             ON CONFLICT (projection, aggregate_type, aggregate_id)
             DO UPDATE SET last_sequence = EXCLUDED.last_sequence",
        )
        .bind(projection)
        .bind(&types)
        .bind(&ids)
        .bind(&sequences)
        .execute(connection)
        .await?;
        Ok(())
    }
}

/// Walks a batch against `guard`. Without `isolated`, the verdicts are decided first and every
/// event found next of its stream is applied in one [`Projection::apply_batch`]; a deterministic
/// failure ends the walk with `None` (the caller rolls back and walks again isolated). With it,
/// each event is applied behind a savepoint and a failure parks its stream.
pub(super) async fn walk<'a, P: Projection>(
    projection: &P,
    name: &str,
    connection: &mut PgConnection,
    events: &[&'a RecordedEvent],
    guard: &mut Guard<'a>,
    isolated: bool,
) -> Result<Option<Vec<Verdict>>, ApplyError> {
    if !isolated {
        return walk_batched(projection, name, connection, events, guard).await;
    }
    let mut verdicts = Vec::with_capacity(events.len());
    for &event in events {
        let verdict = if let Some(verdict) = not_next(name, connection, guard, event).await? {
            verdict
        } else {
            match apply_isolated(projection, &mut *connection, event).await? {
                Applied::Yes => {
                    guard.applied(event);
                    Verdict::Applied
                }
                Applied::No(error) => {
                    warn!(projection = name, stream = %event.aggregate_id, sequence = event.sequence,
                        error = %error, "event cannot be applied; parking its stream");
                    park(&mut *connection, name, event, Some(&error)).await?;
                    guard.parked.insert(stream_key(event));
                    Verdict::Parked
                }
            }
        };
        verdicts.push(verdict);
    }
    Ok(Some(verdicts))
}

/// The verdict on an event that is not the next of its stream (a duplicate, a gap, or behind a
/// parked stream, which it joins); `None` for the next one, which the caller applies.
async fn not_next(
    name: &str,
    connection: &mut PgConnection,
    guard: &Guard<'_>,
    event: &RecordedEvent,
) -> Result<Option<Verdict>, ApplyError> {
    let next = guard.next(event);
    Ok(if event.sequence < next {
        Some(Verdict::Duplicate)
    } else if guard.is_parked(event) {
        park(connection, name, event, None).await?;
        Some(Verdict::Parked)
    } else if event.sequence > next {
        Some(Verdict::Gap)
    } else {
        None
    })
}

/// The walk without isolation: the guard decides every event in memory (an applied event moves
/// its stream on for the ones after it), and those to apply go to the projection together.
async fn walk_batched<'a, P: Projection>(
    projection: &P,
    name: &str,
    connection: &mut PgConnection,
    events: &[&'a RecordedEvent],
    guard: &mut Guard<'a>,
) -> Result<Option<Vec<Verdict>>, ApplyError> {
    let mut verdicts = Vec::with_capacity(events.len());
    let mut ready = Vec::with_capacity(events.len());
    for &event in events {
        let verdict = if let Some(verdict) = not_next(name, connection, guard, event).await? {
            verdict
        } else {
            guard.applied(event);
            ready.push(event);
            Verdict::Applied
        };
        verdicts.push(verdict);
    }
    if ready.is_empty() {
        return Ok(Some(verdicts));
    }
    match projection.apply_batch(&mut *connection, &ready).await {
        Ok(()) => Ok(Some(verdicts)),
        Err(error) if error.is_transient() => Err(error),
        Err(_) => Ok(None),
    }
}

/// Whether an event was applied, or why it could not be (deterministically).
pub(super) enum Applied {
    Yes,
    No(String),
}

/// Applies one event behind a savepoint. A deterministic failure rolls back to the savepoint
/// and is returned as `Applied::No` with its cause chain.
pub(super) async fn apply_isolated<P: Projection>(
    projection: &P,
    connection: &mut PgConnection,
    event: &RecordedEvent,
) -> Result<Applied, ApplyError> {
    sqlx::query("SAVEPOINT apply_event")
        .execute(&mut *connection)
        .await?;
    match projection.apply(connection, event).await {
        Ok(()) => {}
        Err(error) if error.is_transient() => return Err(error),
        Err(error) => {
            sqlx::query("ROLLBACK TO SAVEPOINT apply_event")
                .execute(&mut *connection)
                .await?;
            return Ok(Applied::No(error_chain(&error)));
        }
    }
    sqlx::query("RELEASE SAVEPOINT apply_event")
        .execute(connection)
        .await?;
    Ok(Applied::Yes)
}
