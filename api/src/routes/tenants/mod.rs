//! The tenants context over HTTP: operators provision tenants, change their settings, suspend
//! and reactivate them, and list them with their usage; a tenant's admins and auditors read
//! their own tenant.

pub mod commands;
pub mod queries;

use std::collections::BTreeSet;

use domain::documents::ContentType;
use domain::policy::TenantAction;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;

pub use commands::{ProvisionTenant, SuspendTenant};
pub use queries::{TenantDto, TenantPage};

use crate::http::schema;
use crate::routes::Routes;

/// The tenants routes.
pub fn routes() -> Routes {
    Routes::new()
        .tag(
            "tenants",
            "Tenants: provisioning, settings, quotas, suspension (operators); a tenant's own \
             settings and usage",
        )
        .command(
            TenantAction::ProvisionTenant,
            routes!(commands::provision_tenant),
        )
        .command(
            TenantAction::ChangeTenantSettings,
            routes!(commands::change_tenant_settings),
        )
        .command(
            TenantAction::SuspendTenant,
            routes!(commands::suspend_tenant),
        )
        .command(
            TenantAction::ReactivateTenant,
            routes!(commands::reactivate_tenant),
        )
        .query(TenantAction::ListTenants, routes!(queries::list_tenants))
        .query(TenantAction::ListTenants, routes!(queries::get_tenant))
        .query(TenantAction::ReadOwnTenant, routes!(queries::own_tenant))
}

/// A tenant named in the path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct TenantParam {
    /// The tenant's id: 1 to 128 letters, digits, `-` or `_`.
    #[param(pattern = "^[A-Za-z0-9_-]{1,128}$", max_length = 128)]
    pub tenant: String,
}

/// A tenant's settings. Each one left out follows the server's configuration. The document
/// size and types narrow what the server accepts; the others replace the server's values.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"job_max_attempts": 3, "quota_jobs_per_day": 1000, "quota_stored_bytes": 1073741824_u64})))]
pub struct Settings {
    /// Command requests (POST, PUT, PATCH, DELETE) per principal per minute.
    #[serde(
        default,
        deserialize_with = "schema::whole_number::option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub commands_per_minute: Option<u32>,
    /// Query requests (GET) per principal per minute.
    #[serde(
        default,
        deserialize_with = "schema::whole_number::option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub queries_per_minute: Option<u32>,
    /// Largest document upload, in bytes (the server's `documents.max_bytes` still applies).
    #[serde(
        default,
        deserialize_with = "schema::whole_number::option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(minimum = 1, maximum = 1_099_511_627_776_u64)]
    pub document_max_bytes: Option<u64>,
    /// How many times a job is attempted before it is dead-lettered (jobs submitted from now).
    #[serde(
        default,
        deserialize_with = "schema::whole_number::option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(minimum = 1, maximum = 100)]
    pub job_max_attempts: Option<u32>,
    /// How long a worker's claim lasts without a heartbeat, in seconds (claims from now).
    #[serde(
        default,
        deserialize_with = "schema::whole_number::option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(minimum = 5, maximum = 86_400)]
    pub job_lease_secs: Option<u64>,
    /// Quota: jobs submitted per UTC day.
    #[serde(
        default,
        deserialize_with = "schema::whole_number::option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(minimum = 0, maximum = 1_099_511_627_776_u64)]
    pub quota_jobs_per_day: Option<u64>,
    /// Quota: bytes of documents stored.
    #[serde(
        default,
        deserialize_with = "schema::whole_number::option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(minimum = 0, maximum = 1_125_899_906_842_624_u64)]
    pub quota_stored_bytes: Option<u64>,
    /// The document types accepted, each at most once (the server's `documents.allowed_types`
    /// still applies).
    #[serde(
        default,
        deserialize_with = "schema::unique_or_none",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(min_items = 1, max_items = 7)]
    pub document_types: Option<BTreeSet<DocumentType>>,
    /// `false` closes the community's public pages, whatever the tenant's admins switched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_community_pages: Option<bool>,
}

