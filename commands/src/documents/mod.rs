//! Documents: bytes in an object store, recorded by a `DocumentUploaded` event.
//!
//! An upload touches two stores that share no transaction: the object store and the event
//! store. The bytes go first (streamed, size-bounded, checksummed); the event second. When the
//! event cannot be appended, the bytes are removed again (compensation), so no object exists
//! that history does not name. A retry with the same idempotency key stores its bytes once
//! more, learns that the first upload holds the document, and removes its own copy.

mod store;

use bytes::Bytes;
use chrono::Utc;
use domain::aggregate::{Guarded, Versioned};
use domain::documents::{Document, DocumentCommand, DocumentError, StoredDocument};
use domain::identity::{StreamId, TenantId};
use futures::Stream;
use uuid::Uuid;

use crate::bus::{CommandBus, CommandError};
use crate::metadata::CommandContext;

pub use store::{
    BodyError, DocumentStore, StoreLocation, StoreSettings, Stored, UploadError, UploadLimits,
};

/// A recorded upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uploaded {
    /// The document's id (the first upload's, when `replayed`).
    pub document_id: Uuid,
    /// What the event recorded.
    pub document: StoredDocument,
    /// True when an earlier request with the same idempotency key stored it.
    pub replayed: bool,
}

/// Why an upload failed: its bytes, or recording them.
#[derive(Debug, thiserror::Error)]
pub enum UploadFailed<E> {
    /// The bytes were refused or could not be stored.
    #[error(transparent)]
    Upload(#[from] UploadError),
    /// Recording the upload failed (nothing is kept).
    #[error(transparent)]
    Command(CommandError<DocumentError>),
    /// The caller's context could not be made (e.g. the caller is not allowed).
    #[error("the upload's command context was refused")]
    Context(E),
    /// An idempotency key names a document that history does not hold: a defect, not the
    /// client's fault.
    #[error("idempotency key {0:?} names a document that was never uploaded")]
    Inconsistent(String),
}

/// Uploads and reads documents.
#[derive(Debug)]
pub struct DocumentCommands {
    bus: CommandBus<Document>,
    store: DocumentStore,
}

impl DocumentCommands {
    /// Documents recorded through `bus`, their bytes in `store`.
    pub fn new(bus: CommandBus<Document>, store: DocumentStore) -> Self {
        Self { bus, store }
    }

    /// The byte store (its limits, and downloads).
    pub fn store(&self) -> &DocumentStore {
        &self.store
    }

    /// Stores `body` (within `limits`, and never beyond what the store accepts) as a new
    /// document of `owner` in `tenant`, then records it. The command's
    /// context is made by `context` once the bytes are in, because an idempotency fingerprint
    /// covers the content's checksum.
    ///
    /// # Errors
    /// [`UploadFailed`]; on every failure after the bytes were stored, they are removed.
    pub async fn upload<E>(
        &self,
        tenant: &TenantId,
        owner: Uuid,
        declared: Option<&str>,
        limits: &UploadLimits,
        body: impl Stream<Item = Result<Bytes, BodyError>> + Unpin,
        context: impl FnOnce(&Stored) -> Result<CommandContext, E>,
    ) -> Result<Uploaded, UploadFailed<E>> {
        let id = Uuid::now_v7();
        let stored = self.store.put(tenant, id, declared, limits, body).await?;
        let context = match context(&stored) {
            Ok(context) => context,
            Err(error) => {
                self.store.discard(&stored.key).await;
                return Err(UploadFailed::Context(error));
            }
        };
        let document = StoredDocument {
            owner,
            uploaded_by: context.actor.clone(),
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
        let outcome = self
            .bus
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
                self.store.discard(&stored.key).await;
                return Err(UploadFailed::Command(error));
            }
        };
        if !outcome.replayed {
            return Ok(Uploaded {
                document_id: id,
                document,
                replayed: false,
            });
        }
        // The first upload with this key holds the document; this copy of the same bytes goes.
        self.store.discard(&stored.key).await;
        match self
            .load(&outcome.stream)
            .await
            .map_err(UploadFailed::Command)?
            .state()
        {
            Document::Uploaded(original) => Ok(Uploaded {
                document_id: outcome.stream.id,
                document: original.clone(),
                replayed: true,
            }),
            Document::Missing => Err(UploadFailed::Inconsistent(
                context
                    .idempotency
                    .as_ref()
                    .map(|claim| claim.key.clone())
                    .unwrap_or_default(),
            )),
        }
    }

    /// The document's record, if it was uploaded.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn find(
        &self,
        tenant: &TenantId,
        id: Uuid,
    ) -> Result<Option<StoredDocument>, CommandError<DocumentError>> {
        let document = self.load(&StreamId::new(tenant.clone(), id)).await?;
        Ok(match document.state() {
            Document::Uploaded(stored) => Some(stored.clone()),
            Document::Missing => None,
        })
    }

    /// The document's current state.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn load(
        &self,
        stream: &StreamId,
    ) -> Result<Versioned<Document>, CommandError<DocumentError>> {
        self.bus.load(stream).await
    }
}
