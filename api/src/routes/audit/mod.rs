//! The auditing context over HTTP: the tenant's history in feed order with filters, one
//! stream's events, an aggregate's state as of a version or a time (a replay through the
//! domain, never a read model), a correlation trace with its causation tree, and a streamed
//! NDJSON export. Auditors and admins, always within their own tenant; read from the primary
//! (the event store is the history, a replica may lag behind it).

pub mod export;
pub mod history;
pub mod log;

use chrono::{DateTime, Utc};
use commands::feed::FeedCursor;
use domain::event::RecordedEvent;
use domain::policy::AuditAction;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::http::error::ApiError;
use crate::routes::Routes;

/// The auditing routes.
pub fn routes() -> Routes {
    Routes::new()
        .tag(
            "audit",
            "The history itself: events in feed order, streams, state as of a version or time, \
             correlation traces, NDJSON export, and the verifiable log (signed checkpoints, \
             inclusion and consistency proofs)",
        )
        .query(AuditAction::ReadHistory, routes!(history::list_events))
        .query(AuditAction::ReadHistory, routes!(history::stream_events))
        .query(AuditAction::ReadStateAsOf, routes!(history::state_as_of))
        .query(
            AuditAction::ReadHistory,
            routes!(history::correlation_trace),
        )
        .query(AuditAction::ExportHistory, routes!(export::export_events))
        .query(AuditAction::ReadHistory, routes!(log::latest_checkpoint))
        .query(AuditAction::ReadHistory, routes!(log::signing_key))
        .query(AuditAction::ReadHistory, routes!(log::inclusion_proof))
        .query(AuditAction::ReadHistory, routes!(log::consistency_proof))
}

/// The pattern of a history cursor: `{transaction id}.{global position}`.
pub const CURSOR_PATTERN: &str = "^[0-9]{1,20}\\.[0-9]{1,19}$";

/// A position in the feed as this API writes it: `{transaction id}.{global position}`.
pub fn write_cursor(cursor: FeedCursor) -> String {
    format!("{}.{}", cursor.transaction_id, cursor.global_position)
}

/// Reads a cursor this API wrote.
///
/// # Errors
/// `400 invalid_cursor` naming the parameter.
pub fn read_cursor(name: &str, raw: &str) -> Result<FeedCursor, ApiError> {
    // Digits only, as the pattern says; a number past the largest position the store can hold
    // names a place after all history (an empty page), not an error.
    let number = |digits: &str, max: usize| {
        (1..=max).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
    };
    raw.split_once('.')
        .filter(|(transaction, position)| number(transaction, 20) && number(position, 19))
        .and_then(|(transaction, position)| {
            Some(FeedCursor {
                transaction_id: transaction
                    .parse::<u128>()
                    .ok()?
                    .try_into()
                    .unwrap_or(u64::MAX),
                global_position: position
                    .parse::<u128>()
                    .ok()?
                    .try_into()
                    .unwrap_or(i64::MAX),
            })
        })
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_cursor",
                format!("{name}: not a cursor from this API (`{{transaction}}.{{position}}`)"),
            )
        })
}

/// One stored event, with everything the store keeps about it.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryEvent {
    /// The event's id.
    pub event_id: Uuid,
    /// Its place in the feed (pass as `after` to continue after it).
    pub cursor: String,
    /// Its global position (insert order; the feed orders by commit).
    pub global_position: i64,
    /// The aggregate type, e.g. `User`.
    pub aggregate_type: String,
    /// The aggregate's id.
    pub aggregate_id: String,
    /// 1-based position in the aggregate's stream.
    pub sequence: i64,
    /// e.g. `UserRegistered`.
    pub event_type: String,
    /// The payload's schema version.
    pub event_version: String,
    /// The event as the aggregate wrote it.
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    /// Who, why and when: request, correlation and causation ids, actor, command, tenant.
    #[schema(value_type = Object)]
    pub metadata: domain::event::EventMetadata,
    /// When the database recorded it.
    pub recorded_at: DateTime<Utc>,
}

impl From<RecordedEvent> for HistoryEvent {
    fn from(event: RecordedEvent) -> Self {
        let cursor = write_cursor(FeedCursor::after(&event));
        let aggregate_id = event
            .aggregate_id
            .split_once(':')
            .map_or(event.aggregate_id.as_str(), |(_, id)| id)
            .to_owned();
        Self {
            event_id: event.event_id,
            cursor,
            global_position: event.global_position,
            aggregate_type: event.aggregate_type,
            aggregate_id,
            sequence: event.sequence,
            event_type: event.event_type,
            event_version: event.event_version,
            payload: event.payload,
            metadata: event.metadata,
            recorded_at: event.recorded_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_read_back_what_was_written_and_nothing_else() {
        let cursor = FeedCursor {
            transaction_id: 812,
            global_position: 4711,
        };
        assert_eq!(read_cursor("after", &write_cursor(cursor)).unwrap(), cursor);
        for raw in [
            "", "1", "1.", ".1", "1.2.3", "-1.2", "1.-2", "a.1", "+1.2", "1.+2",
        ] {
            assert!(read_cursor("after", raw).is_err(), "{raw}");
        }
        let far = read_cursor("after", "99999999999999999999.9999999999999999999").unwrap();
        assert_eq!(
            (far.transaction_id, far.global_position),
            (u64::MAX, i64::MAX)
        );
    }
}
