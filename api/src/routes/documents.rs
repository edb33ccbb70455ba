//! Documents: upload (a command: it records a `DocumentUploaded` event) and download (a read of
//! what that event recorded, served from the object store).

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
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
    responses(
        (status = 201, description = "Stored", body = DocumentAccepted),
        (status = 413, description = "Larger than documents.max_bytes", body = crate::error::Problem),
        (status = 415, description = "Not an accepted type, whatever was declared", body = crate::error::Problem),
        (status = 422, description = "Empty", body = crate::error::Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn upload_document(
    State(state): State<AppState>,
    caller: Caller,
    request: Request,
) -> Result<Response, ApiError> {
    let id = Uuid::now_v7();
    // Every upload is new, so the id stands in for the body in the idempotency fingerprint:
    // keys are not honoured for uploads (a retry stores a second copy).
    let context = caller.may(Action::UploadDocument, None, &id)?;
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
    let stored = store
        .put(&context.tenant, id, declared.as_deref(), body)
        .await?;
    let document = StoredDocument {
        owner: caller.principal.account,
        uploaded_by: caller.principal.id.clone(),
        content_type: stored.content_type,
        size_bytes: stored.size_bytes,
        sha256: stored.sha256.clone(),
        storage_key: stored.key.clone(),
    };
    let command = DocumentCommand::Upload {
        document,
        at: Utc::now(),
    };
    let context = commands::CommandContext {
        idempotency: None,
        ..context
    };
    let stream = StreamId::new(context.tenant.clone(), id);
    let recorded = state
        .documents
        .execute(
            &context,
            &stream,
            Guarded::new(command),
            "UploadDocument",
            Utc::now(),
        )
        .await;
    if let Err(error) = recorded {
        store.discard(&stored.key).await;
        return Err(error.into());
    }
    let location = HeaderValue::from_str(&format!("/api/v1/documents/{id}")).ok();
    let mut response = (
        StatusCode::CREATED,
        Json(DocumentAccepted {
            document_id: id,
            content_type: stored.content_type.as_str().to_owned(),
            size_bytes: stored.size_bytes,
            sha256: stored.sha256,
        }),
    )
        .into_response();
    if let Some(location) = location {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
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
    caller.may_read(Action::DownloadDocument, Some(stored.owner))?;
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
