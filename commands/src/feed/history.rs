//! The history as auditors read it: one tenant's events in feed order, filtered; one stream;
//! every event of one correlation id; and ranges for export.
//!
//! Like the feed, every read stops at the transaction horizon (transactions older than every
//! running one), so a page never gains an earlier event after it was read and an export of a
//! range is the same whenever it is taken.

use chrono::{DateTime, Utc};
use domain::event::RecordedEvent;
use sqlx::PgExecutor;

use super::{decode, FeedCursor, FeedError, SELECT_EVENT};

/// What a history page is filtered by (every given filter must hold).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryFilter {
    /// Only events of this aggregate type.
    pub aggregate_type: Option<String>,
    /// Only events of this type.
    pub event_type: Option<String>,
    /// Only events whose command this principal issued.
    pub actor: Option<String>,
    /// Only events of this business operation.
    pub correlation_id: Option<String>,
    /// Only events recorded at or after this time.
    pub recorded_from: Option<DateTime<Utc>>,
    /// Only events recorded before this time.
    pub recorded_before: Option<DateTime<Utc>>,
}

/// Up to `limit` events of `tenant` after `after` (exclusive) and up to `until` (inclusive, if
/// given), in feed order, that match `filter`.
///
/// # Errors
/// [`FeedError`] when the database fails or a row does not decode.
pub async fn page<'e>(
    executor: impl PgExecutor<'e>,
    tenant: &str,
    filter: &HistoryFilter,
    after: FeedCursor,
    until: Option<FeedCursor>,
    limit: i64,
) -> Result<Vec<RecordedEvent>, FeedError> {
    let until = until.unwrap_or(FeedCursor {
        transaction_id: u64::MAX >> 1,
        global_position: i64::MAX,
    });
    let sql = format!(
        "{SELECT_EVENT}
  WHERE tenant_id = $1
    AND (transaction_id, global_position) > ($2::text::xid8, $3)
    AND (transaction_id, global_position) <= ($4::text::xid8, $5)
    AND transaction_id < (SELECT pg_snapshot_xmin(pg_current_snapshot()))
    AND ($6::text IS NULL OR aggregate_type = $6)
    AND ($7::text IS NULL OR event_type = $7)
    AND ($8::text IS NULL OR metadata ->> 'actor' = $8)
    AND ($9::text IS NULL OR metadata ->> 'correlation_id' = $9)
    AND ($10::timestamptz IS NULL OR recorded_at >= $10)
    AND ($11::timestamptz IS NULL OR recorded_at < $11)
  ORDER BY transaction_id, global_position
  LIMIT $12"
    );
    let rows = sqlx::query(&sql)
        .bind(tenant)
        .bind(after.transaction_id.to_string())
        .bind(after.global_position)
        .bind(until.transaction_id.to_string())
        .bind(until.global_position)
        .bind(&filter.aggregate_type)
        .bind(&filter.event_type)
        .bind(&filter.actor)
        .bind(&filter.correlation_id)
        .bind(filter.recorded_from)
        .bind(filter.recorded_before)
        .bind(limit)
        .fetch_all(executor)
        .await?;
    rows.iter().map(decode).collect()
}

/// The last position of `tenant`'s history that can no longer change (the default end of an
/// export taken now); `None` when it has no such event yet.
///
/// The horizon is a scalar subquery, computed once for the whole statement.
///
/// # Errors
/// When the database fails.
pub async fn settled_end<'e>(
    executor: impl PgExecutor<'e>,
    tenant: &str,
) -> Result<Option<FeedCursor>, FeedError> {
    // The text is named apart: `ORDER BY transaction_id` would otherwise sort the output
    // column, the text, so that transaction 976 came after 1038.
    let end: Option<(String, i64)> = sqlx::query_as(
        "SELECT transaction_id::text AS transaction_text, global_position FROM events
          WHERE tenant_id = $1 AND transaction_id < (SELECT pg_snapshot_xmin(pg_current_snapshot()))
          ORDER BY events.transaction_id DESC, events.global_position DESC
          LIMIT 1",
    )
    .bind(tenant)
    .fetch_optional(executor)
    .await?;
    end.map(|(transaction_id, global_position)| {
        Ok(FeedCursor {
            transaction_id: transaction_id.parse().map_err(|e| FeedError::Corrupt {
                global_position,
                source: Box::new(e),
            })?,
            global_position,
        })
    })
    .transpose()
}