/// A document type, as recognised from the content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DocumentType {
    /// UTF-8 text.
    PlainText,
    /// Markdown (text declared as such).
    Markdown,
    /// SubRip subtitles.
    Srt,
    /// WebVTT subtitles.
    WebVtt,
    /// JSON.
    Json,
    /// A Word document.
    Docx,
    /// A PDF document.
    Pdf,
}

impl From<DocumentType> for ContentType {
    fn from(kind: DocumentType) -> Self {
        match kind {
            DocumentType::PlainText => Self::PlainText,
            DocumentType::Markdown => Self::Markdown,
            DocumentType::Srt => Self::Srt,
            DocumentType::WebVtt => Self::WebVtt,
            DocumentType::Json => Self::Json,
            DocumentType::Docx => Self::Docx,
            DocumentType::Pdf => Self::Pdf,
        }
    }
}

impl From<ContentType> for DocumentType {
    fn from(kind: ContentType) -> Self {
        match kind {
            ContentType::PlainText => Self::PlainText,
            ContentType::Markdown => Self::Markdown,
            ContentType::Srt => Self::Srt,
            ContentType::WebVtt => Self::WebVtt,
            ContentType::Json => Self::Json,
            ContentType::Docx => Self::Docx,
            ContentType::Pdf => Self::Pdf,
        }
    }
}

impl From<Settings> for domain::tenants::TenantSettings {
    fn from(settings: Settings) -> Self {
        Self {
            commands_per_minute: settings.commands_per_minute,
            queries_per_minute: settings.queries_per_minute,
            document_max_bytes: settings.document_max_bytes,
            job_max_attempts: settings.job_max_attempts,
            job_lease_secs: settings.job_lease_secs,
            quota_jobs_per_day: settings.quota_jobs_per_day,
            quota_stored_bytes: settings.quota_stored_bytes,
            document_types: settings
                .document_types
                .map(|types| types.into_iter().map(ContentType::from).collect()),
            public_community_pages: settings.public_community_pages,
        }
    }
}

impl From<domain::tenants::TenantSettings> for Settings {
    fn from(settings: domain::tenants::TenantSettings) -> Self {
        Self {
            commands_per_minute: settings.commands_per_minute,
            queries_per_minute: settings.queries_per_minute,
            document_max_bytes: settings.document_max_bytes,
            job_max_attempts: settings.job_max_attempts,
            job_lease_secs: settings.job_lease_secs,
            quota_jobs_per_day: settings.quota_jobs_per_day,
            quota_stored_bytes: settings.quota_stored_bytes,
            document_types: settings
                .document_types
                .map(|types| types.into_iter().map(DocumentType::from).collect()),
            public_community_pages: settings.public_community_pages,
        }
    }
}

#[cfg(test)]
mod tests {
    use domain::tenants::TenantSettings;

    use super::*;

    /// The bounds the document states are the ones the domain enforces, setting by setting, and
    /// the document names every setting the domain has.
    #[test]
    fn the_documented_settings_are_the_domains() {
        for (setting, min, max, _) in TenantSettings::BOUNDS {
            let documented = crate::http::schema::property::<Settings>(setting);
            assert_eq!(documented["minimum"], min, "{setting}: {documented}");
            assert_eq!(documented["maximum"], max, "{setting}: {documented}");
        }
        let types = crate::http::schema::property::<Settings>("document_types");
        assert_eq!(types["maxItems"], ContentType::ALL.len(), "{types}");
        let every = TenantSettings {
            commands_per_minute: Some(1),
            queries_per_minute: Some(1),
            document_max_bytes: Some(1),
            job_max_attempts: Some(1),
            job_lease_secs: Some(5),
            quota_jobs_per_day: Some(0),
            quota_stored_bytes: Some(0),
            document_types: Some(ContentType::ALL.to_vec()),
            public_community_pages: Some(true),
        };
        let stored = serde_json::to_value(&every).unwrap();
        let named = serde_json::to_value(Settings::from(every.clone())).unwrap();
        assert_eq!(
            stored.as_object().unwrap().keys().collect::<Vec<_>>(),
            named.as_object().unwrap().keys().collect::<Vec<_>>(),
        );
        assert_eq!(TenantSettings::from(Settings::from(every.clone())), every);
    }
}
