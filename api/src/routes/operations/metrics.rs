//! Prometheus metrics: projection lag, parking, relay horizon. System-wide numbers only (no
//! tenant's data), so the route is public like health; bind the API to a private interface or
//! filter `/metrics` at the proxy if even those should stay inside.

use std::fmt::Write;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use commands::feed::{self, FeedCursor};
use projections::registry::Registered;
use projections::status;

use crate::http::error::ApiError;
use crate::routes::AppState;

/// Metrics in the Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let mut out = String::new();
    let gauge = |out: &mut String, name: &str, help: &str| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
    };
    let partitions = state.settings.projections.partitions;
    let mut statuses = Vec::new();
    for projection in Registered::ALL {
        statuses.push(
            status::status(
                &state.pool,
                projection.name(),
                projection.aggregate_types(),
                partitions,
            )
            .await?,
        );
    }
    gauge(
        &mut out,
        "projection_events_behind",
        "Stored events not yet applied, per partition.",
    );
    for s in &statuses {
        for p in &s.partitions {
            let _ = writeln!(
                out,
                "projection_events_behind{{projection=\"{}\",partition=\"{}\"}} {}",
                s.name, p.partition, p.events_behind
            );
        }
    }
    gauge(
        &mut out,
        "projection_seconds_behind",
        "Age of the oldest stored event not yet applied.",
    );
    for s in &statuses {
        let _ = writeln!(
            out,
            "projection_seconds_behind{{projection=\"{}\"}} {}",
            s.name, s.seconds_behind
        );
    }
    gauge(
        &mut out,
        "projection_parked_streams",
        "Streams parked by a poison event.",
    );
    for s in &statuses {
        let _ = writeln!(
            out,
            "projection_parked_streams{{projection=\"{}\"}} {}",
            s.name, s.parked_streams
        );
    }
    let _ = writeln!(out, "# HELP projection_events_applied_total Events applied.\n# TYPE projection_events_applied_total counter");
    for s in &statuses {
        let _ = writeln!(
            out,
            "projection_events_applied_total{{projection=\"{}\"}} {}",
            s.name, s.events_applied
        );
    }
    let cursor = state
        .relay
        .checkpoint()
        .await
        .unwrap_or(FeedCursor::default());
    gauge(
        &mut out,
        "relay_held_by_horizon",
        "Committed events the relay waits on an older open transaction for.",
    );
    let _ = writeln!(
        out,
        "relay_held_by_horizon {}",
        feed::held_by_horizon(&state.pool, cursor).await?
    );
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out))
}
