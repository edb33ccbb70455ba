//! The stored form of every tenant event (see `crate::stored_check`).

use super::{SuspensionReason, TenantEvent, TenantName, TenantSettings};
use crate::documents::ContentType;
use crate::stored_check::{at, id, stored_events_test};

fn samples() -> Vec<TenantEvent> {
    vec![
        TenantEvent::TenantProvisioned {
            display_name: TenantName::parse("Acme Translations").expect("valid"),
            settings: TenantSettings {
                job_max_attempts: Some(3),
                quota_jobs_per_day: Some(1_000),
                ..TenantSettings::default()
            },
            first_admin_key: id(1),
            at: at(0),
        },
        TenantEvent::TenantSettingsChanged {
            settings: TenantSettings {
                commands_per_minute: Some(60),
                queries_per_minute: Some(600),
                document_max_bytes: Some(1_048_576),
                job_max_attempts: Some(5),
                job_lease_secs: Some(120),
                quota_jobs_per_day: Some(10),
                quota_stored_bytes: Some(10_485_760),
                document_types: Some(vec![ContentType::PlainText, ContentType::Pdf]),
                public_community_pages: Some(false),
            },
            at: at(1),
        },
        TenantEvent::TenantSuspended {
            reason: SuspensionReason::parse("invoice overdue").expect("valid"),
            at: at(2),
        },
        TenantEvent::TenantReactivated { at: at(3) },
    ]
}

stored_events_test! {
    fn tenant_events_are_stored_under_their_event_types() for TenantEvent {
        snapshot: "tenant_events",
        former_tags: [],
        samples: samples(),
    }
}
