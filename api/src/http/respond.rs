//! The shapes of answers every context's routes share, written once: a command's answer (status,
//! `ETag`, `Location`, `Idempotent-Replayed`), a read resource with its `ETag`, field errors
//! gathered from value-object parsers, a bounded page size, and "not found".

use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use commands::CommandOutcome;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::error::{ApiError, FieldError};

/// What a successful command changed.
#[derive(Debug, Serialize, ToSchema)]
pub struct CommandAccepted {
    /// The aggregate the command addressed.
    pub aggregate_id: Uuid,
    /// Its version after the command (also in the `ETag` header).
    pub version: u64,
    /// Give this to a query (`X-Consistency-Token` header or `consistency_token` parameter)
    /// to read your own write.
    pub consistency_token: String,
    /// Only when a key is issued: the key itself. Shown once, never stored, never shown again
    /// (not even to a retry with the same `Idempotency-Key`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
}

const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// `201 Created` for a command that made `outcome.stream.id` under `collection`, with its
/// `Location`.
pub fn created(collection: &str, outcome: CommandOutcome, api_key: Option<String>) -> Response {
    accepted(StatusCode::CREATED, Some(collection), outcome, api_key)
}

/// `200 OK` for a command on an existing aggregate.
pub fn changed(outcome: CommandOutcome) -> Response {
    accepted(StatusCode::OK, None, outcome, None)
}

/// The response of every command route: status, `ETag`, `Location` (`collection/id`) for
/// creations that can be read back, and `Idempotent-Replayed` when an earlier identical
/// request's result is returned.
pub fn accepted(
    status: StatusCode,
    collection: Option<&str>,
    outcome: CommandOutcome,
    api_key: Option<String>,
) -> Response {
    let mut headers = HeaderMap::new();
    if let Some(etag) = etag(&outcome.version.to_string()) {
        headers.insert(header::ETAG, etag);
    }
    if let Some(location) = collection.and_then(|path| location(path, outcome.stream.id)) {
        headers.insert(header::LOCATION, location);
    }
    if outcome.replayed {
        headers.insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    }
    let body = CommandAccepted {
        aggregate_id: outcome.stream.id,
        version: outcome.version,
        consistency_token: outcome.token.to_string(),
        api_key: api_key.filter(|_| !outcome.replayed),
    };
    (status, headers, Json(body)).into_response()
}

/// `201 Created` with any body, its `Location`, and `Idempotent-Replayed` when `replayed`.
pub fn created_with(collection: &str, id: Uuid, body: impl Serialize, replayed: bool) -> Response {
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    let headers = response.headers_mut();
    if let Some(location) = location(collection, id) {
        headers.insert(header::LOCATION, location);
    }
    if replayed {
        headers.insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    }
    response
}

/// A resource read from a projection, with its version (or checksum) as the `ETag`.
pub fn with_etag(body: impl Serialize, tag: impl std::fmt::Display) -> Response {
    let mut response = Json(body).into_response();
    if let Some(etag) = etag(&tag.to_string()) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    response
}

/// A strong entity tag: the value in double quotes.
pub fn etag(tag: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!("\"{tag}\"")).ok()
}

fn location(collection: &str, id: Uuid) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!("{collection}/{id}")).ok()
}

/// Parses one field with a value object's parser, collecting its error under the field's name.
pub fn field<T, E: domain::error::DomainError>(
    name: &str,
    parsed: Result<T, E>,
    errors: &mut Vec<FieldError>,
) -> Option<T> {
    parsed
        .map_err(|error| {
            errors.push(FieldError {
                field: name.to_owned(),
                code: error.code().to_owned(),
                message: error.to_string(),
            });
        })
        .ok()
}

/// One field's value, or `422` naming it: for single-field bodies.
///
/// # Errors
/// The validation problem.
pub fn one_field<T, E: domain::error::DomainError>(
    name: &str,
    parsed: Result<T, E>,
) -> Result<T, ApiError> {
    let mut errors = Vec::new();
    field(name, parsed, &mut errors).ok_or_else(|| ApiError::validation(errors))
}

/// A page size: `limit` when given (1 to `max`), else 20 (or `max` when smaller).
///
/// # Errors
/// `400 invalid_limit` outside the bounds.
pub fn page_limit(limit: Option<u32>, max: u32) -> Result<u32, ApiError> {
    let limit = limit.unwrap_or(20.min(max));
    if (1..=max).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::bad_request(
            "invalid_limit",
            format!("limit must be between 1 and {max}"),
        ))
    }
}

/// How many rows to read for a page of `limit`: one more, which says whether another follows.
pub fn read_ahead(limit: u32) -> i64 {
    i64::from(limit) + 1
}

/// A page of rows read with [`read_ahead`]: the first `limit`, and the cursor of the last of
/// them (made by `cursor`) when more follow.
pub fn paged<T, C>(
    mut rows: Vec<T>,
    limit: u32,
    cursor: impl FnOnce(&T) -> C,
) -> (Vec<T>, Option<C>) {
    let limit = limit as usize;
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next = if more { rows.last().map(cursor) } else { None };
    (rows, next)
}

/// `404` for the resource `what` (e.g. "job") with `id`, coded `{what}_not_found`.
pub fn not_found(code: &'static str, what: &str, id: impl std::fmt::Display) -> ApiError {
    ApiError::NotFound {
        code,
        detail: format!("no {what} with id {id}"),
    }
}
