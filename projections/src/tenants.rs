//! The tenants read model: each provisioned tenant's settings and status, the size of every
//! stored document, and usage against each quota (jobs submitted today are counted from the
//! jobs read model, stored bytes summed from the documents' sizes), for operators' lists and
//! for enforcing quotas.

use chrono::{DateTime, Utc};
use domain::documents::DocumentEvent;
use domain::event::RecordedEvent;
use domain::identity::StreamId;
use domain::tenants::{TenantEvent, TenantSettings, TenantStatus};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};

use crate::engine::{ApplyError, Projection};

/// Builds `read_models.tenants` and `read_models.tenant_documents`.
#[derive(Debug, Clone, Copy, Default)]
pub struct TenantsProjection;

impl TenantsProjection {
    /// The projection's stable name.
    pub const NAME: &'static str = "tenants";
}

impl Projection for TenantsProjection {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn version(&self) -> u32 {
        1
    }

    fn aggregate_types(&self) -> &'static [&'static str] {
        &["Tenant", "Document"]
    }

    fn tables(&self) -> &'static [&'static str] {
        &["tenants", "tenant_documents"]
    }

    async fn apply(
        &self,
        connection: &mut PgConnection,
        event: &RecordedEvent,
    ) -> Result<(), ApplyError> {
        let stream: StreamId = event
            .aggregate_id
            .parse()
            .map_err(|_| ApplyError::Inconsistent(format!("stream id {:?}", event.aggregate_id)))?;
        if event.aggregate_type == "Document" {
            let DocumentEvent::DocumentUploaded { document, at } = ApplyError::decode(event)?;
            sqlx::query(
                "INSERT INTO tenant_documents (tenant_id, document_id, size_bytes, uploaded_at)
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(&event.tenant_id)
            .bind(stream.id)
            .bind(i64::try_from(document.size_bytes).unwrap_or(i64::MAX))
            .bind(at)
            .execute(connection)
            .await?;
            return Ok(());
        }
        let payload: TenantEvent = ApplyError::decode(event)?;
        let at = payload.at();
        // Every change sets the row's status, reason and settings as they now are.
        let (status, reason, settings) = match payload {
            TenantEvent::TenantProvisioned {
                display_name,
                settings,
                ..
            } => {
                sqlx::query(
                    "INSERT INTO tenants
                        (tenant_id, display_name, status, settings, version, provisioned_at,
                         updated_at)
                     VALUES ($1, $2, 'active', $3, $4, $5, $5)",
                )
                .bind(&event.tenant_id)
                .bind(display_name.as_str())
                .bind(sqlx::types::Json(settings))
                .bind(event.sequence)
                .bind(at)
                .execute(connection)
                .await?;
                return Ok(());
            }
            TenantEvent::TenantSettingsChanged { settings, .. } => {
                (None, None, Some(sqlx::types::Json(settings)))
            }
            TenantEvent::TenantSuspended { reason, .. } => (
                Some(TenantStatus::Suspended {
                    reason: reason.clone(),
                    since: at,
                }),
                Some(reason.as_str().to_owned()),
                None,
            ),
            TenantEvent::TenantReactivated { .. } => (Some(TenantStatus::Active), None, None),
        };
        let updated = sqlx::query(
            "UPDATE tenants
                SET status = coalesce($2, status),
                    suspension_reason = CASE WHEN $2 IS NULL THEN suspension_reason ELSE $3 END,
                    suspended_at = CASE WHEN $2 IS NULL THEN suspended_at
                                        WHEN $2 = 'suspended' THEN $6 END,
                    settings = coalesce($4, settings),
                    version = $5,
                    updated_at = $6
              WHERE tenant_id = $1",
        )
        .bind(&event.tenant_id)
        .bind(status.as_ref().map(TenantStatus::as_str))
        .bind(reason)
        .bind(settings)
        .bind(event.sequence)
        .bind(at)
        .execute(connection)
        .await?;
        if updated.rows_affected() != 1 {
            return Err(ApplyError::Inconsistent(format!(
                "{} for unprovisioned tenant {}",
                event.event_type, event.tenant_id
            )));
        }
        Ok(())
    }
}

/// A tenant's usage against its quotas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Usage {
    /// Jobs submitted since the start of the current UTC day.
    pub jobs_today: i64,
    /// Bytes of documents stored.
    pub stored_bytes: i64,
}

/// A provisioned tenant, with its usage.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TenantView {
    /// The tenant's id.
    pub tenant_id: String,
    /// How it is shown.
    pub display_name: String,
    /// `active` or `suspended`.
    pub status: String,
    /// Why it is suspended.
    pub suspension_reason: Option<String>,
    /// Since when.
    pub suspended_at: Option<DateTime<Utc>>,
    /// Its settings.
    pub settings: sqlx::types::Json<TenantSettings>,
    /// The tenant stream's version.
    pub version: i64,
    /// When it was provisioned.
    pub provisioned_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Jobs submitted since the start of the current UTC day.
    pub jobs_today: i64,
    /// Bytes of documents stored.
    pub stored_bytes: i64,
}

const TENANT_COLUMNS: &str = "t.tenant_id, t.display_name, t.status, t.suspension_reason,
        t.suspended_at, t.settings, t.version, t.provisioned_at, t.updated_at,
        (SELECT count(*) FROM read_models.jobs j
          WHERE j.tenant_id = t.tenant_id AND j.submitted_at >= $1) AS jobs_today,
        (SELECT coalesce(sum(d.size_bytes), 0)::bigint FROM read_models.tenant_documents d
          WHERE d.tenant_id = t.tenant_id) AS stored_bytes";

/// The start of `now`'s UTC day: jobs submitted since count against today's quota.
pub fn day_start(now: DateTime<Utc>) -> DateTime<Utc> {
    now.date_naive()
        .and_hms_opt(0, 0, 0)
        .map_or(now, |midnight| midnight.and_utc())
}

/// Provisioned tenants in id order, after `after`, at most `limit`.
///
/// # Errors
/// When the database fails.
pub async fn list(
    pool: &PgPool,
    after: Option<&str>,
    limit: u32,
    now: DateTime<Utc>,
) -> Result<Vec<TenantView>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {TENANT_COLUMNS} FROM read_models.tenants t
          WHERE $2::text IS NULL OR t.tenant_id > $2
          ORDER BY t.tenant_id LIMIT $3"
    ))
    .bind(day_start(now))
    .bind(after)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
}

/// One provisioned tenant.
///
/// # Errors
/// When the database fails.
pub async fn get(
    pool: &PgPool,
    tenant: &str,
    now: DateTime<Utc>,
) -> Result<Option<TenantView>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {TENANT_COLUMNS} FROM read_models.tenants t WHERE t.tenant_id = $2"
    ))
    .bind(day_start(now))
    .bind(tenant)
    .fetch_optional(pool)
    .await
}

/// A tenant's usage (provisioned or not), as the read models have it: a command a moment old
/// may not be counted yet.
///
/// # Errors
/// When the database fails.
pub async fn usage(pool: &PgPool, tenant: &str, now: DateTime<Utc>) -> Result<Usage, sqlx::Error> {
    sqlx::query_as(
        "SELECT (SELECT count(*) FROM read_models.jobs
                  WHERE tenant_id = $1 AND submitted_at >= $2) AS jobs_today,
                (SELECT coalesce(sum(size_bytes), 0)::bigint FROM read_models.tenant_documents
                  WHERE tenant_id = $1) AS stored_bytes",
    )
    .bind(tenant)
    .bind(day_start(now))
    .fetch_one(pool)
    .await
}
