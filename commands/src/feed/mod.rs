//! The global feed of the event store: every event exactly once, in an order that never changes.
//!
//! This module (with [`history`], the auditors' reads) is the only one that reads the `events`
//! table by position.
//!
//! Why not simply `ORDER BY global_position`: an identity value is taken at INSERT, but the row
//! becomes visible at COMMIT. A reader can see position 2 while position 1's transaction is still
//! open, advance past it, and lose 1 forever when it commits. Serialising writers would fix that
//! at a large cost in throughput, so instead the feed orders by the writing transaction's id and
//! reads only transactions older than every transaction still running
//! (`pg_snapshot_xmin(pg_current_snapshot())`). Those can no longer change: nothing can ever
//! appear behind the cursor. The price is that one long-open write transaction holds the feed
//! back; [`held_by_horizon`] reports how many committed events wait behind it, and the pool's
//! `statement_timeout`/`idle_in_transaction_session_timeout` bound how long that can last.
//!
//! Within one aggregate the order is the stream order: the transaction appending sequence n+1
//! read sequence n after it committed, so it was given a larger transaction id.

pub mod history;

use chrono::{DateTime, Utc};
use domain::event::{EventMetadata, RecordedEvent};
use sqlx::postgres::{PgRow, PgValueRef};
use sqlx::types::Json;
use sqlx::{Decode, PgExecutor, Postgres, Row};
use uuid::Uuid;

/// A position in the global feed: the last event read. `FeedCursor::default()` is the start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct FeedCursor {
    /// The writing transaction of the last event read.
    pub transaction_id: u64,
    /// Its global position.
    pub global_position: i64,
}

impl FeedCursor {
    /// The cursor just after `event`.
    pub fn after(event: &RecordedEvent) -> Self {
        Self {
            transaction_id: event.transaction_id,
            global_position: event.global_position,
        }
    }
}

/// Why a feed read failed.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// The database failed.
    #[error("reading the event feed failed")]
    Database(#[from] sqlx::Error),
    /// A stored row does not decode: the store holds something the code does not expect.
    #[error("event at global position {global_position} does not decode")]
    Corrupt {
        /// Where.
        global_position: i64,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

// The text alias must not be called `transaction_id`: ORDER BY would then sort by the text
// ("10000" < "9999") instead of the xid8 column. `decode` reads the columns by their place.
const SELECT_EVENT: &str = "
SELECT event_id, global_position, transaction_id::text AS transaction_id_text, tenant_id,
       aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata,
       recorded_at
  FROM events";

/// Reads up to `limit` events after `cursor`, among transactions that can no longer change.
///
/// # Errors
/// [`FeedError`] when the database fails or a row does not decode.
pub async fn read<'e>(
    executor: impl PgExecutor<'e>,
    cursor: FeedCursor,
    limit: i64,
) -> Result<Vec<RecordedEvent>, FeedError> {
    let sql = format!(
        "{SELECT_EVENT}
  WHERE (transaction_id, global_position) > ($1::text::xid8, $2)
    AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
  ORDER BY transaction_id, global_position
  LIMIT $3"
    );
    let rows = sqlx::query(&sql)
        .bind(cursor.transaction_id.to_string())
        .bind(cursor.global_position)
        .bind(limit)
        .fetch_all(executor)
        .await?;
    rows.iter().map(decode).collect()
}

/// Committed events after `cursor` that the feed may not pass yet because an older
/// transaction is still open.
///
/// # Errors
/// When the database fails.
pub async fn held_by_horizon<'e>(
    executor: impl PgExecutor<'e>,
    cursor: FeedCursor,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT count(*) FROM events
          WHERE (transaction_id, global_position) > ($1::text::xid8, $2)
            AND transaction_id >= pg_snapshot_xmin(pg_current_snapshot())",
    )
    .bind(cursor.transaction_id.to_string())
    .bind(cursor.global_position)
    .fetch_one(executor)
    .await
}