/// Up to `limit` events of one stream with a sequence above `after_sequence`, in order.
///
/// # Errors
/// [`FeedError`] when the database fails or a row does not decode.
pub async fn stream_page<'e>(
    executor: impl PgExecutor<'e>,
    aggregate_type: &str,
    aggregate_id: &str,
    after_sequence: i64,
    limit: i64,
) -> Result<Vec<RecordedEvent>, FeedError> {
    let sql = format!(
        "{SELECT_EVENT}
  WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence > $3
    AND tenant_id = split_part($2, ':', 1)
  ORDER BY sequence
  LIMIT $4"
    );
    let rows = sqlx::query(&sql)
        .bind(aggregate_type)
        .bind(aggregate_id)
        .bind(after_sequence)
        .bind(limit)
        .fetch_all(executor)
        .await?;
    rows.iter().map(decode).collect()
}

/// The events of one stream from sequence 1 up to `version` (inclusive) or recorded at or
/// before `at`, whichever is given (both: both must hold), in order.
///
/// # Errors
/// [`FeedError`] when the database fails or a row does not decode.
pub async fn stream_as_of<'e>(
    executor: impl PgExecutor<'e>,
    aggregate_type: &str,
    aggregate_id: &str,
    version: Option<i64>,
    at: Option<DateTime<Utc>>,
) -> Result<Vec<RecordedEvent>, FeedError> {
    let sql = format!(
        "{SELECT_EVENT}
  WHERE aggregate_type = $1 AND aggregate_id = $2
    AND tenant_id = split_part($2, ':', 1)
    AND ($3::bigint IS NULL OR sequence <= $3)
    AND ($4::timestamptz IS NULL OR recorded_at <= $4)
  ORDER BY sequence"
    );
    let rows = sqlx::query(&sql)
        .bind(aggregate_type)
        .bind(aggregate_id)
        .bind(version)
        .bind(at)
        .fetch_all(executor)
        .await?;
    let events: Vec<RecordedEvent> = rows.iter().map(decode).collect::<Result<_, _>>()?;
    // Recorded times follow sequence order within a stream; a prefix is what "as of" means even
    // if a clock went backwards.
    Ok(events
        .into_iter()
        .enumerate()
        .take_while(|(index, event)| event.sequence == *index as i64 + 1)
        .map(|(_, event)| event)
        .collect())
}

/// The head (last sequence) of one stream, 0 when it has no event.
///
/// # Errors
/// When the database fails.
pub async fn stream_head<'e>(
    executor: impl PgExecutor<'e>,
    aggregate_type: &str,
    aggregate_id: &str,
) -> Result<i64, FeedError> {
    Ok(sqlx::query_scalar(
        "SELECT coalesce(max(sequence), 0) FROM events
          WHERE aggregate_type = $1 AND aggregate_id = $2 AND tenant_id = split_part($2, ':', 1)",
    )
    .bind(aggregate_type)
    .bind(aggregate_id)
    .fetch_one(executor)
    .await?)
}

/// Every settled event of `tenant` sharing `correlation_id`, in feed order, up to `limit`.
///
/// # Errors
/// [`FeedError`] when the database fails or a row does not decode.
pub async fn correlated<'e>(
    executor: impl PgExecutor<'e>,
    tenant: &str,
    correlation_id: &str,
    limit: i64,
) -> Result<Vec<RecordedEvent>, FeedError> {
    let sql = format!(
        "{SELECT_EVENT}
  WHERE tenant_id = $1 AND metadata ->> 'correlation_id' = $2
    AND transaction_id < (SELECT pg_snapshot_xmin(pg_current_snapshot()))
  ORDER BY transaction_id, global_position
  LIMIT $3"
    );
    let rows = sqlx::query(&sql)
        .bind(tenant)
        .bind(correlation_id)
        .bind(limit)
        .fetch_all(executor)
        .await?;
    rows.iter().map(decode).collect()
}
