//! Prometheus metrics: projection backlogs (from their JetStream consumers), parking, relay
//! horizon (the unpublished tail only), the portfolio valuer's backlog, and the price provider's
//! breaker where this process imports: a scrape never scans the event store. System-wide
//! numbers only (no tenant's data), so the route is public like health; bind the API to a
//! private interface or filter `/metrics` at the proxy if even those should stay inside.

use std::fmt::Write;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use commands::feed::{self, FeedCursor};
use commands::jobs::parked;
use commands::prices::provider::BreakerState;

use crate::http::error::ApiError;
use crate::routes::operations::health::projection_health;
use crate::routes::AppState;

/// Metrics in the Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let mut out = String::new();
    let gauge = |out: &mut String, name: &str, help: &str| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
    };
    let projections = projection_health(&state).await?;
    gauge(
        &mut out,
        "projection_pending_messages",
        "Messages a partition's consumer has not had acknowledged yet.",
    );
    for projection in &projections {
        for p in &projection.partitions {
            let _ = writeln!(
                out,
                "projection_pending_messages{{projection=\"{}\",partition=\"{}\"}} {}",
                projection.name, p.partition, p.pending_messages
            );
        }
    }
    gauge(
        &mut out,
        "projection_parked_streams",
        "Streams parked by a poison event.",
    );
    for projection in &projections {
        let _ = writeln!(
            out,
            "projection_parked_streams{{projection=\"{}\"}} {}",
            projection.name, projection.parked_streams
        );
    }
    let _ = writeln!(out, "# HELP projection_events_applied_total Events applied.\n# TYPE projection_events_applied_total counter");
    for projection in &projections {
        let _ = writeln!(
            out,
            "projection_events_applied_total{{projection=\"{}\"}} {}",
            projection.name, projection.events_applied
        );
    }
    gauge(
        &mut out,
        "scheduler_parked_jobs",
        "Job streams the job scheduler parked (undecodable history, a timer failing for good).",
    );
    let _ = writeln!(
        out,
        "scheduler_parked_jobs {}",
        parked::count(&state.pool).await.map_err(ApiError::failed)?
    );
    gauge(
        &mut out,
        "portfolio_valuation_marks_pending",
        "Marks of trades and daily bars the portfolio valuer has not taken yet.",
    );
    let _ = writeln!(
        out,
        "portfolio_valuation_marks_pending {}",
        projections::prices::pending_marks(&state.pool)
            .await
            .map_err(ApiError::failed)?
    );
    if let Some(breaker) = &state.price_breaker {
        gauge(
            &mut out,
            "price_provider_breaker",
            "The price provider's circuit breaker in this process: 1 for the state it is in.",
        );
        let now = breaker.state();
        for (name, current) in [
            ("closed", matches!(now, BreakerState::Closed { .. })),
            ("open", matches!(now, BreakerState::Open { .. })),
            ("half_open", now == BreakerState::HalfOpen),
        ] {
            let _ = writeln!(
                out,
                "price_provider_breaker{{state=\"{name}\"}} {}",
                u8::from(current)
            );
        }
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
