//! Documents: upload (a command: it records a `DocumentUploaded` event) and download (a read of
//! what that event recorded, served from the object store).

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderValue};
use axum::response::Response;
use commands::documents::{BodyError, UploadError, UploadFailed, UploadLimits};
use domain::documents::ContentType;
use domain::policy::DocumentAction;
use futures::StreamExt;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::http::error::{ApiError, Problem};
use crate::http::extract::{Caller, IdPath};
use crate::http::quotas;
use crate::http::respond::{created_with, etag, not_found};
use crate::routes::{AppState, Routes};

/// The documents routes. The upload has its own body limit (`documents.max_bytes`, enforced
/// while streaming) instead of the API's.
pub fn routes() -> Routes {
    let (schemas, paths, upload) = routes!(upload_document);
    Routes::new()
        .tag(
            "documents",
            "Documents: upload (type recognised by content), download",
        )
        .command(
            DocumentAction::UploadDocument,
            (schemas, paths, upload.layer(DefaultBodyLimit::disable())),
        )
        .query(DocumentAction::DownloadDocument, routes!(download_document))
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
    request_body(content = String, content_type = "application/octet-stream",
        description = "The document's bytes. The type is recognised from the content (plain \
                       text, markdown, SubRip/WebVTT subtitles, JSON, docx, PDF); a declared \
                       `text/markdown` tells markdown from plain text.",
        example = json!("Hello, world. This document is plain text.\n")),
    params(("Idempotency-Key" = Option<String>, Header,
        description = "Retry-safe key: the same bytes and type again answer with the first document")),
    responses(
        (status = 201, description = "Stored (or, with `Idempotent-Replayed: true`, stored by an earlier request with the same key)", body = DocumentAccepted),
        (status = 413, description = "Larger than documents.max_bytes, or than the tenant's document_max_bytes", body = Problem),
        (status = 415, description = "Not an accepted type (of the server, or of the tenant's document_types), whatever was declared", body = Problem),
        (status = 422, description = "Empty, an Idempotency-Key already used for other content, or over the tenant's quota_stored_bytes (`quota_exceeded`)", body = Problem),
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
    let tenant = caller.may_read(DocumentAction::UploadDocument, None)?;
    let documents = &state.write.documents;
    // The tenant's own limit narrows the server's, and what its storage quota leaves narrows
    // both: a body over that is refused as over the quota.
    let limit = caller
        .settings
        .document_max_bytes
        .map_or(documents.store().max_bytes(), |own| {
            own.min(documents.store().max_bytes())
        });
    let left = quotas::storage_left(&state, &caller).await?;
    let max = left.map_or(limit, |left| left.min(limit));
    let over_quota = |error: UploadError| match (error, left) {
        (UploadError::TooLarge { .. }, Some(left)) if left < limit => quotas::refused(
            domain::tenants::QuotaExceeded {
                quota: "quota_stored_bytes",
                limit: caller.settings.quota_stored_bytes.unwrap_or_default(),
                used: caller
                    .settings
                    .quota_stored_bytes
                    .unwrap_or_default()
                    .saturating_sub(left),
            },
            "bytes of documents stored; this upload does not fit",
            None,
        ),
        (error, _) => error.into(),
    };
    let declared_length = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    // A body that could never fit is too large; one that fits the limit but not what the quota
    // leaves is over the quota.
    if declared_length.is_some_and(|length| length > limit) {
        return Err(UploadError::TooLarge { max: limit }.into());
    }
    if declared_length.is_some_and(|length| length > max) {
        return Err(over_quota(UploadError::TooLarge { max }));
    }
    let declared = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let body = request
        .into_body()
        .into_data_stream()
        .map(|chunk| chunk.map_err(BodyError::from));
    let uploaded = documents
        .upload(
            tenant,
            caller.principal.account,
            declared.as_deref(),
            &UploadLimits {
                max_bytes: max,
                types: caller.settings.document_types.clone(),
            },
            body,
            // A retry sends the same bytes with the same declared type under the same key.
            |stored| {
                caller.may(
                    DocumentAction::UploadDocument,
                    None,
                    &(&stored.sha256, declared.as_deref()),
                )
            },
        )
        .await
        .map_err(|failed| match failed {
            UploadFailed::Upload(error) => over_quota(error),
            other => other.into(),
        })?;
    let document = &uploaded.document;
    let body = DocumentAccepted {
        document_id: uploaded.document_id,
        content_type: document.content_type.as_str().to_owned(),
        size_bytes: document.size_bytes,
        sha256: document.sha256.clone(),
    };
    Ok(created_with(
        "/api/v1/documents",
        uploaded.document_id,
        body,
        uploaded.replayed,
    ))
}

/// Download a document, byte-identical to the upload.
#[utoipa::path(
    get, path = "/api/v1/documents/{id}", tag = "documents",
    params(("id" = Uuid, Path, description = "Document id")),
    responses(
        (status = 200, description = "The bytes, as uploaded, in the type recognised at upload; \
            `ETag` is their sha-256",
            content(
                (String = ContentType::PlainText.mime()),
                (String = ContentType::Markdown.mime()),
                (String = ContentType::Srt.mime()),
                (String = ContentType::WebVtt.mime()),
                (serde_json::Value = ContentType::Json.mime()),
                // Binary: no schema. Literals, as a bare expression reads as a schema here; the
                // test below holds the list to `ContentType::ALL`.
                ("application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
                ("application/pdf"),
            )),
        (status = 403, description = "Not yours", body = Problem),
        (status = 404, description = "No such document", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn download_document(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    caller: Caller,
) -> Result<Response, ApiError> {
    let not_found = || not_found("document_not_found", "document", id);
    let stored = state
        .write
        .documents
        .find(&caller.principal.tenant, id)
        .await?
        .ok_or_else(not_found)?;
    // A job's result is uploaded by a worker, and is the job owner's to download too.
    let subject = if stored.owner != caller.principal.account
        && projections::jobs::is_result_of_owned_job(
            // The primary: a lagging replica must not refuse a fresh result to its owner.
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
    caller.may_read(DocumentAction::DownloadDocument, Some(subject))?;
    let bytes = state
        .write
        .documents
        .store()
        .get(&stored.storage_key)
        .await
        .map_err(ApiError::failed)?;
    let body = Body::from_stream(bytes.map(|chunk| chunk.map_err(std::io::Error::other)));
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(stored.content_type.mime()),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(stored.size_bytes));
    if let Some(etag) = etag(&stored.sha256) {
        headers.insert(header::ETAG, etag);
    }
    if let Ok(disposition) = HeaderValue::from_str(&format!("attachment; filename=\"{id}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, disposition);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use utoipa::Path;

    use super::*;

    #[test]
    fn a_download_documents_every_type_an_upload_may_have() {
        let operation = __path_download_document::operation();
        let Some(utoipa::openapi::RefOr::T(ok)) = operation.responses.responses.get("200") else {
            panic!("no 200 answer");
        };
        let mut documented: Vec<&str> = ok.content.keys().map(String::as_str).collect();
        documented.sort_unstable();
        let mut stored: Vec<&str> = ContentType::ALL.map(ContentType::mime).to_vec();
        stored.sort_unstable();
        assert_eq!(documented, stored);
    }
}
