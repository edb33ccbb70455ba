//! The import runs' read model: where each import stands, its attempts, progress and last error;
//! and the importer's question, which imports are due.

use chrono::{DateTime, Utc};
use domain::event::RecordedEvent;
use domain::identity::StreamId;
use domain::prices::{PriceImportEvent, RefreshScheduleEvent};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::engine::ApplyError;

/// Applies one `PriceImport` event to `price_imports`.
///
/// # Errors
/// [`ApplyError`] when the event does not decode, names an import never requested, or the
/// database fails.
pub(super) async fn apply(
    connection: &mut PgConnection,
    event: &RecordedEvent,
    stream: &StreamId,
) -> Result<(), ApplyError> {
    use PriceImportEvent as E;
    let decoded = ApplyError::decode::<PriceImportEvent>(event)?;
    if let E::ImportRequested { key, provider, at } = &decoded {
        sqlx::query(
            "INSERT INTO price_imports
                (tenant_id, import_id, asset_id, interval, range_from, range_to, provider, status,
                 attempts, fetched, version, requested_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'queued', 0, 0, $8, $9, $9)
             ON CONFLICT (tenant_id, import_id) DO UPDATE
                SET status = 'queued', attempts = 0, fetched = 0, recorded_until = NULL,
                    last_error = NULL,
                    next_attempt_at = NULL, lease_until = NULL, completed_at = NULL,
                    provider = EXCLUDED.provider, version = EXCLUDED.version,
                    requested_at = EXCLUDED.requested_at, updated_at = EXCLUDED.updated_at",
        )
        .bind(&event.tenant_id)
        .bind(stream.id)
        .bind(key.asset)
        .bind(key.interval.as_str())
        .bind(key.from)
        .bind(key.to)
        .bind(provider)
        .bind(event.sequence)
        .bind(at)
        .execute(connection)
        .await?;
        return Ok(());
    }
    let at = match &decoded {
        E::ImportRequested { at, .. }
        | E::ImportStarted { at, .. }
        | E::ImportProgressed { at, .. }
        | E::ImportCompleted { at, .. }
        | E::ImportFailed { at, .. }
        | E::ImportAbandoned { at, .. } => *at,
    };
    // $1 tenant, $2 import, $3 version, $4 time; then each event's own values.
    let update = |sql: &'static str| {
        sqlx::query(sql)
            .bind(&event.tenant_id)
            .bind(stream.id)
            .bind(event.sequence)
            .bind(at)
    };
    let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    let query = match &decoded {
        E::ImportRequested { .. } => unreachable!("handled above"),
        E::ImportStarted {
            attempt,
            lease_until,
            ..
        } => update(
            "UPDATE price_imports SET status = 'running', attempts = $5, lease_until = $6,
                    next_attempt_at = NULL, version = $3, updated_at = $4
              WHERE tenant_id = $1 AND import_id = $2",
        )
        .bind(i64::from(*attempt))
        .bind(lease_until),
        E::ImportProgressed {
            fetched,
            recorded_until,
            lease_until,
            ..
        } => update(
            "UPDATE price_imports SET fetched = $5, recorded_until = $6, lease_until = $7,
                    version = $3, updated_at = $4
              WHERE tenant_id = $1 AND import_id = $2",
        )
        .bind(count(*fetched))
        .bind(recorded_until)
        .bind(lease_until),
        E::ImportCompleted { fetched, .. } => update(
            "UPDATE price_imports SET status = 'completed', fetched = $5,
                    recorded_until = range_to, lease_until = NULL, completed_at = $4,
                    version = $3, updated_at = $4
              WHERE tenant_id = $1 AND import_id = $2",
        )
        .bind(count(*fetched)),
        E::ImportFailed {
            error, retry_at, ..
        } => update(
            "UPDATE price_imports SET status = 'waiting', last_error = $5, next_attempt_at = $6,
                    lease_until = NULL, version = $3, updated_at = $4
              WHERE tenant_id = $1 AND import_id = $2",
        )
        .bind(error)
        .bind(retry_at),
        E::ImportAbandoned { error, .. } => update(
            "UPDATE price_imports SET status = 'abandoned', last_error = $5,
                    next_attempt_at = NULL, lease_until = NULL, version = $3, updated_at = $4
              WHERE tenant_id = $1 AND import_id = $2",
        )
        .bind(error),
    };
    let updated = query.execute(connection).await?;
    if updated.rows_affected() != 1 {
        return Err(ApplyError::Inconsistent(format!(
            "import {} was never requested",
            stream.id
        )));
    }
    Ok(())
}

