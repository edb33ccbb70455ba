//! Document bytes: streamed into the object store with their checksum, and streamed back.
//!
//! Keys are generated here (`documents/{tenant}/{uuid}`), never taken from a request, so no
//! client can address or overwrite another object.

use std::sync::Arc;

use bytes::Bytes;
use domain::documents::{ContentType, DocumentError};
use domain::identity::TenantId;
use futures::{Stream, StreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, WriteMultipart};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Where document bytes are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// A directory on the local filesystem (created when missing).
    Local {
        /// The directory.
        path: String,
    },
    /// An S3-compatible bucket.
    S3 {
        /// The bucket.
        bucket: String,
        /// The endpoint of an S3-compatible service; AWS when empty.
        endpoint: String,
        /// The region.
        region: String,
        /// Access key id and secret; the environment's credentials when `None`.
        credentials: Option<(String, String)>,
        /// Allow a plain-HTTP endpoint (local S3-compatible services only).
        allow_http: bool,
    },
}

/// The upload rules and where the bytes go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreSettings {
    /// Where.
    pub location: StoreLocation,
    /// Largest accepted document, in bytes.
    pub max_bytes: u64,
    /// Accepted types.
    pub allowed: Vec<ContentType>,
}

/// A client's body broke off (whatever its transport calls that).
pub type BodyError = Box<dyn std::error::Error + Send + Sync>;

/// What one upload may be, within the store's own rules: a caller's narrower limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadLimits {
    /// The most bytes.
    pub max_bytes: u64,
    /// The types accepted (`None`: every type the store accepts).
    pub types: Option<Vec<ContentType>>,
}

