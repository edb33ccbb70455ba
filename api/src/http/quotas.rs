//! Enforcing a tenant's quotas: usage is read from the tenants read model and judged by the
//! tenant's settings, with a problem that names the quota.
//!
//! Usage is what the read models hold, so a command accepted a moment ago (still on its way
//! through the relay) is not counted yet: a burst of concurrent requests can pass a quota by
//! those in flight, and by more while the read models lag (the relay or NATS down, a projection
//! parked). A quota is a budget enforced within the projection lag, not a hard ceiling.

use chrono::{DateTime, Duration, Utc};
use domain::tenants::QuotaExceeded;

use crate::http::error::ApiError;
use crate::http::extract::Caller;
use crate::routes::AppState;

/// `Ok` when the caller's tenant may submit one more job today.
///
/// # Errors
/// `429 quota_exceeded` (with `Retry-After` until the next UTC day) naming
/// `quota_jobs_per_day`, or `422` for a quota of 0 (it never renews); a database failure.
pub async fn admit_job(state: &AppState, caller: &Caller) -> Result<(), ApiError> {
    if caller.settings.quota_jobs_per_day.is_none() {
        return Ok(());
    }
    let now = Utc::now();
    let usage =
        projections::tenants::usage(&state.pool, caller.principal.tenant.as_str(), now).await?;
    caller
        .settings
        .admit_job(u64::try_from(usage.jobs_today).unwrap_or(0))
        .map_err(|exceeded| {
            let renews = (exceeded.limit > 0).then(|| seconds_to_next_day(now));
            refused(exceeded, "jobs submitted today", renews)
        })
}

/// How many more bytes the caller's tenant may store (`None`: no quota).
///
/// # Errors
/// `422 quota_exceeded` naming `quota_stored_bytes` when nothing is left; a database failure.
pub async fn storage_left(state: &AppState, caller: &Caller) -> Result<Option<u64>, ApiError> {
    if caller.settings.quota_stored_bytes.is_none() {
        return Ok(None);
    }
    let usage =
        projections::tenants::usage(&state.pool, caller.principal.tenant.as_str(), Utc::now())
            .await?;
    caller
        .settings
        .storage_left(u64::try_from(usage.stored_bytes).unwrap_or(0))
        .map_err(|exceeded| refused(exceeded, "bytes of documents stored", None))
}

/// The problem for a quota that is used up.
pub fn refused(exceeded: QuotaExceeded, what: &str, retry_after_secs: Option<u64>) -> ApiError {
    ApiError::QuotaExceeded {
        quota: exceeded.quota,
        detail: format!(
            "the tenant's quota {} is used up: {} of {} {what}",
            exceeded.quota, exceeded.used, exceeded.limit
        ),
        retry_after_secs,
    }
}

fn seconds_to_next_day(now: DateTime<Utc>) -> u64 {
    let next = projections::tenants::day_start(now) + Duration::days(1);
    u64::try_from((next - now).num_seconds())
        .unwrap_or(0)
        .max(1)
}
