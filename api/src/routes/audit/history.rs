//! Reading the history: pages in feed order, one stream, state as of a version or time, and a
//! correlation trace.

use std::collections::{HashMap, HashSet};

use axum::extract::{Path, State};
use axum::Json;
use chrono::{DateTime, Utc};
use commands::feed::history::{self, HistoryFilter};
use commands::feed::FeedCursor;
use domain::audit::replay_stored;
use domain::policy::AuditAction;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{read_cursor, HistoryEvent};
use crate::http::error::{ApiError, Problem};
use crate::http::extract::{is_valid_id, parse_id, Caller, QueryParams};
use crate::http::respond::{page_limit, paged, read_ahead};
use crate::http::schema;
use crate::routes::AppState;

/// The most events a correlation trace returns.
const TRACE_LIMIT: i64 = 1000;

/// Filters and paging of the history.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListEvents {
    /// Only events of this aggregate type.
    #[param(value_type = Option<schema::AggregateType>, inline)]
    pub aggregate_type: Option<String>,
    /// Only events of this type, e.g. `UserRegistered`.
    #[param(max_length = 64, pattern = "^[A-Za-z][A-Za-z0-9]{0,63}$")]
    pub event_type: Option<String>,
    /// Only events whose command this principal issued (a user or key id, or `system:…`).
    #[param(max_length = 128, pattern = "^[A-Za-z0-9:._-]{1,128}$")]
    pub actor: Option<String>,
    /// Only events of this business operation.
    #[param(max_length = 128, pattern = "^[A-Za-z0-9:._-]{1,128}$")]
    pub correlation_id: Option<String>,
    /// Recorded at or after (RFC 3339).
    pub recorded_from: Option<DateTime<Utc>>,
    /// Recorded before (RFC 3339).
    pub recorded_before: Option<DateTime<Utc>>,
    /// The previous page's `next_cursor` (or any event's `cursor`): continue after it.
    #[param(max_length = 40, pattern = "^[0-9]{1,20}\\.[0-9]{1,19}$")]
    pub after: Option<String>,
    /// Page size: 1 to `queries.max_page_size` (100 unless configured otherwise); default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}

impl ListEvents {
    /// The filter these parameters describe (every one already checked by its pattern, except
    /// the aggregate type, checked here against the domain's list).
    pub fn filter(&self) -> Result<HistoryFilter, ApiError> {
        if let Some(kind) = self.aggregate_type.as_deref() {
            aggregate_type(kind)?;
        }
        let event_type_ok = |value: &str| {
            (1..=64).contains(&value.len())
                && value.starts_with(|c: char| c.is_ascii_alphabetic())
                && value.chars().all(|c| c.is_ascii_alphanumeric())
        };
        for (name, value, valid) in [
            (
                "event_type",
                &self.event_type,
                &event_type_ok as &dyn Fn(&str) -> bool,
            ),
            ("actor", &self.actor, &is_valid_id),
            ("correlation_id", &self.correlation_id, &is_valid_id),
        ] {
            if value.as_deref().is_some_and(|value| !valid(value)) {
                return Err(ApiError::bad_request(
                    "invalid_filter",
                    format!("{name}: not a valid value (see the parameter's pattern)"),
                ));
            }
        }
        Ok(HistoryFilter {
            aggregate_type: self.aggregate_type.clone(),
            event_type: self.event_type.clone(),
            actor: self.actor.clone(),
            correlation_id: self.correlation_id.clone(),
            recorded_from: self.recorded_from,
            recorded_before: self.recorded_before,
        })
    }
}

/// The aggregate type named `raw`, if the domain has one.
fn aggregate_type(raw: &str) -> Result<&'static str, ApiError> {
    domain::audit::aggregate_types()
        .find(|known| *known == raw)
        .ok_or_else(|| {
            let known: Vec<&str> = domain::audit::aggregate_types().collect();
            ApiError::bad_request(
                "invalid_aggregate_type",
                format!(
                    "unknown aggregate type {raw:?}; one of {}",
                    known.join(", ")
                ),
            )
        })
}

/// A page of the history.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventPage {
    /// The events, in feed (commit) order.
    pub items: Vec<HistoryEvent>,
    /// Pass as `after` for the next page; absent when nothing more has settled yet.
    pub next_cursor: Option<String>,
}