/// Why an upload was not stored.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// The content is empty or not an accepted type.
    #[error(transparent)]
    Refused(#[from] DocumentError),
    /// The body is larger than `documents.max_bytes`.
    #[error("the document is larger than {max} bytes")]
    TooLarge {
        /// The limit.
        max: u64,
    },
    /// The client's body broke off.
    #[error("reading the upload failed")]
    Body(#[source] BodyError),
    /// The object store failed.
    #[error("document storage failed")]
    Store(#[from] object_store::Error),
}

/// What was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The generated key.
    pub key: String,
    /// The detected type.
    pub content_type: ContentType,
    /// Bytes stored.
    pub size_bytes: u64,
    /// Hex sha-256 of the bytes.
    pub sha256: String,
}

/// The configured object store with the upload rules.
#[derive(Debug, Clone)]
pub struct DocumentStore {
    store: Arc<dyn ObjectStore>,
    max_bytes: u64,
    allowed: Vec<ContentType>,
}

impl DocumentStore {
    /// Opens the configured store (creating the local directory when needed).
    ///
    /// # Errors
    /// When the directory cannot be created or the S3 settings are incomplete.
    pub fn open(settings: StoreSettings) -> Result<Self, object_store::Error> {
        let store: Arc<dyn ObjectStore> = match settings.location {
            StoreLocation::Local { path } => {
                std::fs::create_dir_all(&path).map_err(|source| object_store::Error::Generic {
                    store: "local",
                    source: Box::new(source),
                })?;
                Arc::new(LocalFileSystem::new_with_prefix(&path)?)
            }
            StoreLocation::S3 {
                bucket,
                endpoint,
                region,
                credentials,
                allow_http,
            } => {
                let mut builder = AmazonS3Builder::new()
                    .with_bucket_name(bucket)
                    .with_region(region)
                    .with_allow_http(allow_http);
                if !endpoint.is_empty() {
                    builder = builder.with_endpoint(endpoint);
                }
                if let Some((key_id, secret)) = credentials {
                    builder = builder
                        .with_access_key_id(key_id)
                        .with_secret_access_key(secret);
                }
                Arc::new(builder.build()?)
            }
        };
        Ok(Self {
            store,
            max_bytes: settings.max_bytes,
            allowed: settings.allowed,
        })
    }

    /// The largest accepted document.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Streams `body` into a new object: the type is recognised from the first bytes before
    /// anything is written (and must be one the store and `limits` accept), the size is bounded
    /// as it arrives (by `limits`, or the store's own limit when smaller), and the checksum is computed on
    /// the way. On any failure the partial object is discarded.
    ///
    /// # Errors
    /// [`UploadError`].
    pub async fn put(
        &self,
        tenant: &TenantId,
        id: Uuid,
        declared: Option<&str>,
        limits: &UploadLimits,
        body: impl Stream<Item = Result<Bytes, BodyError>> + Unpin,
    ) -> Result<Stored, UploadError> {
        let max_bytes = limits.max_bytes.min(self.max_bytes);
        let mut body = body;
        let mut head = Vec::with_capacity(ContentType::SNIFF_LEN);
        let mut rest = None;
        while head.len() < ContentType::SNIFF_LEN {
            match body.next().await {
                Some(chunk) => {
                    let chunk = chunk.map_err(UploadError::Body)?;
                    let take = (ContentType::SNIFF_LEN - head.len()).min(chunk.len());
                    head.extend_from_slice(&chunk[..take]);
                    if take < chunk.len() {
                        rest = Some(chunk.slice(take..));
                    }
                }
                None => break,
            }
        }
        if head.len() as u64 > max_bytes {
            return Err(UploadError::TooLarge { max: max_bytes });
        }
        let content_type = ContentType::sniff(&head, declared)?;
        let refused_by_caller = limits
            .types
            .as_ref()
            .is_some_and(|types| !types.contains(&content_type));
        if !self.allowed.contains(&content_type) || refused_by_caller {
            return Err(DocumentError::NotAllowed(content_type.as_str()).into());
        }
        let key = format!("documents/{tenant}/{id}");
        let path = Path::from(key.as_str());
        let mut writer = WriteMultipart::new(self.store.put_multipart(&path).await?);
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut write = |bytes: &[u8], writer: &mut WriteMultipart| -> Result<(), UploadError> {
            size += bytes.len() as u64;
            if size > max_bytes {
                return Err(UploadError::TooLarge { max: max_bytes });
            }
            hasher.update(bytes);
            writer.write(bytes);
            Ok(())
        };
        let mut written = write(&head, &mut writer);
        if let (Ok(()), Some(rest)) = (&written, rest) {
            written = write(&rest, &mut writer);
        }
        while written.is_ok() {
            match body.next().await {
                Some(Ok(chunk)) => {
                    written = write(&chunk, &mut writer);
                    if written.is_ok() {
                        if let Err(error) = writer.wait_for_capacity(4).await {
                            written = Err(error.into());
                        }
                    }
                }
                Some(Err(error)) => written = Err(UploadError::Body(error)),
                None => break,
            }
        }
        if let Err(error) = written {
            // Best effort: an abandoned multipart upload holds no visible object either way.
            let _ = writer.abort().await;
            return Err(error);
        }
        writer.finish().await?;
        Ok(Stored {
            key,
            content_type,
            size_bytes: size,
            sha256: hasher
                .finalize()
                .iter()
                .map(|byte| format!("{byte:02x}"))
                .collect(),
        })
    }

    /// Removes an object whose upload could not be recorded.
    pub(crate) async fn discard(&self, key: &str) {
        if let Err(error) = self.store.delete(&Path::from(key)).await {
            tracing::warn!(document.key = key, error = %error, "removing an unrecorded upload failed");
        }
    }

    /// The object's bytes, as a stream.
    ///
    /// # Errors
    /// When the object store fails or the object is missing.
    pub async fn get(
        &self,
        key: &str,
    ) -> Result<impl Stream<Item = Result<Bytes, object_store::Error>>, object_store::Error> {
        Ok(self.store.get(&Path::from(key)).await?.into_stream())
    }
}
