//! Operating the backend over HTTP: projection lag, parked streams, retries and rebuilds (admin
//! and auditor), liveness and readiness, and Prometheus metrics (public).

pub mod health;
pub mod metrics;
pub mod projections;

use domain::policy::OperationAction;
use utoipa_axum::routes;

use crate::routes::Routes;

/// The operations routes.
pub fn routes() -> Routes {
    Routes::new()
        .tag(
            "admin",
            "Operations: projection lag, parked streams, retries, rebuilds",
        )
        .tag("health", "Liveness, readiness and metrics")
        .query(
            OperationAction::ReadProjectionStatus,
            routes!(projections::list_projections),
        )
        .query(
            OperationAction::ReadProjectionStatus,
            routes!(projections::list_parked),
        )
        .command(
            OperationAction::RetryParked,
            routes!(projections::retry_parked),
        )
        .command(
            OperationAction::RebuildProjection,
            routes!(projections::rebuild_projection),
        )
        .public(routes!(health::live))
        .public(routes!(health::ready))
        .public(routes!(health::projections))
        .public(routes!(metrics::metrics))
}
