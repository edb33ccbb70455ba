//! The streamed export: a range of the tenant's history as NDJSON, one event per line, in feed
//! order, read and written a chunk at a time so memory stays flat whatever the range's size.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use commands::feed::history::{self, HistoryFilter};
use commands::feed::FeedCursor;
use domain::policy::AuditAction;
use serde::Deserialize;
use sqlx::PgPool;
use utoipa::IntoParams;

use super::history::ListEvents;
use super::{read_cursor, write_cursor, HistoryEvent};
use crate::http::error::{ApiError, Problem};
use crate::http::extract::{Caller, QueryParams};
use crate::routes::AppState;

/// Events read per round trip.
const CHUNK: i64 = 1000;

/// The range and filters of an export.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Export {
    /// Only events of this aggregate type.
    #[param(value_type = Option<crate::http::schema::AggregateType>, inline)]
    pub aggregate_type: Option<String>,
    /// Only events of this type, e.g. `UserRegistered`.
    #[param(max_length = 64, pattern = "^[A-Za-z][A-Za-z0-9]{0,63}$")]
    pub event_type: Option<String>,
    /// Only events whose command this principal issued.
    #[param(max_length = 128, pattern = "^[A-Za-z0-9:._-]{1,128}$")]
    pub actor: Option<String>,
    /// Only events of this business operation.
    #[param(max_length = 128, pattern = "^[A-Za-z0-9:._-]{1,128}$")]
    pub correlation_id: Option<String>,
    /// Recorded at or after (RFC 3339).
    pub recorded_from: Option<chrono::DateTime<chrono::Utc>>,
    /// Recorded before (RFC 3339).
    pub recorded_before: Option<chrono::DateTime<chrono::Utc>>,
    /// Start after this cursor (exclusive); from the beginning when absent.
    #[param(max_length = 40, pattern = "^[0-9]{1,20}\\.[0-9]{1,19}$")]
    pub after: Option<String>,
    /// End at this cursor (inclusive), or where the settled history ends if that is earlier;
    /// where it ends when absent (the end used is in the `Export-Until` header).
    #[param(max_length = 40, pattern = "^[0-9]{1,20}\\.[0-9]{1,19}$")]
    pub until: Option<String>,
}

/// A range of the tenant's history as NDJSON: one event per line (the same fields as the
/// history pages), in feed order, streamed in constant memory (auditors and admins).
#[utoipa::path(
    get, path = "/api/v1/audit/export", tag = "audit",
    params(Export),
    responses(
        (status = 200, description = "The events, one JSON object per line; `Export-Until` \
            holds the cursor the export ends at (absent when the range is empty)",
            content_type = "application/x-ndjson", body = String,
            headers(("Export-Until" = String, description = "The last cursor included"))),
        (status = 400, description = "Invalid parameters", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn export_events(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(params): QueryParams<Export>,
) -> Result<Response, ApiError> {
    let tenant = caller
        .may_read(AuditAction::ExportHistory, None)?
        .as_str()
        .to_owned();
    let filter = ListEvents {
        aggregate_type: params.aggregate_type,
        event_type: params.event_type,
        actor: params.actor,
        correlation_id: params.correlation_id,
        recorded_from: params.recorded_from,
        recorded_before: params.recorded_before,
        after: None,
        limit: None,
    }
    .filter()?;
    let after = params
        .after
        .as_deref()
        .map(|raw| read_cursor("after", raw))
        .transpose()?
        .unwrap_or_default();
    // Never past what has settled: the same range exported later holds the same events.
    let settled = history::settled_end(&state.pool, &tenant).await?;
    let until = match params.until.as_deref() {
        Some(raw) => {
            let asked = read_cursor("until", raw)?;
            settled.map(|settled| asked.min(settled))
        }
        None => settled,
    };
    let mut response = match until {
        Some(until) => {
            let chunks = Chunks {
                pool: state.pool.clone(),
                tenant,
                filter,
                after,
                until,
                done: false,
            };
            let mut response =
                Body::from_stream(futures::stream::unfold(chunks, Chunks::next)).into_response();
            if let Ok(value) = HeaderValue::from_str(&write_cursor(until)) {
                response.headers_mut().insert("export-until", value);
            }
            response
        }
        None => Body::empty().into_response(),
    };
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    Ok(response)
}

/// The export's reading state: what is left of the range.
struct Chunks {
    pool: PgPool,
    tenant: String,
    filter: HistoryFilter,
    after: FeedCursor,
    until: FeedCursor,
    done: bool,
}

impl Chunks {
    /// The next chunk of lines; `None` at the end of the range. A failure ends the body with
    /// an error, so the client sees a broken transfer rather than a short export.
    async fn next(mut self) -> Option<(Result<Bytes, std::io::Error>, Self)> {
        if self.done {
            return None;
        }
        let events = match history::page(
            &self.pool,
            &self.tenant,
            &self.filter,
            self.after,
            Some(self.until),
            CHUNK,
        )
        .await
        {
            Ok(events) => events,
            Err(error) => {
                tracing::error!(error = %error, "an export failed mid-way; the transfer is cut");
                self.done = true;
                return Some((Err(std::io::Error::other(error)), self));
            }
        };
        let last = events.last()?;
        self.after = FeedCursor::after(last);
        self.done = events.len() < CHUNK as usize;
        let mut lines = Vec::with_capacity(events.len() * 512);
        for event in events {
            if let Err(error) = serde_json::to_writer(&mut lines, &HistoryEvent::from(event)) {
                self.done = true;
                return Some((Err(std::io::Error::other(error)), self));
            }
            lines.push(b'\n');
        }
        Some((Ok(Bytes::from(lines)), self))
    }
}