/// The tenant's events in feed (commit) order, filtered (auditors and admins). Only settled
/// history is listed: a page never gains an earlier event after it was read.
#[utoipa::path(
    get, path = "/api/v1/audit/events", tag = "audit",
    params(ListEvents),
    responses(
        (status = 200, description = "A page of events", body = EventPage),
        (status = 400, description = "Invalid parameters", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn list_events(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(params): QueryParams<ListEvents>,
) -> Result<Json<EventPage>, ApiError> {
    let tenant = caller.may_read(AuditAction::ReadHistory, None)?;
    let limit = page_limit(params.limit, state.settings.queries.max_page_size)?;
    let filter = params.filter()?;
    let after = params
        .after
        .as_deref()
        .map(|raw| read_cursor("after", raw))
        .transpose()?
        .unwrap_or_default();
    let events = history::page(
        &state.pool,
        tenant.as_str(),
        &filter,
        after,
        None,
        read_ahead(limit),
    )
    .await?;
    let (events, next_cursor) = paged(events, limit, |event| {
        super::write_cursor(FeedCursor::after(event))
    });
    Ok(Json(EventPage {
        items: events.into_iter().map(HistoryEvent::from).collect(),
        next_cursor,
    }))
}

/// A stream named in the path: `{aggregate_type}/{id}`.
fn stream_of(
    tenant: &str,
    (kind, id): (String, String),
) -> Result<(&'static str, String), ApiError> {
    let kind = aggregate_type(&kind)?;
    let id = parse_id(&id)?;
    Ok((kind, format!("{tenant}:{id}")))
}

/// Paging within one stream.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StreamEvents {
    /// Continue after this sequence (the previous page's `next_after_sequence`); from the start
    /// when absent.
    #[param(minimum = 0)]
    pub after_sequence: Option<u32>,
    /// Page size: 1 to `queries.max_page_size` (100 unless configured otherwise); default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}

/// A page of one stream.
#[derive(Debug, Serialize, ToSchema)]
pub struct StreamPage {
    /// The events, in sequence order.
    pub items: Vec<HistoryEvent>,
    /// Pass as `after_sequence` for the next page; absent on the last page.
    pub next_after_sequence: Option<i64>,
}

/// One stream's events in sequence order (auditors and admins).
#[utoipa::path(
    get, path = "/api/v1/audit/streams/{aggregate_type}/{id}/events", tag = "audit",
    params(("aggregate_type" = inline(schema::AggregateType), Path, description = "Aggregate type"),
           ("id" = Uuid, Path, description = "Aggregate id"),
           StreamEvents),
    responses(
        (status = 200, description = "A page of the stream", body = StreamPage),
        (status = 400, description = "Invalid parameters", body = Problem),
        (status = 404, description = "No such stream in this tenant", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn stream_events(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<(String, String)>,
    QueryParams(params): QueryParams<StreamEvents>,
) -> Result<Json<StreamPage>, ApiError> {
    let tenant = caller.may_read(AuditAction::ReadHistory, None)?;
    let (kind, stream) = stream_of(tenant.as_str(), path)?;
    let limit = page_limit(params.limit, state.settings.queries.max_page_size)?;
    let after = i64::from(params.after_sequence.unwrap_or(0));
    let events = history::stream_page(&state.pool, kind, &stream, after, read_ahead(limit)).await?;
    if events.is_empty() && history::stream_head(&state.pool, kind, &stream).await? == 0 {
        return Err(stream_not_found(kind, &stream));
    }
    let (events, next_after_sequence) = paged(events, limit, |last| last.sequence);
    Ok(Json(StreamPage {
        items: events.into_iter().map(HistoryEvent::from).collect(),
        next_after_sequence,
    }))
}

fn stream_not_found(kind: &str, stream: &str) -> ApiError {
    let id = stream.split_once(':').map_or(stream, |(_, id)| id);
    ApiError::NotFound {
        code: "stream_not_found",
        detail: format!("no {kind} stream with id {id}"),
    }
}

/// Which moment of a stream to replay to.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AsOf {
    /// The state after this many events (from 1 to the stream's head).
    #[param(minimum = 1)]
    pub version: Option<u32>,
    /// The state as of this time (RFC 3339): every event recorded at or before it.
    pub at: Option<DateTime<Utc>>,
}

/// An aggregate as it was, replayed from its events.
#[derive(Debug, Serialize, ToSchema)]
pub struct StateAsOf {
    /// The aggregate type.
    pub aggregate_type: String,
    /// The aggregate's id.
    pub aggregate_id: Uuid,
    /// Events applied: the state is the one after sequence `version` (0: before the first).
    pub version: i64,
    /// The stream's head now.
    pub head: i64,
    /// The events replayed: sequences 1 to `version`.
    pub first_sequence: Option<i64>,
    /// The last event replayed.
    pub last_sequence: Option<i64>,
    /// Its id.
    pub last_event_id: Option<Uuid>,
    /// When it was recorded.
    pub last_recorded_at: Option<DateTime<Utc>>,
    /// The aggregate's state, as the domain's `evolve` made it from those events.
    #[schema(value_type = Object)]
    pub state: serde_json::Value,
}

/// An aggregate's state as of a version or a time (latest when neither is given), replayed
/// through the domain's own rules from its stored events (auditors and admins).
#[utoipa::path(
    get, path = "/api/v1/audit/streams/{aggregate_type}/{id}/state", tag = "audit",
    params(("aggregate_type" = inline(schema::AggregateType), Path, description = "Aggregate type"),
           ("id" = Uuid, Path, description = "Aggregate id"),
           AsOf),
    responses(
        (status = 200, description = "The state and the events it was replayed from", body = StateAsOf),
        (status = 400, description = "Invalid parameters", body = Problem),
        (status = 404, description = "No such stream, or no such version of it", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn state_as_of(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<(String, String)>,
    QueryParams(params): QueryParams<AsOf>,
) -> Result<Json<StateAsOf>, ApiError> {
    let tenant = caller.may_read(AuditAction::ReadStateAsOf, None)?;
    let (kind, stream) = stream_of(tenant.as_str(), path)?;
    let head = history::stream_head(&state.pool, kind, &stream).await?;
    if head == 0 {
        return Err(stream_not_found(kind, &stream));
    }
    let version = params.version.map(i64::from);
    if version == Some(0) {
        return Err(ApiError::bad_request(
            "invalid_version",
            "version: from 1 (the state after the first event)".to_owned(),
        ));
    }
    if let Some(version) = version.filter(|version| *version > head) {
        return Err(ApiError::NotFound {
            code: "version_not_found",
            detail: format!("the stream has {head} events; there is no version {version}"),
        });
    }
    let events = history::stream_as_of(&state.pool, kind, &stream, version, params.at).await?;
    let payloads: Vec<serde_json::Value> = events.iter().map(|e| e.payload.clone()).collect();
    let replayed = replay_stored(kind, &payloads)
        .ok_or_else(|| ApiError::failed(format!("no replay for aggregate type {kind}")))?
        .map_err(ApiError::failed)?;
    let last = events.last();
    Ok(Json(StateAsOf {
        aggregate_type: kind.to_owned(),
        aggregate_id: parse_id(stream.split_once(':').map_or("", |(_, id)| id))?,
        version: events.len() as i64,
        head,
        first_sequence: events.first().map(|e| e.sequence),
        last_sequence: last.map(|e| e.sequence),
        last_event_id: last.map(|e| e.event_id),
        last_recorded_at: last.map(|e| e.recorded_at),
        state: replayed,
    }))
}

/// One node of a causation tree, in depth-first order.
#[derive(Debug, Serialize, ToSchema)]
pub struct TraceNode {
    /// The event.
    pub event_id: Uuid,
    /// The event of this trace that caused it; absent for a root (caused by a request).
    pub parent_event_id: Option<Uuid>,
    /// 0 for a root.
    pub depth: u32,
}

/// Every event of one business operation.
#[derive(Debug, Serialize, ToSchema)]
pub struct Trace {
    /// The correlation id.
    pub correlation_id: String,
    /// The events, in feed order.
    pub events: Vec<HistoryEvent>,
    /// The causation tree over them, depth first, children in feed order.
    pub tree: Vec<TraceNode>,
    /// Whether more than the returned events share the id (at most 1,000 are returned).
    pub truncated: bool,
}

/// Every event sharing a correlation id, across aggregates, in feed order, with the causation
/// tree (auditors and admins).
#[utoipa::path(
    get, path = "/api/v1/audit/correlations/{correlation_id}", tag = "audit",
    params(("correlation_id" = String, Path, description = "Correlation id",
            max_length = 128, pattern = "^[A-Za-z0-9:._-]{1,128}$")),
    responses(
        (status = 200, description = "The trace", body = Trace),
        (status = 400, description = "Invalid correlation id", body = Problem),
        (status = 404, description = "No event of this tenant has the id", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn correlation_trace(
    State(state): State<AppState>,
    caller: Caller,
    Path(correlation_id): Path<String>,
) -> Result<Json<Trace>, ApiError> {
    let tenant = caller.may_read(AuditAction::ReadHistory, None)?;
    let valid = is_valid_id(&correlation_id);
    if !valid {
        return Err(ApiError::bad_request(
            "invalid_correlation_id",
            "correlation_id: 1 to 128 letters, digits, ':', '.', '_' or '-'".to_owned(),
        ));
    }
    let mut events = history::correlated(
        &state.pool,
        tenant.as_str(),
        &correlation_id,
        TRACE_LIMIT + 1,
    )
    .await?;
    if events.is_empty() {
        return Err(ApiError::NotFound {
            code: "correlation_not_found",
            detail: format!("no event with correlation id {correlation_id}"),
        });
    }
    let truncated = events.len() > TRACE_LIMIT as usize;
    events.truncate(TRACE_LIMIT as usize);
    let tree = causation_tree(
        &events
            .iter()
            .map(|e| (e.event_id, e.metadata.causation_id.as_str()))
            .collect::<Vec<_>>(),
    );
    Ok(Json(Trace {
        correlation_id,
        events: events.into_iter().map(HistoryEvent::from).collect(),
        tree,
        truncated,
    }))
}

/// The causation tree over `events` (id, causation id; in feed order): an event whose causation
/// id names another event of the list is its child; the others are roots. Depth first.
fn causation_tree(events: &[(Uuid, &str)]) -> Vec<TraceNode> {
    let ids: HashSet<String> = events.iter().map(|(id, _)| id.to_string()).collect();
    let mut children: HashMap<Option<Uuid>, Vec<Uuid>> = HashMap::new();
    for (id, cause) in events {
        let parent = ids
            .contains(*cause)
            .then(|| cause.parse::<Uuid>().ok())
            .flatten()
            .filter(|parent| parent != id);
        children.entry(parent).or_default().push(*id);
    }
    let mut tree = Vec::with_capacity(events.len());
    let mut stack: Vec<(Uuid, Option<Uuid>, u32)> = children
        .get(&None)
        .map(|roots| roots.iter().rev().map(|id| (*id, None, 0)).collect())
        .unwrap_or_default();
    let mut seen = HashSet::new();
    while let Some((id, parent, depth)) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        tree.push(TraceNode {
            event_id: id,
            parent_event_id: parent,
            depth,
        });
        if let Some(kids) = children.get(&Some(id)) {
            stack.extend(kids.iter().rev().map(|kid| (*kid, Some(id), depth + 1)));
        }
    }
    // Events in a causation cycle (never written by this backend) reach no root: listed as
    // roots, so the tree always covers every event.
    for (id, _) in events {
        if seen.insert(*id) {
            tree.push(TraceNode {
                event_id: *id,
                parent_event_id: None,
                depth: 0,
            });
        }
    }
    tree
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_causation_tree_nests_events_under_the_events_that_caused_them() {
        let [a, b, c, d] = [1u128, 2, 3, 4].map(Uuid::from_u128);
        let (a_s, b_s) = (a.to_string(), b.to_string());
        // a (caused by a request) caused b and d; b caused c.
        let events = [
            (a, "request-1"),
            (b, a_s.as_str()),
            (c, b_s.as_str()),
            (d, a_s.as_str()),
        ];
        let tree: Vec<(Uuid, Option<Uuid>, u32)> = causation_tree(&events)
            .into_iter()
            .map(|n| (n.event_id, n.parent_event_id, n.depth))
            .collect();
        assert_eq!(
            tree,
            [
                (a, None, 0),
                (b, Some(a), 1),
                (c, Some(b), 2),
                (d, Some(a), 1)
            ]
        );
    }
}
