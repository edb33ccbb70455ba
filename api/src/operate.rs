//! The operator's command line for projections (status, parked streams, retries and the
//! completeness check) and for the jobs the job scheduler parked. Each returns the text to
//! print, so tests read what a person reads.

use std::fmt::Write as _;

use commands::jobs::parked;
use projections::registry::Registered;
use projections::status;
use sqlx::PgPool;

/// Why an operation failed.
#[derive(Debug, thiserror::Error)]
pub enum OperateError {
    /// The projection name is unknown.
    #[error("no projection named {0:?}; known: {1}")]
    UnknownProjection(String, String),
    /// The database failed.
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// A retry or rebuild failed.
    #[error("{0}")]
    Retry(String),
}

fn projection(name: &str) -> Result<Registered, OperateError> {
    Registered::by_name(name).ok_or_else(|| {
        let known: Vec<&str> = Registered::ALL.iter().map(|p| p.name()).collect();
        OperateError::UnknownProjection(name.to_owned(), known.join(", "))
    })
}

/// A table of every projection's lag.
///
/// # Errors
/// [`OperateError`].
pub async fn status_report(pool: &PgPool, partitions: u32) -> Result<String, OperateError> {
    let mut out = format!(
        "{:<16} {:>10} {:>14} {:>12} {:>8}  {}\n",
        "PROJECTION", "APPLIED", "EVENTS BEHIND", "SECS BEHIND", "PARKED", "LAST ERROR"
    );
    for projection in Registered::ALL {
        let s = status::status(
            pool,
            projection.name(),
            projection.aggregate_types(),
            partitions,
            "",
        )
        .await?;
        let _ = writeln!(
            out,
            "{:<16} {:>10} {:>14} {:>12.1} {:>8}  {}",
            s.name,
            s.events_applied,
            s.events_behind,
            s.seconds_behind,
            s.parked_streams,
            s.last_error.as_deref().unwrap_or("-")
        );
        let count = s.partitions.len();
        for p in &s.partitions {
            let _ = writeln!(
                out,
                "  partition {}/{count:<4} {:>21} {:>12.1} {:>8}  owner {}",
                p.partition,
                p.events_behind,
                p.seconds_behind,
                p.parked_streams,
                p.owner.as_deref().unwrap_or("(none yet)")
            );
        }
    }
    let _ = writeln!(
        out,
        "job-scheduler: {} parked jobs (`backend scheduler parked`)",
        parked::count(pool).await?
    );
    Ok(out)
}

/// The parked streams of one projection.
///
/// # Errors
/// [`OperateError`].
pub async fn parked_report(pool: &PgPool, name: &str) -> Result<String, OperateError> {
    let projection = projection(name)?;
    let parked = status::parked(pool, projection.name(), "").await?;
    if parked.is_empty() {
        return Ok(format!("{name}: no parked streams\n"));
    }
    let mut out = format!("{name}: {} parked streams\n", parked.len());
    for stream in parked {
        let _ = writeln!(
            out,
            "  {} {} at sequence {} ({} waiting, {} attempts, since {}): {}",
            stream.aggregate_type,
            stream.aggregate_id,
            stream.sequence,
            stream.waiting_events,
            stream.attempts,
            stream.first_failed_at.format("%Y-%m-%d %H:%M:%S UTC"),
            stream.error
        );
    }
    Ok(out)
}

/// Retries one parked stream (`stream` is its id, e.g. `acme:0192…`).
///
/// # Errors
/// [`OperateError`].
pub async fn retry_report(pool: &PgPool, name: &str, stream: &str) -> Result<String, OperateError> {
    let projection = projection(name)?;
    let parked = status::parked(pool, projection.name(), stream).await?;
    let parked: Vec<_> = parked
        .into_iter()
        .filter(|p| p.aggregate_id == stream)
        .collect();
    if parked.is_empty() {
        return Ok(format!("{name}: stream {stream} is not parked\n"));
    }
    let mut out = String::new();
    let source = crate::rebuild::FeedSource::new(pool.clone());
    for p in parked {
        let outcome = projection
            .retry(pool, &source, &p.aggregate_type, &p.aggregate_id)
            .await
            .map_err(|e| OperateError::Retry(e.to_string()))?;
        let _ = writeln!(
            out,
            "{name}: {} {}: applied {}, still parked {}",
            p.aggregate_type, p.aggregate_id, outcome.applied, outcome.still_parked
        );
    }
    Ok(out)
}

/// The jobs the job scheduler parked, oldest first, with their reasons.
///
/// # Errors
/// [`OperateError`].
pub async fn scheduler_parked_report(pool: &PgPool) -> Result<String, OperateError> {
    let jobs = parked::list(pool, "").await?;
    let mut out = format!("job-scheduler: {} parked jobs\n", jobs.len());
    for job in jobs {
        let _ = writeln!(
            out,
            "{}  attempts {}  since {}  event {}\n  {}",
            job.aggregate_id,
            job.attempts,
            job.first_failed_at.format("%Y-%m-%d %H:%M:%S"),
            job.event_id
                .map_or_else(|| "-".to_owned(), |id| id.to_string()),
            job.error
        );
    }
    Ok(out)
}