/// Committed events after `cursor`: how many an older open transaction still holds back, and
/// how many there are in all. After a read that returned none, the difference settled in the
/// meantime: it is unread although nothing holds it any more.
///
/// # Errors
/// When the database fails.
pub async fn after_cursor<'e>(
    executor: impl PgExecutor<'e>,
    cursor: FeedCursor,
) -> Result<(i64, i64), sqlx::Error> {
    sqlx::query_as(
        "SELECT count(*) FILTER (WHERE transaction_id >= pg_snapshot_xmin(pg_current_snapshot())),
                count(*)
           FROM events
          WHERE (transaction_id, global_position) > ($1::text::xid8, $2)",
    )
    .bind(cursor.transaction_id.to_string())
    .bind(cursor.global_position)
    .fetch_one(executor)
    .await
}

/// Every event of one stream, in sequence order (for replays and audits).
///
/// # Errors
/// [`FeedError`] when the database fails or a row does not decode.
pub async fn read_stream<'e>(
    executor: impl PgExecutor<'e>,
    aggregate_type: &str,
    aggregate_id: &str,
) -> Result<Vec<RecordedEvent>, FeedError> {
    let sql =
        format!("{SELECT_EVENT} WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY sequence");
    let rows = sqlx::query(&sql)
        .bind(aggregate_type)
        .bind(aggregate_id)
        .fetch_all(executor)
        .await?;
    rows.iter().map(decode).collect()
}

/// Stored metadata (a `json` column), straight into its struct without building a JSON object
/// first; a hand-written row the struct refuses (a key written twice, where the last counts, as
/// in Postgres) is read through a JSON object as before.
fn metadata_of(value: PgValueRef<'_>) -> Result<EventMetadata, sqlx::error::BoxDynError> {
    let fallback = value.clone();
    match <Json<EventMetadata> as Decode<Postgres>>::decode(value) {
        Ok(Json(metadata)) => Ok(metadata),
        Err(_) => {
            let Json(object) = <Json<serde_json::Value> as Decode<Postgres>>::decode(fallback)?;
            Ok(serde_json::from_value(object)?)
        }
    }
}

/// An event of a row of [`SELECT_EVENT`], its columns read by their place (looking each name up
/// cost a twentieth of reading the feed).
fn decode(row: &PgRow) -> Result<RecordedEvent, FeedError> {
    let global_position: i64 = row.try_get(1)?;
    let corrupt = |source: Box<dyn std::error::Error + Send + Sync>| FeedError::Corrupt {
        global_position,
        source,
    };
    let transaction_id: String = row.try_get(2)?;
    let metadata = metadata_of(row.try_get_raw(10)?).map_err(corrupt)?;
    Ok(RecordedEvent {
        event_id: row.try_get::<Uuid, _>(0)?,
        global_position,
        transaction_id: transaction_id.parse().map_err(|e| corrupt(Box::new(e)))?,
        tenant_id: row.try_get(3)?,
        aggregate_type: row.try_get(4)?,
        aggregate_id: row.try_get(5)?,
        sequence: row.try_get(6)?,
        event_type: row.try_get(7)?,
        event_version: row.try_get(8)?,
        payload: row.try_get(9)?,
        metadata,
        recorded_at: row.try_get::<DateTime<Utc>, _>(11)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `decode` reads the columns by place: they are the ones [`SELECT_EVENT`] lists, in order.
    #[test]
    fn select_event_lists_the_columns_in_the_order_decode_reads_them() {
        let list = SELECT_EVENT
            .split("FROM")
            .next()
            .and_then(|select| select.trim().strip_prefix("SELECT"))
            .unwrap();
        let columns: Vec<&str> = list
            .split(',')
            .map(|column| column.split_whitespace().last().unwrap())
            .collect();
        assert_eq!(
            columns,
            [
                "event_id",
                "global_position",
                "transaction_id_text",
                "tenant_id",
                "aggregate_type",
                "aggregate_id",
                "sequence",
                "event_type",
                "event_version",
                "payload",
                "metadata",
                "recorded_at"
            ]
        );
    }
}
