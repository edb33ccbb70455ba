//! Liveness and readiness.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use projections::registry::Registered;
use projections::status;

use crate::routes::AppState;

/// A health answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` or `unavailable`.
    pub status: &'static str,
    /// Each dependency checked: `ok` or what is wrong.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checks: Option<Checks>,
}

/// Readiness checks.
#[derive(Debug, Serialize, ToSchema)]
pub struct Checks {
    /// Postgres answers.
    pub postgres: String,
    /// The NATS connection is up.
    pub nats: String,
    /// Every embedded migration is applied.
    pub migrations: String,
    /// No projection is parked or further behind than `projections.max_lag_events`.
    pub projections: String,
}

/// The process is up.
#[utoipa::path(get, path = "/health/live", tag = "health",
    responses((status = 200, description = "Alive", body = Health)))]
pub async fn live() -> Json<Health> {
    Json(Health {
        status: "ok",
        checks: None,
    })
}

/// The process can serve: Postgres and NATS reachable, migrations applied.
#[utoipa::path(get, path = "/health/ready", tag = "health",
    responses((status = 200, description = "Ready", body = Health),
              (status = 503, description = "Not ready", body = Health)))]
pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let ok = || "ok".to_owned();
    // Acquiring a connection pings it; a query-side process also needs its replica.
    let postgres = match (state.pool.acquire().await, state.read_pool.acquire().await) {
        (Ok(_), Ok(_)) => ok(),
        (Err(_), _) => "unreachable".to_owned(),
        (_, Err(_)) => "read replica unreachable".to_owned(),
    };
    let nats = match state.nats.connection_state() {
        async_nats::connection::State::Connected => ok(),
        other => format!("{other:?}").to_lowercase(),
    };
    let migrations = match eventstore_migrations::pending(&state.pool).await {
        Ok(0) => ok(),
        Ok(pending) => format!("{pending} pending"),
        Err(_) => "unknown".to_owned(),
    };
    let projections = match projection_problems(&state).await {
        Ok(problems) if problems.is_empty() => ok(),
        Ok(problems) => problems.join("; "),
        Err(_) => "unknown".to_owned(),
    };
    let ready = [&postgres, &nats, &migrations, &projections]
        .iter()
        .all(|c| *c == "ok");
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let health = Health {
        status: if ready { "ok" } else { "unavailable" },
        checks: Some(Checks {
            postgres,
            nats,
            migrations,
            projections,
        }),
    };
    (status, Json(health))
}

async fn projection_problems(state: &AppState) -> Result<Vec<String>, sqlx::Error> {
    let mut problems = Vec::new();
    for projection in Registered::ALL {
        let status = status::status(
            &state.pool,
            projection.name(),
            projection.aggregate_types(),
            state.settings.projections.partitions,
        )
        .await?;
        if status.parked_streams > 0 {
            problems.push(format!(
                "{}: {} parked streams",
                status.name, status.parked_streams
            ));
        }
        if status.events_behind > state.settings.projections.max_lag_events {
            problems.push(format!(
                "{}: {} events behind",
                status.name, status.events_behind
            ));
        }
    }
    Ok(problems)
}
