//! `documents`: which uploads are accepted and where they are stored.

use serde::{Deserialize, Serialize};

use super::{ConfigError, Secret};

/// Where uploaded documents are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentStoreKind {
    /// A directory on the local filesystem (`documents.local_path`).
    Local,
    /// An S3-compatible bucket (`documents.s3_*`).
    S3,
}

/// Document uploads and their storage.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DocumentSettings {
    /// Largest accepted document, in bytes.
    pub max_bytes: u64,
    /// Accepted types by short name: plain_text, markdown, srt, webvtt, json, docx, pdf.
    pub allowed_types: Vec<String>,
    /// Which store.
    pub store: DocumentStoreKind,
    /// The directory of the local store (created when missing).
    pub local_path: String,
    /// The bucket of the S3 store.
    pub s3_bucket: String,
    /// The S3 endpoint (for S3-compatible services); AWS when empty.
    pub s3_endpoint: String,
    /// The S3 region.
    pub s3_region: String,
    /// The S3 access key id.
    pub s3_access_key_id: Secret,
    /// The S3 secret access key.
    pub s3_secret_access_key: Secret,
    /// Allow a plain-HTTP endpoint (local S3-compatible services only).
    pub s3_allow_http: bool,
}

impl Default for DocumentSettings {
    fn default() -> Self {
        Self {
            max_bytes: 20 * 1024 * 1024,
            allowed_types: type_names().into_iter().map(str::to_owned).collect(),
            store: DocumentStoreKind::Local,
            local_path: ".local/documents".to_owned(),
            s3_bucket: String::new(),
            s3_endpoint: String::new(),
            s3_region: "us-east-1".to_owned(),
            s3_access_key_id: Secret::default(),
            s3_secret_access_key: Secret::default(),
            s3_allow_http: false,
        }
    }
}

/// The short name of every content type the domain knows.
fn type_names() -> Vec<&'static str> {
    domain::documents::ContentType::ALL
        .iter()
        .map(|kind| kind.as_str())
        .collect()
}

impl DocumentSettings {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.max_bytes == 0 {
            return Err(ConfigError::invalid(
                "documents.max_bytes",
                "must be positive",
            ));
        }
        if let Some(unknown) = self
            .allowed_types
            .iter()
            .find(|name| domain::documents::ContentType::by_name(name).is_none())
        {
            return Err(ConfigError::invalid(
                "documents.allowed_types",
                format!("{unknown:?} is not one of {}", type_names().join(", ")),
            ));
        }
        match self.store {
            DocumentStoreKind::Local if self.local_path.is_empty() => Err(ConfigError::invalid(
                "documents.local_path",
                "is required for the local store",
            )),
            DocumentStoreKind::S3 if self.s3_bucket.is_empty() => Err(ConfigError::invalid(
                "documents.s3_bucket",
                "is required for the S3 store",
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_types_and_a_store_without_its_location_are_named() {
        let mut documents = DocumentSettings::default();
        assert!(documents.validate().is_ok());
        documents.allowed_types.push("exe".into());
        let error = documents.validate().expect_err("refused").to_string();
        assert!(error.contains("documents.allowed_types"), "{error}");

        documents.allowed_types.pop();
        documents.store = DocumentStoreKind::S3;
        let error = documents.validate().expect_err("refused").to_string();
        assert!(error.contains("documents.s3_bucket"), "{error}");
    }
}
