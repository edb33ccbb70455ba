//! Documents end to end: uploads refused by size, content and emptiness, idempotent uploads,
//! and byte-identical downloads for the uploader, its staff and nobody else.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::{assert_problem, spawn_app_with};

#[tokio::test]
async fn uploads_are_checked_by_content_and_size_and_download_byte_identical() {
    let app = spawn_app_with(|settings| settings.documents.max_bytes = 4096).await;
    let (_, key) = app.api_key_with_roles(&["user"]).await;
    let (_, stranger) = app.api_key_with_roles(&["user"]).await;

    let too_large = app.upload(&key, vec![b'a'; 5000], "text/plain").await;
    assert_problem(
        too_large,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    )
    .await;
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01".to_vec();
    let disguised = app.upload(&key, png, "text/plain").await;
    assert_problem(
        disguised,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_content",
    )
    .await;
    let empty = app.upload(&key, Vec::new(), "text/plain").await;
    assert_problem(empty, StatusCode::UNPROCESSABLE_ENTITY, "empty_document").await;

    // A PDF-like document with every byte value, beyond the sniffed prefix.
    let mut pdf = b"%PDF-1.7\n".to_vec();
    pdf.extend((0..=255u8).cycle().take(3000));
    let stored = app
        .upload(&key, pdf.clone(), "application/octet-stream")
        .await;
    assert_eq!(stored.status(), StatusCode::CREATED);
    let stored: Value = stored.json().await.unwrap();
    assert_eq!(stored["content_type"], "pdf");
    assert_eq!(stored["size_bytes"], pdf.len());
    let id = stored["document_id"].as_str().unwrap();
    let download = |credential: String| {
        app.anonymous(Method::GET, &format!("/api/v1/documents/{id}"))
            .header("x-api-key", credential)
            .send()
    };
    let mine = download(key.clone()).await.unwrap();
    assert_eq!(mine.status(), StatusCode::OK);
    assert_eq!(mine.headers()["content-type"], "application/pdf");
    assert_eq!(mine.bytes().await.unwrap().to_vec(), pdf);
    let admin = app.get(&format!("/api/v1/documents/{id}")).await;
    assert_eq!(admin.bytes().await.unwrap().to_vec(), pdf);
    let theirs = download(stranger).await.unwrap();
    assert_problem(theirs, StatusCode::FORBIDDEN, "forbidden").await;

    // Idempotency-Key: a retry of the same bytes answers with the first document and keeps no
    // second copy; other bytes under the same key are refused, and nothing is kept of them.
    let upload_with_key = |bytes: &'static [u8]| {
        app.anonymous(Method::POST, "/api/v1/documents")
            .header("x-api-key", &key)
            .header("idempotency-key", "upload-1")
            .header("content-type", "text/plain")
            .body(bytes)
            .send()
    };
    let (events, files) = (app.document_events().await, app.stored_documents());
    let first = upload_with_key(b"Once only.\n").await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.unwrap();
    let retry = upload_with_key(b"Once only.\n").await.unwrap();
    assert_eq!(retry.status(), StatusCode::CREATED);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(
        retry.headers()["location"],
        format!(
            "/api/v1/documents/{}",
            first["document_id"].as_str().unwrap()
        )
    );
    assert_eq!(retry.json::<Value>().await.unwrap(), first);
    let other = upload_with_key(b"Something else.\n").await.unwrap();
    assert_problem(
        other,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
    )
    .await;
    assert_eq!(app.document_events().await, events + 1);
    assert_eq!(app.stored_documents(), files + 1);
}