/// Retries a job the job scheduler parked: its timer is derived from the stored history again.
///
/// # Errors
/// [`OperateError`].
pub async fn scheduler_retry_report(pool: &PgPool, stream: &str) -> Result<String, OperateError> {
    if !parked::list(pool, stream)
        .await?
        .iter()
        .any(|job| job.aggregate_id == stream)
    {
        return Ok(format!("job-scheduler: job {stream} is not parked\n"));
    }
    let free = parked::retry(pool, stream)
        .await
        .map_err(|error| OperateError::Retry(error.chain()))?;
    Ok(if free {
        format!("job-scheduler: job {stream} is scheduled again\n")
    } else {
        let reason = parked::list(pool, stream)
            .await?
            .into_iter()
            .find(|job| job.aggregate_id == stream)
            .map_or_else(String::new, |job| job.error);
        format!("job-scheduler: job {stream} is still parked: {reason}\n")
    })
}

/// `audit verify`: each tenant's log (or `tenant`'s) checked against the event store, with
/// checkpoint signatures checked against `verifier_key` when given. Returns the report and
/// whether everything agreed.
///
/// # Errors
/// [`OperateError`].
pub async fn audit_verify_report(
    pool: &PgPool,
    tenant: Option<&str>,
    verifier_key: Option<&str>,
) -> Result<(String, bool), OperateError> {
    use commands::audit::verify;
    let failed = |e: commands::audit::AuditError| OperateError::Retry(e.to_string());
    let tenants = match tenant {
        Some(tenant) => vec![tenant.to_owned()],
        None => verify::tenants(pool).await.map_err(failed)?,
    };
    let mut out = String::new();
    if verifier_key.is_none() {
        out.push_str(
            "no --public-key and no audit.signing_key: checkpoint signatures are not checked\n",
        );
    }
    let mut clean = true;
    for tenant in tenants {
        let found = verify::verify(pool, &tenant, verifier_key)
            .await
            .map_err(failed)?;
        let _ = write!(
            out,
            "{}: {} sealed, {} stored, {} checkpoints: ",
            found.tenant, found.sealed, found.stored, found.checkpoints
        );
        if found.findings.is_empty() {
            out.push_str("ok\n");
        } else {
            clean = false;
            out.push_str("FAILED\n");
            for finding in &found.findings {
                let _ = writeln!(out, "  {finding}");
            }
        }
    }
    Ok((out, clean))
}

/// One line of the rebuild progress bar: `[#####.....]  52%  1234/2345 events  8210 ev/s  ETA 3s`.
pub fn progress_line(done: i64, total: i64, elapsed: std::time::Duration) -> String {
    let total = total.max(done).max(1);
    let fraction = done as f64 / total as f64;
    let filled = (fraction * 30.0).round() as usize;
    let rate = done as f64 / elapsed.as_secs_f64().max(0.001);
    let eta = if rate > 0.0 {
        (total - done) as f64 / rate
    } else {
        0.0
    };
    format!(
        "[{}{}] {:>3.0}%  {done}/{total} events  {rate:.0} ev/s  ETA {eta:.0}s",
        "#".repeat(filled),
        ".".repeat(30 - filled.min(30)),
        fraction * 100.0
    )
}

/// Rebuilds a projection from the event store, drawing a progress bar on `bar` (a terminal's
/// stderr) as it goes; returns the summary line.
///
/// # Errors
/// [`OperateError`].
pub async fn rebuild_report(
    pool: &PgPool,
    name: &str,
    bar: &mut (dyn std::io::Write + Send),
) -> Result<String, OperateError> {
    let projection = projection(name)?;
    let source = crate::rebuild::FeedSource::new(pool.clone());
    let started = std::time::Instant::now();
    let mut draw = |p: projections::rebuild::Progress| {
        let _ = write!(
            bar,
            "\r{}",
            progress_line(p.done, p.total, started.elapsed())
        );
        let _ = bar.flush();
    };
    let rebuilt = projection
        .rebuild(pool, &source, crate::rebuild::BATCH, &mut draw)
        .await
        .map_err(|e| OperateError::Retry(e.to_string()))?;
    let _ = writeln!(bar);
    Ok(format!(
        "{name}: rebuilt in {:.1}s: {rebuilt}\n",
        started.elapsed().as_secs_f64()
    ))
}

/// The completeness check; the flag is true when nothing is missing or extra.
///
/// # Errors
/// [`OperateError`].
pub async fn verify_report(pool: &PgPool, name: &str) -> Result<(String, bool), OperateError> {
    let projection = projection(name)?;
    let discrepancies =
        status::verify(pool, projection.name(), projection.aggregate_types()).await?;
    let status::Stored { streams, events } =
        status::stored(pool, projection.aggregate_types()).await?;
    if discrepancies.is_empty() {
        let report = format!(
            "{name}: complete. {streams} streams, {events} events, nothing missing or extra\n"
        );
        return Ok((report, true));
    }
    let mut out = format!(
        "{name}: {} of {streams} streams differ from the event store\n",
        discrepancies.len()
    );
    for d in &discrepancies {
        let parked = if d.parked { " (parked)" } else { "" };
        if d.stored > d.applied {
            let missing = d.missing();
            let _ = writeln!(
                out,
                "  missing {} {} sequences {}..={}{parked}",
                d.aggregate_type,
                d.aggregate_id,
                missing.start(),
                missing.end()
            );
        } else {
            let extra = d.extra();
            let _ = writeln!(
                out,
                "  extra   {} {} sequences {}..={} (applied, but not in the store){parked}",
                d.aggregate_type,
                d.aggregate_id,
                extra.start(),
                extra.end()
            );
        }
    }
    Ok((out, false))
}
