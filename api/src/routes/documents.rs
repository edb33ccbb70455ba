//! Documents: upload (a command: it records a `DocumentUploaded` event) and download (a read of
//! what that event recorded, served from the object store).

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use domain::aggregate::Guarded;
use domain::documents::{Document, DocumentCommand, StoredDocument};
use domain::identity::StreamId;
use domain::policy::Action;
use futures::StreamExt;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::AppState;
use crate::error::ApiError;
use crate::extract::{Caller, IdPath};

/// The upload route (its own body limit: `documents.max_bytes`, enforced while streaming).
pub fn command_router() -> Router<AppState> {
    Router::new().route(
        "/api/v1/documents",
        post(upload_document).layer(DefaultBodyLimit::disable()),
    )
}

/// The download route.
pub fn query_router() -> Router<AppState> {
    Router::new().route("/api/v1/documents/{id}", get(download_document))
}

/// A stored document.
#[derive(Debug, Serialize, ToSchema)]
pub struct DocumentAccepted {
    /// The document's id: name it as a job's `document_id` or a result's `result_document_id`.
    pub document_id: Uuid,
    /// The type recognised from the content.
    pub content_type: String,
    /// Bytes stored.
    pub size_bytes: u64,
    /// Hex sha-256 of the bytes.
    pub sha256: String,
}

/// Upload a document: the raw bytes as the body.
#[utoipa::path(
    post, path = "/api/v1/documents", tag = "documents",
    request_body(content = Vec<u8>, content_type = "application/octet-stream",
        description = "The document's bytes. The type is recognised from the content (plain \
                       text, markdown, SubRip/WebVTT subtitles, JSON, docx, PDF); a declared \
                       `text/markdown` tells markdown from plain text."),
    params(("Idempotency-Key" = Option<String>, Header,
        description = "Retry-safe key: the same bytes and type again answer with the first document")),
    responses(
        (status = 201, description = "Stored (or, with `Idempotent-Replayed: true`, stored by an earlier request with the same key)", body = DocumentAccepted),
        (status = 413, description = "Larger than documents.max_bytes", body = crate::error::Problem),
        (status = 415, description = "Not an accepted type, whatever was declared", body = crate::error::Problem),
        (status = 422, description = "Empty, or an Idempotency-Key already used for other content", body = crate::error::Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn upload_document(
    State(state): State<AppState>,
    caller: Caller,
    request: Request,
) -> Result<Response, ApiError> {
    // Authorized before a byte is stored. The idempotency fingerprint needs the content, so
    // the command's context is made once the bytes are in.
    let tenant = caller.may_read(Action::UploadDocument, None)?;
    let id = Uuid::now_v7();
    let store = &state.document_store;
    let declared_length = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared_length.is_some_and(|length| length > store.max_bytes()) {
        return Err(crate::documents::UploadError::TooLarge {
            max: store.max_bytes(),
        }
        .into());
    }
    let declared = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let body = request.into_body().into_data_stream();
    let stored = store.put(tenant, id, declared.as_deref(), body).await?;
    // A retry sends the same bytes with the same declared type under the same key.
    let context = caller.may(
        Action::UploadDocument,
        None,
        &(&stored.sha256, declared.as_deref()),
    )?;
    let document = StoredDocument {
        owner: caller.principal.account,
        uploaded_by: caller.principal.id.clone(),
        content_type: stored.content_type,
        size_bytes: stored.size_bytes,
        sha256: stored.sha256.clone(),
        storage_key: stored.key.clone(),
    };
    let command = DocumentCommand::Upload {
        document: document.clone(),
        at: Utc::now(),
    };
    let stream = StreamId::new(tenant.clone(), id);
    let outcome = state
        .documents
        .execute(
            &context,
            &stream,
            Guarded::new(command),
            "UploadDocument",
            Utc::now(),
        )
        .await;
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(error) => {
            store.discard(&stored.key).await;
            return Err(error.into());
        }
    };
    if !outcome.replayed {
        return Ok(document_accepted(id, &document, false));
    }
    // The first upload with this key holds the document; this copy of the same bytes goes.
    store.discard(&stored.key).await;
    match state.documents.load(&outcome.stream).await?.state() {
        Document::Uploaded(original) => Ok(document_accepted(outcome.stream.id, original, true)),
        Document::Missing => Err(ApiError::Internal(
            "an idempotency key names a document that was never uploaded".into(),
        )),
    }
}

/// The 201 of an upload (also when replayed for a retry with the same idempotency key).
fn document_accepted(id: Uuid, document: &StoredDocument, replayed: bool) -> Response {
    let mut response = (
        StatusCode::CREATED,
        Json(DocumentAccepted {
            document_id: id,
            content_type: document.content_type.as_str().to_owned(),
            size_bytes: document.size_bytes,
            sha256: document.sha256.clone(),
        }),
    )
        .into_response();
    let headers = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(&format!("/api/v1/documents/{id}")) {
        headers.insert(header::LOCATION, location);
    }
    if replayed {
        headers.insert(
            HeaderName::from_static("idempotent-replayed"),
            HeaderValue::from_static("true"),
        );
    }
    response
}

/// Download a document, byte-identical to the upload.
#[utoipa::path(
    get, path = "/api/v1/documents/{id}", tag = "documents",
    params(("id" = Uuid, Path, description = "Document id")),
    responses(
        (status = 200, description = "The bytes; `ETag` is their sha-256", content_type = "application/octet-stream"),
        (status = 403, description = "Not yours", body = crate::error::Problem),
        (status = 404, description = "No such document", body = crate::error::Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn download_document(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    caller: Caller,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::NotFound {
        code: "document_not_found",
        detail: format!("no document with id {id}"),
    };
    let stream = StreamId::new(caller.principal.tenant.clone(), id);
    let document = state.documents.load(&stream).await?;
    let Document::Uploaded(stored) = document.state() else {
        return Err(not_found());
    };
    // A job's result is uploaded by a worker, and is the job owner's to download too.
    let subject = if stored.owner != caller.principal.account
        && projections::jobs::is_result_of_owned_job(
            &state.pool,
            caller.principal.tenant.as_str(),
            caller.principal.account,
            id,
        )
        .await?
    {
        caller.principal.account
    } else {
        stored.owner
    };
    caller.may_read(Action::DownloadDocument, Some(subject))?;
    let bytes = state
        .document_store
        .get(&stored.storage_key)
        .await
        .map_err(|error| ApiError::Unavailable(Box::new(error)))?;
    let body = Body::from_stream(bytes.map(|chunk| chunk.map_err(std::io::Error::other)));
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(stored.content_type.mime()),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(stored.size_bytes));
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", stored.sha256)) {
        headers.insert(header::ETAG, etag);
    }
    if let Ok(disposition) = HeaderValue::from_str(&format!("attachment; filename=\"{id}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, disposition);
    }
    Ok(response)
}