/// Applies one `RefreshSchedule` event to `price_refresh_schedules`.
///
/// # Errors
/// [`ApplyError`] when the event does not decode or the database fails.
pub(super) async fn apply_schedule(
    connection: &mut PgConnection,
    event: &RecordedEvent,
) -> Result<(), ApplyError> {
    match ApplyError::decode::<RefreshScheduleEvent>(event)? {
        RefreshScheduleEvent::RefreshScheduled {
            asset,
            interval,
            rhythm,
            at,
        } => {
            sqlx::query(
                "INSERT INTO price_refresh_schedules
                    (tenant_id, asset_id, interval, every_minutes, lookback_bars, version,
                     updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (tenant_id, asset_id, interval) DO UPDATE
                    SET every_minutes = EXCLUDED.every_minutes,
                        lookback_bars = EXCLUDED.lookback_bars, version = EXCLUDED.version,
                        updated_at = EXCLUDED.updated_at",
            )
            .bind(&event.tenant_id)
            .bind(asset)
            .bind(interval.as_str())
            .bind(i64::from(rhythm.every_minutes))
            .bind(i64::from(rhythm.lookback_bars))
            .bind(event.sequence)
            .bind(at)
            .execute(connection)
            .await?;
        }
        RefreshScheduleEvent::RefreshUnscheduled {
            asset, interval, ..
        } => {
            sqlx::query(
                "DELETE FROM price_refresh_schedules
                  WHERE tenant_id = $1 AND asset_id = $2 AND interval = $3",
            )
            .bind(&event.tenant_id)
            .bind(asset)
            .bind(interval.as_str())
            .execute(connection)
            .await?;
        }
    }
    Ok(())
}

/// A series' refresh schedule.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ScheduleView {
    /// The interval.
    pub interval: String,
    /// Minutes between refreshes.
    pub every_minutes: i32,
    /// Completed bars each refresh imports again.
    pub lookback_bars: i32,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// The refresh schedules of `tenant`'s asset `asset`, by interval.
///
/// # Errors
/// When the database fails.
pub async fn schedules(
    pool: &PgPool,
    tenant: &str,
    asset: Uuid,
) -> Result<Vec<ScheduleView>, sqlx::Error> {
    sqlx::query_as(
        "SELECT interval, every_minutes, lookback_bars, updated_at
           FROM read_models.price_refresh_schedules
          WHERE tenant_id = $1 AND asset_id = $2
          ORDER BY interval",
    )
    .bind(tenant)
    .bind(asset)
    .fetch_all(pool)
    .await
}

/// An import as the read model shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ImportView {
    /// Its id.
    pub import_id: Uuid,
    /// The asset.
    pub asset_id: Uuid,
    /// The bars' interval.
    pub interval: String,
    /// The first bar start of the range.
    pub range_from: DateTime<Utc>,
    /// The first bar start after it.
    pub range_to: DateTime<Utc>,
    /// The provider.
    pub provider: String,
    /// `queued`, `running`, `waiting`, `completed` or `abandoned`.
    pub status: String,
    /// Attempts started.
    pub attempts: i32,
    /// Bars the provider reported so far (since the import was last asked for).
    pub fetched: i64,
    /// Every bar before this time is recorded.
    pub recorded_until: Option<DateTime<Utc>>,
    /// The last attempt's error, if one failed.
    pub last_error: Option<String>,
    /// When the next attempt is due (waiting only).
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// When the running attempt's lease ends.
    pub lease_until: Option<DateTime<Utc>>,
    /// The import stream's version.
    pub version: i64,
    /// When it was (last) asked for.
    pub requested_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// When it completed.
    pub completed_at: Option<DateTime<Utc>>,
}

const IMPORT_COLUMNS: &str = "import_id, asset_id, interval, range_from, range_to, provider, \
    status, attempts, fetched, recorded_until, last_error, next_attempt_at, lease_until, version, \
    requested_at, updated_at, completed_at";

/// One of `tenant`'s imports.
///
/// # Errors
/// When the database fails.
pub async fn get_import(
    pool: &PgPool,
    tenant: &str,
    import: Uuid,
) -> Result<Option<ImportView>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {IMPORT_COLUMNS} FROM read_models.price_imports
          WHERE tenant_id = $1 AND import_id = $2"
    ))
    .bind(tenant)
    .bind(import)
    .fetch_optional(pool)
    .await
}

/// Up to `limit` of `tenant`'s imports after `after` in id order, of `asset` and in `status`
/// when given.
///
/// # Errors
/// When the database fails.
pub async fn list_imports(
    pool: &PgPool,
    tenant: &str,
    asset: Option<Uuid>,
    status: Option<&str>,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<ImportView>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {IMPORT_COLUMNS} FROM read_models.price_imports
          WHERE tenant_id = $1 AND ($2::uuid IS NULL OR asset_id = $2)
            AND ($3::text IS NULL OR status = $3) AND ($4::uuid IS NULL OR import_id > $4)
          ORDER BY import_id
          LIMIT $5"
    ))
    .bind(tenant)
    .bind(asset)
    .bind(status)
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await
}
