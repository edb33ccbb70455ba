//! Each tenant's community settings: whether its community is open to anonymous readers.

use chrono::{DateTime, Utc};
use domain::community::PublicPagesEvent;
use domain::event::RecordedEvent;
use serde::Serialize;
use sqlx::{PgConnection, PgPool};

use crate::engine::ApplyError;

pub(super) async fn apply_public_pages(
    connection: &mut PgConnection,
    event: &RecordedEvent,
) -> Result<(), ApplyError> {
    let payload: PublicPagesEvent = ApplyError::decode(event)?;
    let enabled = matches!(payload, PublicPagesEvent::PublicPagesEnabled { .. });
    sqlx::query(
        "INSERT INTO community_settings (tenant_id, public_pages, version, updated_at)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (tenant_id) DO UPDATE
            SET public_pages = EXCLUDED.public_pages, version = EXCLUDED.version,
                updated_at = EXCLUDED.updated_at",
    )
    .bind(&event.tenant_id)
    .bind(enabled)
    .bind(event.sequence)
    .bind(payload.at())
    .execute(connection)
    .await?;
    Ok(())
}

/// A tenant's community settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct SettingsView {
    /// Whether anonymous readers see the tenant's community.
    pub public_pages: bool,
    /// The stream version this reflects (0: never set).
    pub version: i64,
    /// When they last changed, if ever.
    pub updated_at: Option<DateTime<Utc>>,
}

/// The tenant's community settings (the defaults when never set).
///
/// # Errors
/// When the database fails.
pub async fn settings(pool: &PgPool, tenant_id: &str) -> Result<SettingsView, sqlx::Error> {
    let found: Option<SettingsView> = sqlx::query_as(
        "SELECT public_pages, version, updated_at FROM read_models.community_settings
          WHERE tenant_id = $1",
    )
    .bind(tenant_id)
    .fetch_optional(pool)
    .await?;
    Ok(found.unwrap_or(SettingsView {
        public_pages: false,
        version: 0,
        updated_at: None,
    }))
}
